"""Benchmark at the real shapes of both seed families, with random weights in their real file layouts.

Families (random weights of the right shapes, written to a temp folder in each family's layout and
loaded through `sae_bench.checkpoints.load_checkpoint`, which memory-maps them):
  gemma-loupe  sparsify layout (cfg.json + sae.safetensors), d_in 1536, 49,152 latents, TopK k=100,
               residual hookpoint; encoder.bias 0, unit-norm decoder rows.
  ernos        one safetensors file (W_enc [F, D], b_enc, W_dec [D, F], b_dec), d 2816, 131,072
               latents, ReLU (the ErnOS code's inference activation), L2 + batch standardisation,
               pooled source; b_enc = -3.3 so about 64 latents fire per vector on standardised
               inputs (the card's k=64), not the ~50% a zero-bias random ReLU SAE would fire.

Sections (each prints a table row; `--out` writes everything as JSON):
  throughput  tokens/s over synthetic activations of the right width for: the encoder matmul alone,
              encode, encode+decode, and the metric path of the reconstruction + sparsity tasks
              (preprocess, encode, decode, the float64 accumulators, finalize with the 200-replicate
              bootstrap), in the dtype the runner uses (`sae_bench.checkpoints.compute_dtype`: bf16 on CUDA for
              residual SAEs with a bf16 model, the file's float32 otherwise). On CUDA also the
              encoder matmul's TFLOP/s in bf16 and its fraction of `--peak-tflops` (default 989,
              the H100 SXM bf16 dense figure; the H200 has the same).
  memory      in a fresh child process: load the checkpoint (through the runner's loader and its
              dtype rule) and evaluate `--memory-vectors` vectors through the same metric path;
              peak memory attributable to the SAE (peak minus the process's baseline: CPU RSS
              high-water mark, CUDA max allocated) against the fp32 weight bytes, and the check
              peak <= 1.3 x weights. For gemma-loupe, a sweep over `--sweep-layers` layer files
              evaluated one after another must stay at one layer's peak (one SAE held at a time).
  e2b         (`--e2b`, needs CUDA) a random-weights Gemma 4 with an E2B-like config (hidden 1536,
              35 layers, 20 KV-shared, vocab 262,144, per-layer inputs) in bf16, 4 random
              gemma-loupe-shaped SAEs at one layer: the harness (shared activations, suffix-only
              splicing; benchmarks/bench_suite.harness_metrics = what runner.evaluate does per
              hookpoint) against the per-task reference (bench_suite.reference_metrics), timed,
              with the metric agreement reported (on GPU, lm_head over a 512-row chunk and over
              a whole [B*T] batch may pick different GEMM kernels, so agreement is to a tolerance).

Each section lives in its own module beside this script: shapes_files.py (the families' files and
loading), shapes_throughput.py, shapes_memory.py, shapes_e2b.py; this script parses the options,
runs the sections and prints the tables.

Runs with torch + safetensors + transformers + numpy + tqdm only (no install needed:
`PYTHONPATH=. python benchmarks/bench_shapes.py`). `--latent-scale` shrinks the latent counts
for a quick CPU run; the README's numbers are at scale 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _importable  # noqa: E402

_importable.ensure()

from shapes_e2b import e2b  # noqa: E402
from shapes_files import FAMILIES, H100_BF16_DENSE_TFLOPS, weight_bytes, write_family  # noqa: E402
from shapes_memory import memory, memory_child  # noqa: E402
from shapes_throughput import throughput  # noqa: E402


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--families", default="gemma-loupe,ernos")
    p.add_argument("--sections", default="throughput,memory", help="comma list of throughput, memory")
    p.add_argument("--latent-scale", type=float, default=1.0, help="shrink the latent counts (quick CPU runs)")
    p.add_argument("--tokens", type=int, default=None, help="synthetic vectors for throughput (default 65536 on CUDA, 4096 on CPU)")
    p.add_argument("--batch-tokens", type=int, default=4096, help="vectors per SAE call (the tasks' default)")
    p.add_argument("--memory-vectors", type=int, default=512, help="vectors evaluated in the memory check")
    p.add_argument("--sweep-layers", type=int, default=3, help="gemma-loupe layer files evaluated one after another")
    p.add_argument("--model-dtype", default=None, help="the model dtype the runner's rule sees (default bf16 on CUDA)")
    p.add_argument("--peak-tflops", type=float, default=H100_BF16_DENSE_TFLOPS, help="bf16 dense peak of the device")
    p.add_argument("--e2b", action="store_true", help="also time harness vs reference on an E2B-shaped random model (CUDA)")
    p.add_argument("--e2b-layer", default="layers.20")
    p.add_argument("--e2b-checkpoints", type=int, default=4)
    p.add_argument("--e2b-sequences", type=int, default=64)
    p.add_argument("--e2b-seq-len", type=int, default=512)
    p.add_argument("--e2b-batch-size", type=int, default=8)
    p.add_argument("--e2b-rtol", type=float, default=1e-3)
    p.add_argument("--e2b-small", action="store_true", help="a miniature E2B-like model (a quick check on CPU)")
    p.add_argument("--e2b-profile", action="store_true", help="print a cProfile of the harness side")
    p.add_argument("--workdir", type=Path, default=None, help="where the random checkpoints are written (default: a temp dir)")
    p.add_argument("--out", type=Path)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--child-memory", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_memory:
        print(json.dumps(memory_child(json.loads(args.child_memory))))
        return 0
    cuda = torch.device(args.device).type == "cuda"
    args.model_dtype = getattr(torch, args.model_dtype) if args.model_dtype else (torch.bfloat16 if cuda else torch.float32)
    args.tokens = args.tokens or (65536 if cuda else 4096)
    sections = set(args.sections.split(","))
    result = {"device": args.device, "device_name": torch.cuda.get_device_name() if cuda else "cpu",
              "torch": torch.__version__, "threads": torch.get_num_threads(), "peak_tflops_used": args.peak_tflops,
              "latent_scale": args.latent_scale, "model_dtype": str(args.model_dtype), "throughput": [], "memory": []}
    tmp = tempfile.TemporaryDirectory(prefix="bench_shapes_", dir=args.workdir)
    families = [s for s in args.families.split(",") if s]
    try:
        for family in tqdm(families, desc="families", disable=args.no_progress):
            spec = FAMILIES[family]
            d, f = spec["d"], max(spec["k"] or 1, int(spec["f"] * args.latent_scale))
            layers = args.sweep_layers if spec["format"] == "sparsify" and "memory" in sections else 1
            start = time.perf_counter()
            refs = write_family(family, Path(tmp.name) / family, d=d, f=f, layers=layers)
            print(f"[{family}] wrote {layers} random checkpoint file(s) of {weight_bytes(d, f) / 2**30:.2f} GiB "
                  f"in {time.perf_counter() - start:.1f} s", flush=True)
            if "throughput" in sections:
                try:
                    row = throughput(family, refs[0], args)
                except Exception as exc:  # report and go on with the other sections
                    row = {"family": family, "error": repr(exc)}
                result["throughput"].append(row)
                print(json.dumps(row), flush=True)
            if "memory" in sections:
                try:
                    row = memory(family, refs if spec["format"] == "sparsify" else refs[:1], args, d, f)
                except Exception as exc:
                    row = {"family": family, "error": repr(exc)}
                result["memory"].append(row)
                print(json.dumps(row), flush=True)
            for ref in refs:
                target = ref if ref.is_file() else ref
                if target.is_file():
                    target.unlink()
            import shutil

            shutil.rmtree(Path(tmp.name) / family, ignore_errors=True)
        if args.e2b:
            try:
                result["e2b"] = e2b(args)
            except Exception as exc:
                import traceback

                result["e2b"] = {"error": repr(exc), "traceback": traceback.format_exc()[-3000:]}
            print(json.dumps(result["e2b"]), flush=True)
    finally:
        tmp.cleanup()
    print_tables(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    bad = [m for m in result["memory"] if m.get("error") or _held_ratio(m) > 1.3]
    return 1 if bad or any("error" in r for r in result["throughput"]) else 0


def _held_ratio(m: dict) -> float:
    """Peak over weights on the device that holds the SAE: CUDA memory there; RSS on CPU (where the
    memory-mapped weights' pages are the SAE's memory). On CUDA the CPU RSS is reported beside it:
    it counts the file-backed pages of the mapped file during the load."""
    return m["cuda_ratio"] if m.get("cuda_ratio") is not None else m["rss_ratio"]


def print_tables(result: dict) -> None:
    print(f"\ndevice {result['device_name']}, torch {result['torch']}, model dtype {result['model_dtype']}, "
          f"latent scale {result['latent_scale']}")
    print(f"{'family':<12}{'d x F':>16}{'dtype':>10}{'encode tok/s':>14}{'enc+dec tok/s':>15}{'metrics tok/s':>15}"
          f"{'matmul TFLOP/s':>16}{'bf16 % peak':>12}")
    for r in result["throughput"]:
        if "error" in r:
            print(f"{r['family']:<12} ERROR {r['error']}")
            continue
        tf = r.get(f"encoder_matmul_{r['sae_dtype']}_tflops", float("nan"))
        frac = r.get("encoder_matmul_bf16_fraction_of_peak")
        print(f"{r['family']:<12}{r['d_in']:>7} x {r['d_sae']:<7}{r['sae_dtype']:>10}{r['encode_tok_s']:>14.0f}"
              f"{r['encode_decode_tok_s']:>15.0f}{r['metric_path_tok_s']:>15.0f}{tf:>16.1f}"
              f"{(f'{100 * frac:.1f}%' if frac else '-'):>12}")
    print(f"\n{'family':<12}{'layers':>7}{'vectors':>9}{'weights GiB':>13}{'RSS peak/weights':>18}{'CUDA peak/weights':>19}"
          f"{'<= 1.3x':>9}  (checked on the device holding the SAE)")
    for m in result["memory"]:
        if "error" in m:
            print(f"{m['family']:<12} ERROR {m['error'][:300]}")
            continue
        cuda = m.get("cuda_ratio")
        ok = _held_ratio(m) <= 1.3
        print(f"{m['family']:<12}{m['layers']:>7}{m['vectors']:>9}{m['weight_bytes'] / 2**30:>13.2f}{m['rss_ratio']:>18.3f}"
              f"{(f'{cuda:.3f}' if cuda is not None else '-'):>19}{('yes' if ok else 'NO'):>9}")
    if "e2b" in result:
        e = result["e2b"]
        if "error" in e:
            print(f"\nE2B-shaped: ERROR {e['error']}")
        else:
            print(f"\n{e['model']} random Gemma 4, {e['checkpoints']} checkpoints @ {e['layer']}, "
                  f"{e['sequences']} x {e['seq_len']} tokens: harness {e['harness_seconds']:.2f} s, reference "
                  f"{e['reference_seconds']:.2f} s, speedup {e['speedup']:.2f}x; metrics: "
                  f"{e['values_differing_exactly']} of {e['values_compared']} values differ in any bit, max relative "
                  f"difference {e['max_relative_difference']:.2e}")


if __name__ == "__main__":
    sys.exit(main())
