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
              bootstrap), in the dtype the runner uses (`runner.sae_compute_dtype`: bf16 on CUDA for
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

Runs with torch + safetensors + transformers + numpy + tqdm only (no install needed:
`PYTHONPATH=. python benchmarks/bench_shapes.py`). `--latent-scale` shrinks the latent counts
for a quick CPU run; the README's numbers are at scale 1.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import struct
import subprocess
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

FAMILIES = {
    "gemma-loupe": {"d": 1536, "f": 49152, "format": "sparsify", "k": 100, "hookpoint": "layers.20", "b_enc": 0.0},
    "ernos": {"d": 2816, "f": 131072, "format": "ernos", "k": None, "hookpoint": "pooled_final_norm", "b_enc": -3.3},
}
H100_BF16_DENSE_TFLOPS = 989.0


# ----------------------------------------------------------------------------- files
def write_safetensors(path: Path, tensors: list[tuple[str, tuple[int, ...], object]], seed: int) -> int:
    """Stream float32 tensors to a safetensors file without holding them in memory.
    Each entry: (name, shape, fill) with fill one of "randn_rows" (N(0, 1/cols) entries),
    "unit_rows" (rows of unit norm), or a float constant. Returns the file size in bytes."""
    header, offset = {}, 0
    for name, shape, _ in tensors:
        n = math.prod(shape) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    gen = torch.Generator().manual_seed(seed)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for name, shape, fill in tensors:
            rows, cols = shape[0], math.prod(shape[1:]) if len(shape) > 1 else 1
            step = max(1, (1 << 22) // cols)
            for start in range(0, rows, step):
                n = min(rows, start + step) - start
                if isinstance(fill, float):
                    chunk = torch.full((n, cols), fill)
                else:
                    chunk = torch.randn(n, cols, generator=gen) / math.sqrt(cols)
                    if fill == "unit_rows":
                        chunk = chunk / chunk.norm(dim=1, keepdim=True)
                fh.write(chunk.contiguous().numpy().tobytes())
    return path.stat().st_size


def write_family(family: str, folder: Path, *, d: int, f: int, layers: int = 1) -> list[Path]:
    """Random-weights checkpoint(s) in the family's real layout; returns what load_checkpoint takes."""
    spec = FAMILIES[family]
    if spec["format"] == "sparsify":
        refs = []
        run = folder / "sae-gemma-4-E2B-32x-random"
        for layer in range(layers):
            sub = run / f"layers.{20 + layer}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / "cfg.json").write_text(json.dumps({
                "activation": "topk", "expansion_factor": f // d, "normalize_decoder": True, "num_latents": f,
                "k": spec["k"], "multi_topk": False, "skip_connection": False, "transcode": False, "d_in": d}))
            write_safetensors(sub / "sae.safetensors", [("encoder.weight", (f, d), "randn_rows"),
                                                        ("encoder.bias", (f,), spec["b_enc"]),
                                                        ("W_dec", (f, d), "unit_rows"), ("b_dec", (d,), 0.0)],
                              seed=layer)
            refs.append(run)
        return refs
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ernos_sae.safetensors"
    write_safetensors(path, [("W_enc", (f, d), "randn_rows"), ("b_enc", (f,), spec["b_enc"]),
                             ("W_dec", (d, f), "randn_rows"), ("b_dec", (d,), 0.0)], seed=0)
    return [path]


def weight_bytes(d: int, f: int) -> int:
    return (2 * f * d + f + d) * 4


def load(family: str, ref: Path, layer: int, device: str, model_dtype: torch.dtype):
    """Through the public loader and the runner's dtype rule, as `sae-bench run` loads it."""
    from sae_bench import load_checkpoint
    from sae_bench.runner import sae_compute_dtype

    spec = FAMILIES[family]
    hookpoint = f"layers.{20 + layer}" if spec["format"] == "sparsify" else spec["hookpoint"]
    eval_hook = "layers.20" if spec["format"] == "sparsify" else spec["hookpoint"]
    return load_checkpoint(str(ref), hookpoint=hookpoint, format=spec["format"], device=device,
                           dtype=sae_compute_dtype(device, model_dtype, eval_hook))


# ----------------------------------------------------------------------------- the metric path
def synthetic(n: int, d: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen) * 4.0 + torch.randn(1, d, generator=gen)


def metric_path(sae, x: torch.Tensor, sequence: torch.Tensor, n_sequences: int, batch_tokens: int) -> dict:
    """The reconstruction and sparsity tasks' loops (tasks/reconstruction.py, tasks/sparsity.py)."""
    from sae_bench.metrics.reconstruction import ReconstructionAccumulator
    from sae_bench.metrics.sparsity import SparsityAccumulator

    acc = ReconstructionAccumulator(n_sequences, sae.d_in)
    sacc = SparsityAccumulator(n_sequences, sae.d_sae)
    for start in range(0, x.shape[0], batch_tokens):
        part = slice(start, start + batch_tokens)
        x_in, _ = sae.preprocess(x[part].to(sae.device).to(sae.dtype))
        x_hat = sae.decode(sae.encode(x_in), x_in)
        acc.update(x_in, x_hat, sequence[part])
    for start in range(0, x.shape[0], batch_tokens):
        part = slice(start, start + batch_tokens)
        x_in, _ = sae.preprocess(x[part].to(sae.device).to(sae.dtype))
        sacc.update(sae.encode(x_in), sequence[part])
    metrics = {**acc.finalize(), **sacc.finalize(replicates=200, generator=torch.Generator().manual_seed(7001))}
    return {k: m.value for k, m in metrics.items()}


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _time(fn, device: str, repeat: int = 3) -> float:
    fn()
    _sync(device)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def throughput(family: str, ref: Path, args) -> dict:
    spec = FAMILIES[family]
    device = args.device
    sae = load(family, ref, 0, device, args.model_dtype)
    d, f = sae.d_in, sae.d_sae
    pooled = spec["hookpoint"] == "pooled_final_norm"
    # pooled: one vector per text, so at most 16,384 texts (the accumulators keep per-text sums)
    n, bt = (min(args.tokens, 16384) if pooled else args.tokens), args.batch_tokens
    x = synthetic(n, d)
    seq_len = 1 if pooled else 1024
    sequence = torch.arange(n) // seq_len
    n_seq = int(sequence.max()) + 1
    batches = [x[s:s + bt] for s in range(0, n, bt)]
    on_dev = [b.to(device) for b in batches]
    row = {"family": family, "d_in": d, "d_sae": f, "device": device, "sae_dtype": str(sae.dtype).replace("torch.", ""),
           "tokens": n, "batch_tokens": bt, "activation": sae.activation.describe()}
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()

    def encode_only():
        for b in on_dev:
            sae.encode(sae.preprocess(b.to(sae.dtype))[0])

    def encode_decode():
        for b in on_dev:
            x_in = sae.preprocess(b.to(sae.dtype))[0]
            sae.decode(sae.encode(x_in), x_in)

    row["encode_tok_s"] = n / _time(encode_only, device)
    row["encode_decode_tok_s"] = n / _time(encode_decode, device)
    start = time.perf_counter()
    metric_path(sae, x, sequence, n_seq, bt)
    _sync(device)
    row["metric_path_tok_s"] = n / (time.perf_counter() - start)
    if torch.device(device).type == "cuda":
        row["peak_cuda_bytes_over_weights"] = (torch.cuda.max_memory_allocated() - base) / weight_bytes(d, f)
    # The encoder matmul alone: [bt, d] @ [d, f] in the SAE's dtype, and in bf16 on CUDA.
    flops = 2.0 * bt * d * f
    dtypes = [sae.dtype] + ([torch.bfloat16] if torch.device(device).type == "cuda" and sae.dtype != torch.bfloat16 else [])
    for dt in dtypes:
        w = sae.W_enc.to(dt)
        a = on_dev[0].to(dt)
        reps = 20 if torch.device(device).type == "cuda" else 2
        t = _time(lambda: [torch.nn.functional.linear(a, w) for _ in range(reps)], device) / reps
        name = str(dt).replace("torch.", "")
        row[f"encoder_matmul_{name}_tflops"] = flops / t / 1e12
        if torch.device(device).type == "cuda" and dt == torch.bfloat16:
            row["encoder_matmul_bf16_fraction_of_peak"] = flops / t / 1e12 / args.peak_tflops
        del w, a
    del sae, on_dev
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    return row


# ----------------------------------------------------------------------------- memory (child process)
def _rss_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def memory_child(payload: dict) -> dict:
    family, device = payload["family"], payload["device"]
    model_dtype = getattr(torch, payload["model_dtype"])
    refs = [Path(r) for r in payload["refs"]]
    d, f = payload["d"], payload["f"]
    pooled = FAMILIES[family]["hookpoint"] == "pooled_final_norm"
    n = payload["vectors"]
    x = synthetic(n, d)
    sequence = torch.arange(n) if pooled else torch.arange(n) // 1024
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.zeros(1, device=device)  # CUDA context before the baseline
        torch.cuda.reset_peak_memory_stats()
    import sae_bench.checkpoints  # noqa: F401  (imports before the baseline)
    import sae_bench.metrics.reconstruction  # noqa: F401
    import sae_bench.metrics.sparsity  # noqa: F401
    import sae_bench.runner  # noqa: F401

    # Warm-up on a small in-memory SAE of the same kind: first-use allocations of the BLAS, the
    # allocator and lazily imported modules are not the checkpoint's memory.
    from sae_bench.sae import ActivationSpec, InputPreprocessing, SaeMetadata, SparseAutoencoder

    spec = FAMILIES[family]
    small_f = max(spec["k"] or 1, 256)
    act = ActivationSpec("topk", k=spec["k"]) if spec["k"] else ActivationSpec("relu")
    prep = InputPreprocessing("l2", "batch") if pooled else InputPreprocessing()
    meta = SaeMetadata("warm-up", spec["format"], d, small_f, act, prep)
    warm = SparseAutoencoder(torch.randn(small_f, d), torch.zeros(small_f), torch.randn(small_f, d), torch.zeros(d),
                             meta, subtract_decoder_bias=not pooled).to(device)
    metric_path(warm, x, sequence, int(sequence.max()) + 1, payload["batch_tokens"])
    del warm
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:  # reset the RSS high-water mark (Linux >= 4.0); else fall back to the lifetime peak
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    rss0, hwm0 = _rss_bytes("VmRSS"), _rss_bytes("VmHWM")
    cuda0 = torch.cuda.memory_allocated() if cuda else 0
    per_layer = []
    for layer, ref in enumerate(refs):
        start = time.perf_counter()
        sae = load(family, ref, layer, device, model_dtype)
        loaded = time.perf_counter() - start
        load_peak = torch.cuda.max_memory_allocated() - cuda0 if cuda else None
        values = metric_path(sae, x, sequence, int(sequence.max()) + 1, payload["batch_tokens"])
        per_layer.append({"load_seconds": loaded, "eval_seconds": time.perf_counter() - start - loaded,
                          "sae_dtype": str(sae.dtype).replace("torch.", ""), "fvu": values.get("fvu"),
                          "l0": values.get("l0"), "cuda_peak_after_load_bytes": load_peak,
                          "rss_after_bytes": _rss_bytes("VmRSS") - rss0})
        del sae
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    weights = weight_bytes(d, f)
    out = {"family": family, "device": device, "layers": len(refs), "vectors": n, "batch_tokens": payload["batch_tokens"],
           "weight_bytes": weights, "per_layer": per_layer,
           "rss_peak_over_baseline_bytes": _rss_bytes("VmHWM") - rss0, "rss_hwm_was_reset": hwm0 <= rss0 + (1 << 20)}
    out["rss_ratio"] = out["rss_peak_over_baseline_bytes"] / weights
    if cuda:
        out["cuda_peak_over_baseline_bytes"] = torch.cuda.max_memory_allocated() - cuda0
        out["cuda_ratio"] = out["cuda_peak_over_baseline_bytes"] / weights
    return out


def memory(family: str, refs: list[Path], args, d: int, f: int) -> dict:
    payload = {"family": family, "device": args.device, "model_dtype": str(args.model_dtype).replace("torch.", ""),
               "refs": [str(r) for r in refs], "d": d, "f": f, "vectors": args.memory_vectors,
               "batch_tokens": args.batch_tokens}
    proc = subprocess.run([sys.executable, __file__, "--child-memory", json.dumps(payload)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              [str(_importable.ROOT), os.environ.get("PYTHONPATH", "")])})
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- E2B-shaped model
def e2b(args) -> dict:
    from transformers import Gemma4ForCausalLM, Gemma4TextConfig

    import bench_suite
    from sae_bench.context import TokenizedCorpus
    from sae_bench.models import ModelAdapter
    from sae_bench.sae import ActivationSpec, SaeMetadata, SparseAutoencoder

    device = args.device
    if args.e2b_small:  # a miniature of the same structure, to try the section quickly on CPU
        V, d, f, k = 4096, 256, 2048, 32
        config = Gemma4TextConfig(
            vocab_size=V, hidden_size=d, intermediate_size=512, num_hidden_layers=10, num_attention_heads=2,
            num_key_value_heads=1, head_dim=64, global_head_dim=128, sliding_window=64,
            layer_types=(["sliding_attention"] * 4 + ["full_attention"]) * 2, vocab_size_per_layer_input=V,
            hidden_size_per_layer_input=32, num_kv_shared_layers=4, use_double_wide_mlp=True,
            final_logit_softcapping=30.0, pad_token_id=0, bos_token_id=2, eos_token_id=1)
    else:
        V, d, f, k = 262144, 1536, 49152, 100
        config = Gemma4TextConfig(
            vocab_size=V, hidden_size=d, intermediate_size=6144, num_hidden_layers=35, num_attention_heads=8,
            num_key_value_heads=1, head_dim=256, global_head_dim=512, sliding_window=512,
            layer_types=(["sliding_attention"] * 4 + ["full_attention"]) * 7, vocab_size_per_layer_input=V,
            hidden_size_per_layer_input=256, num_kv_shared_layers=20, use_double_wide_mlp=True,
            final_logit_softcapping=30.0, pad_token_id=0, bos_token_id=2, eos_token_id=1)
    cuda = torch.device(device).type == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.device(device):
        model = Gemma4ForCausalLM(config).to(dtype)
    model.eval().requires_grad_(False)
    adapter = ModelAdapter.from_pretrained_model(model, None, model_id="e2b-shaped-random")
    build_s = time.perf_counter() - start
    n, T = args.e2b_sequences, args.e2b_seq_len
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, V, (n, T), generator=gen)
    ids[:, 0] = 2
    mask = torch.ones_like(ids)
    for row in range(n):  # some padding, as real corpora have
        mask[row, T - (row % 4) * (T // 8):] = 0
    ids[mask == 0] = 0
    keep = mask.bool() & (ids != 2) & (ids != 0) & (ids != 1)
    corpus = TokenizedCorpus("random-tokens", "random", "none", ids, mask, keep, T)

    def make_sae(seed: int):
        g = torch.Generator(device=device).manual_seed(seed)
        W_enc = (torch.randn(f, d, generator=g, device=device) / math.sqrt(d)).to(dtype)
        W_dec = torch.randn(f, d, generator=g, device=device)
        W_dec = (W_dec / W_dec.norm(dim=1, keepdim=True)).to(dtype)
        zeros = lambda m: torch.zeros(m, device=device, dtype=dtype)  # noqa: E731
        meta = SaeMetadata(f"random-{seed}", "sparsify", d, f, ActivationSpec("topk", k=k), hookpoint=args.e2b_layer,
                           dtype=str(dtype).replace("torch.", ""))
        return SparseAutoencoder(W_enc, zeros(f), W_dec, zeros(d), meta)

    loaders = [(f"random-{i}", lambda i=i: make_sae(i)) for i in range(args.e2b_checkpoints)]
    bs = args.e2b_batch_size
    # warm-up (kernels, allocator) on a slice, both sides
    small = TokenizedCorpus("w", "w", "none", ids[:bs], mask[:bs], keep[:bs], T)
    bench_suite.harness_metrics(adapter, small, args.e2b_layer, loaders[:1], batch_size=bs)
    adapter.clear_cache()
    bench_suite.reference_metrics(adapter, small, args.e2b_layer, loaders[:1], batch_size=bs, progress=False)
    adapter.clear_cache()
    _sync(device)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    profiler = None
    if args.e2b_profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.perf_counter()
    harness = bench_suite.harness_metrics(adapter, corpus, args.e2b_layer, loaders, batch_size=bs)
    _sync(device)
    t_h = time.perf_counter() - t0
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(30)
    peak_h = torch.cuda.max_memory_allocated() if cuda else 0
    adapter.clear_cache()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    reference = bench_suite.reference_metrics(adapter, corpus, args.e2b_layer, loaders, batch_size=bs,
                                              progress=not args.no_progress)
    _sync(device)
    t_r = time.perf_counter() - t0
    peak_r = torch.cuda.max_memory_allocated() if cuda else 0
    exact = bench_suite.compare(harness, reference, 0.0)
    loose = bench_suite.compare(harness, reference, args.e2b_rtol)
    out = {"model_build_seconds": build_s, "sequences": n, "seq_len": T, "batch_size": bs, "layer": args.e2b_layer,
           "checkpoints": len(loaders), "kept_tokens": int(keep.sum()), "harness_seconds": t_h,
           "reference_seconds": t_r, "speedup": t_r / t_h, "harness_peak_cuda_gib": peak_h / 2**30,
           "reference_peak_cuda_gib": peak_r / 2**30, "values_differing_exactly": len(exact),
           "values_compared": 2 * sum(len(m) for t in harness.values() for m in t.values()),
           "rtol": args.e2b_rtol, "values_beyond_rtol": loose, "max_relative_difference": bench_suite.max_relative_difference(harness, reference)}
    out["model"] = "E2B-shaped" if not args.e2b_small else "miniature (--e2b-small)"
    del model, adapter
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return out


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
