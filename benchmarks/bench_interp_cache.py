"""Per-checkpoint cost of absorption and sparse probing on the real model with the on-disk
activation memo cold (the first run at the hookpoint: model forwards) and warm (a later run, in
a fresh process: the prompts' / texts' activations come from the cache folder), CPU seconds
(user and sys apart) and peak RSS (VmHWM) of each process.

    python benchmarks/bench_interp_cache.py --max-words 600 --seed 20 --out benchmarks/results/cpu_interp_cache.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def one_run(args) -> dict:
    """One process: load the model and SAE, run the task with the cache folder, report costs."""
    sys.path.insert(0, str(HERE))
    import _importable

    _importable.ensure()
    import torch
    from bench_real import own_peak_rss_bytes
    from real_setup import real_setup

    from sae_bench import load_checkpoint
    from sae_bench.core import registry
    from sae_bench.activations import ActivationSource
    from sae_bench.core.context import EvalContext, TokenizedCorpus
    from sae_bench.models import ModelAdapter

    torch.set_num_threads(args.threads)
    setup = real_setup(quiet=True)
    registry.discover()
    model = ModelAdapter.load(str(setup.model_dir), device="cpu")
    sae = load_checkpoint(str(setup.sae_run_dir), hookpoint=setup.hookpoint, device="cpu")
    empty = torch.zeros(0, 2, dtype=torch.int64)
    corpus = TokenizedCorpus("none", "none", "none", empty, empty, empty.bool(), 2)
    ctx = EvalContext(model=model, hookpoint=setup.hookpoint, corpus=corpus, show_progress=False,
                      activations=ActivationSource(model, setup.hookpoint, corpus, cache_dir=args.cache_dir,
                                                   show_progress=False))
    if args.task == "absorption":
        task = registry.get_task("absorption")(random_seed=args.seed, max_words=args.max_words, min_feats_for_eval=1)
    else:
        task = registry.get_task("sparse_probing")(random_seed=args.seed, data_dir=args.data_dir,
                                                   probe_train_set_size=16, probe_test_set_size=8)
    before = cpu()
    out = task.run(sae, ctx)
    after = cpu()
    return {"task_cpu_user_s": after[0] - before[0], "task_cpu_sys_s": after[1] - before[1],
            "process_cpu_user_s": after[0], "process_cpu_sys_s": after[1], "peak_rss_bytes": own_peak_rss_bytes(),
            "metrics": {k: m.value for k, m in out.metrics.items() if "/" not in k}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="absorption,sparse_probing")
    parser.add_argument("--max-words", type=int, default=600)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--data-dir", default=str(HERE.parent / "fixtures" / "sparse_probing"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out")
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    parser.add_argument("--side-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.task:
        Path(args.side_out).write_text(json.dumps(one_run(args)))
        return 0
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks.split(","):
            cache = Path(tmp) / f"cache-{task}"
            for state in ("cold", "warm"):
                out = Path(tmp) / f"{task}-{state}.json"
                subprocess.run([sys.executable, __file__, "--task", task, "--cache-dir", str(cache),
                                "--side-out", str(out), "--max-words", str(args.max_words), "--seed", str(args.seed),
                                "--data-dir", args.data_dir, "--threads", str(args.threads)], check=True)
                report[f"{task}/{state}"] = result = json.loads(out.read_text())
                print(f"{task:15} {state}: task CPU user {result['task_cpu_user_s']:7.1f} s sys "
                      f"{result['task_cpu_sys_s']:5.1f} s; process user {result['process_cpu_user_s']:7.1f} s sys "
                      f"{result['process_cpu_sys_s']:5.1f} s; peak RSS {result['peak_rss_bytes'] / 2**30:.2f} GiB")
            same = report[f"{task}/cold"]["metrics"] == report[f"{task}/warm"]["metrics"]
            print(f"{task:15} warm numbers identical to cold: {same}")
            if not same:
                return 1
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
