"""Benchmark: many sites in one run on the real model, against the independent reference run once per checkpoint.

Setting (from `benchmarks/real_setup.py`): Gemma 3 270M, the real eval corpus at seq_len 128 (all 64
documents unless `--max-documents`), tasks reconstruction, sparsity and spliced_loss with
`spliced_loss.mean_ablation=true` (the reference computes ce_mean). Configurations (sites x
checkpoints per site): (1,1), (1,4), (3,2), (6,1) at decoder layers 6 | 6 | 3, 6, 9 | 3, 4, 6, 8, 9, 12.

Checkpoints are derived without training, cached in the work folder: the trained layers.6 TopK SAE's
weights with k = 32, 16, 48, 64, placed in a sparsify folder `layers.<L>` for every site (each file
carries its site and k in its safetensors metadata, so each has its own sha256). Away from layer 6
they reconstruct poorly (the harness's scale check may warn), which changes no cost: every side
does the same work for them, and the reference checks every number.

Each harness configuration is one `sae_bench.run.runner.evaluate` in its own subprocess with an empty
cache folder (one model pass captures every site; the clean run is scored once per chunk for all
sites). The reference (`tests/reference/peer_reference.py`, no code shared with sae_bench) runs
once per distinct checkpoint; a configuration's reference cost is the sum of its checkpoints' runs.
CPU seconds: user and sys of each subprocess (`RUSAGE_CHILDREN` differences; the workers run with
OMP_WAIT_POLICY=PASSIVE unless set, as in bench_real, so idle OpenMP threads spin no CPU away on a
loaded machine); peak RSS: the
subprocess's own VmHWM (never the parent's high-water mark). Printed beside each ratio: the
arithmetic bound (benchmarks/arithmetic.py). The marginal CPU of a site, (6,1) minus (1,1) over
five, is shown beside its own suffix passes' share (its ablated and spliced suffix forwards and
lm_head products, converted to CPU seconds at the rate of the (1,4) run's three extra checkpoints, else
of the (1,1) run) and beside a clean pass's share
(what a second clean forward would cost). Every metric both sides compute must agree within
`--rtol` for every checkpoint; the script exits 1 otherwise.

Run:  python benchmarks/bench_sweep.py [--max-documents N] [--out benchmarks/results/cpu_sweep.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import bench_real  # noqa: E402  (its workers, subprocess runner, comparison and summaries)
from arithmetic import Shape, harness_macs, reference_macs  # noqa: E402

TASKS = bench_real.TASKS
CONFIGURATIONS = {  # (sites, checkpoints per site): {layer: [k, ...]}
    (1, 1): {6: [32]},
    (1, 4): {6: [32, 16, 48, 64]},
    (3, 2): {3: [32, 16], 6: [32, 16], 9: [32, 16]},
    (6, 1): {3: [32], 4: [32], 6: [32], 8: [32], 9: [32], 12: [32]},
}


def derive(sae_hook_dir: Path, out: Path, layer: int, k: int) -> Path:
    """Sparsify run folder `<out>/k<k>/` holding `layers.<layer>/` with the trained weights and k."""
    from safetensors.torch import load_file, save_file

    run = out / f"k{k}"
    folder = run / f"layers.{layer}"
    if not (folder / "cfg.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        weights = load_file(str(sae_hook_dir / "sae.safetensors"))
        save_file(weights, str(folder / "sae.safetensors"),
                  metadata={"format": "pt", "derived_from": str(sae_hook_dir), "k": str(k), "site": f"layers.{layer}"})
        cfg = json.loads((sae_hook_dir / "cfg.json").read_text())
        (folder / "cfg.json").write_text(json.dumps({**cfg, "k": k}, indent=1) + "\n")
    return run


def label(layer: int, k: int) -> str:
    return f"L{layer}-k{k}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return bench_real._worker_main(argv[1], argv[2])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="write the measurements as JSON here")
    p.add_argument("--rtol", type=float, default=1e-5, help="relative tolerance of the metric check")
    p.add_argument("--batch-size", type=int, default=8, help="harness sequences per forward")
    p.add_argument("--work-dir", type=Path, help="derived checkpoints, caches and records (default: a temp folder)")
    p.add_argument("--max-documents", type=int, help="evaluate only the first N documents (both sides; default: all 64)")
    p.add_argument("--configurations", default="1x1,1x4,3x2,6x1", help="which (sites x checkpoints) to run")
    args = p.parse_args(argv)

    setup = bench_real._setup()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    work.mkdir(parents=True, exist_ok=True)
    chosen = {tuple(int(x) for x in c.split("x")): None for c in args.configurations.split(",")}
    plan = {c: CONFIGURATIONS[c] for c in chosen}
    corpus = setup.corpus
    if args.max_documents:
        lines = [line for line in Path(setup.corpus).read_text(encoding="utf-8").splitlines() if line.strip()]
        corpus = work / f"corpus_{args.max_documents}.jsonl"
        corpus.write_text("\n".join(lines[:args.max_documents]) + "\n", encoding="utf-8")
    n_documents = min(args.max_documents or setup.n_sequences, setup.n_sequences)
    common = {"model_dir": str(setup.model_dir), "corpus": str(corpus), "seq_len": setup.seq_len,
              "batch_size": args.batch_size}
    source = setup.sae_run_dir / setup.hookpoint
    runs = {(layer, k): derive(source, work / "checkpoints", layer, k)
            for sites in plan.values() for layer, ks in sites.items() for k in ks}
    script = Path(__file__).resolve()

    def say(text: str) -> None:
        print(f"[bench_sweep] {text}", file=sys.stderr, flush=True)

    raw_path = work / "raw.json"  # every finished run, so an interrupted benchmark resumes where it stopped
    raw = json.loads(raw_path.read_text()) if raw_path.is_file() else {}

    def measured(key: str, kind: str, job: dict) -> dict:
        key = f"{n_documents} documents, batch {args.batch_size}: {key}"
        if key not in raw:
            if "cache_dir" in job:
                shutil.rmtree(job["cache_dir"], ignore_errors=True)  # cold: an empty cache folder
            raw[key] = bench_real.run_configuration(kind, job, script)
            raw_path.write_text(json.dumps(raw))
        r = raw[key]
        say(f"  {key}: user {r['user_seconds']:.1f} + sys {r['sys_seconds']:.1f} CPU s, "
            f"peak {r['max_rss_bytes'] / 1e9:.2f} GB")
        return r

    harness: dict[tuple, dict] = {}
    for config, sites in plan.items():  # one process at a time
        name = f"{config[0]}x{config[1]}"
        job = {**common, "cache_dir": str(work / f"cache_{name}"), "results_dir": str(work / f"results_{name}"),
               "checkpoints": [{"run": str(runs[(layer, k)]), "hookpoint": f"layers.{layer}", "label": label(layer, k)}
                               for layer, ks in sites.items() for k in ks]}
        say(f"harness {name} ...")
        harness[config] = measured(f"harness {name}", "harness", job)
    reference: dict[tuple[int, int], dict] = {}
    for layer, k in runs:
        say(f"reference {label(layer, k)} ...")
        reference[(layer, k)] = measured(f"reference {label(layer, k)}", "reference", {
            **common, "hookpoint": f"layers.{layer}", "sae_dir": str(runs[(layer, k)] / f"layers.{layer}"),
            "label": label(layer, k)})

    problems, worst, compared = [], 0.0, 0
    for config, r in harness.items():
        for (layer, k), ref in reference.items():
            mine = r["metrics"].get(label(layer, k))
            if mine is None:
                continue
            bad, rel, n = bench_real.compare(mine, ref["metrics"][label(layer, k)], args.rtol)
            problems += [f"{config} / {label(layer, k)} / {line}" for line in bad]
            worst, compared = max(worst, rel), compared + n

    n_latents = json.loads((source / "cfg.json").read_text())["num_latents"]
    shape = Shape.from_model(setup.model_dir, setup.seq_len)
    tokens, counted = n_documents * setup.seq_len, n_documents * (setup.seq_len - 2)
    weights = sum(f.stat().st_size for f in Path(setup.model_dir).glob("*.safetensors"))
    print(f"\nGemma 3 270M, {n_documents} x {setup.seq_len} tokens, tasks {', '.join(TASKS)} (mean ablation on), "
          f"{os.cpu_count()} cores; model weights {weights / 1e9:.2f} GB")
    print("| sites x checkpoints | harness user s | sys s | user+sys s | reference user+sys s (runs) | "
          "CPU less than reference | arithmetic bound | harness peak RSS GB | RSS - weights GB |")
    print("|---|---|---|---|---|---|---|---|---|")
    table = []
    for config, sites in plan.items():
        r = harness[config]
        refs = [reference[(layer, k)] for layer, ks in sites.items() for k in ks]
        ref_cpu = sum(x["cpu_seconds"] for x in refs)
        less = ref_cpu / r["cpu_seconds"]
        layers_at = [layer for layer, ks in sites.items() for _ in ks]
        bound = reference_macs(shape, layers_at, n_latents, tokens) / harness_macs(
            shape, {layer: len(ks) for layer, ks in sites.items()}, n_latents, tokens, counted)
        table.append({"sites": config[0], "checkpoints_per_site": config[1], "harness": r,
                      "reference_cpu_seconds": ref_cpu, "reference_user_seconds": sum(x["user_seconds"] for x in refs),
                      "reference_sys_seconds": sum(x["sys_seconds"] for x in refs), "reference_runs": len(refs),
                      "cpu_less_than_reference": less, "arithmetic_bound_less": bound})
        print(f"| {config[0]} x {config[1]} | {r['user_seconds']:.1f} | {r['sys_seconds']:.1f} | {r['cpu_seconds']:.1f} | "
              f"{ref_cpu:.1f} ({len(refs)}) | {less:.2f}x | {bound:.2f}x | {r['max_rss_bytes'] / 1e9:.2f} | "
              f"{(r['max_rss_bytes'] - weights) / 1e9:+.2f} |")
    marginal = None
    if (1, 1) in harness and (6, 1) in harness:
        one, six = harness[(1, 1)], harness[(6, 1)]
        marginal = (six["cpu_seconds"] - one["cpu_seconds"]) / 5
        # CPU s per multiply-add: from the extra checkpoints of (1,4) when measured (no per-process fixed cost in it)
        rate = one["cpu_seconds"] / harness_macs(shape, {6: 1}, n_latents, tokens, counted)
        if (1, 4) in harness:
            rate = (harness[(1, 4)]["cpu_seconds"] - one["cpu_seconds"]) / (
                harness_macs(shape, {6: 4}, n_latents, tokens, counted) - harness_macs(shape, {6: 1}, n_latents, tokens, counted))
        others = [layer for layer in CONFIGURATIONS[(6, 1)] if layer != 6]
        suffix_share = sum(harness_macs(shape, {6: 1, layer: 1}, n_latents, tokens, counted)
                           - harness_macs(shape, {6: 1}, n_latents, tokens, counted) for layer in others) / len(others)
        clean_pass = tokens * shape.layers * shape.layer_macs + counted * shape.head_macs
        print(f"marginal site (6x1 minus 1x1, over 5): {marginal:.1f} CPU s; its own suffix passes (ablated + spliced "
              f"suffixes, their lm_head products, the SAE) at the measured rate: {suffix_share * rate:.1f} CPU s; a second "
              f"clean pass would add {clean_pass * rate:.1f} CPU s")
    print(f"metrics: {compared} values compared, largest relative difference {worst:.2e} "
          f"({'all within' if not problems else 'NOT within'} rtol {args.rtol})")
    for line in problems[:30]:
        print("  " + line)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "setting": {**common, "n_sequences": n_documents, "tasks": list(TASKS), "cores": os.cpu_count(),
                        "harness_task_options": {"spliced_loss": {"mean_ablation": True}}, "rtol": args.rtol,
                        "weights_bytes": weights},
            "table": table, "marginal_site_cpu_seconds": marginal,
            "reference": {label(*key): value for key, value in reference.items()},
            "metrics_compared": compared, "max_relative_difference": worst, "problems": problems,
        }, indent=1) + "\n", encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
