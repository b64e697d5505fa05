"""Our absorption and sparse-probing tasks beside SAEBench 0.6.0's own code, on the same model, SAE,
words (one JSON list given to both) and datasets, each in its own fresh process: the numbers side by side, CPU seconds (user and sys apart)
and peak RSS (VmHWM read by each process itself: a new address space after exec, so nothing is
inherited from this launcher).

SAEBench imports as `sae_bench` like us, so it runs in its own venv (built once, cached outside
the repository: SAEBENCH_VENV or ~/.cache/sae-bench-peers/saebench). What its side adapts is in
`benchmarks/peers/saebench_side.py` (model wrapper, SAE encoder, word list, seeding).

    python benchmarks/peer_saebench.py --fixture                       # tiny model, seconds
    python benchmarks/peer_saebench.py --real --max-words 2000 --seeds 42   # Gemma 3 270M, layers.6 TopK
    python benchmarks/peer_saebench.py --real --eval sparse_probing --dense --seeds 42,1,2
    python benchmarks/peer_saebench.py --real --eval sparse_probing --shipped   # its run_eval as shipped: cost
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEER_VENV = Path(os.environ.get("SAEBENCH_VENV", Path.home() / ".cache" / "sae-bench-peers" / "saebench"))
SHARED = ("mean_absorption_fraction", "mean_full_absorption", "mean_num_split_features")


def ensure_peer_venv(quiet: bool = False) -> Path:
    """The SAEBench venv's python, built if missing (torch pinned by constraints.txt, torchvision
    removed: SAEBench never imports it and the build pip picks for torch 2.13 does not load)."""
    python = PEER_VENV / "bin" / "python"
    if python.exists():
        return python
    run = lambda *cmd: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL if quiet else None)
    run(sys.executable, "-m", "venv", str(PEER_VENV))
    run(str(python), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"), "sae-bench==0.6.0")
    run(str(python), "-m", "pip", "uninstall", "-y", "torchvision")
    return python


def ours(args) -> int:
    """Our side (run in a fresh process by the launcher)."""
    sys.path.insert(0, str(HERE))
    import _importable

    _importable.ensure()
    import torch

    from sae_bench import load_checkpoint

    from sae_bench.core import registry
    from sae_bench.core.context import EvalContext, TokenizedCorpus
    from sae_bench.models import ModelAdapter

    torch.set_num_threads(args.threads)
    registry.discover()
    model = ModelAdapter.load(args.model, device=args.device)
    sae = load_checkpoint(args.checkpoint, hookpoint=args.hookpoint, device=args.device)
    empty = torch.zeros(0, 2, dtype=torch.int64)
    ctx = EvalContext(model=model, hookpoint=args.hookpoint, activations=None, show_progress=False,
                      corpus=TokenizedCorpus("none", "none", "none", empty, empty, empty.bool(), 2))
    if args.eval == "sparse_probing":
        task = registry.get_task("sparse_probing")(**sparse_options(args))
        task.check_inputs({})
        result = task.run(sae, ctx)
        out = {"per_dataset": {name: {metric: {"mean": v["mean"], "per_class": v["per_class"]}
                                      for metric, v in entry.items()}
                               for name, entry in result.artifacts["per_dataset"].items()}}
        return _finish(out, args.out)
    task = registry.get_task("absorption")(**task_options(args))
    result = task.run(sae, ctx)
    per_letter = result.artifacts.get("per_letter", {})
    out = {"metrics": {k: v.value for k, v in result.metrics.items() if "/" not in k},
           "probe_f1": result.artifacts["probe_f1"],
           "main_latents": {k: v["main_latents"] for k, v in per_letter.items()},
           "per_letter": {k: {"absorption_fraction": v["absorption_fraction"],
                              "full_absorption_rate": v["full_absorption_rate"],
                              "num_split_features": len(v["main_latents"]),
                              "probe_true_positives": v["probe_true_positives"]}
                          for k, v in per_letter.items() if "absorption_fraction" in v}}
    return _finish(out, args.out)


def _finish(out: dict, path: str) -> int:
    from bench_real import own_peak_rss_bytes  # benchmarks/ is on the path (`ours`)

    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cost"] = {"cpu_user_s": usage.ru_utime, "cpu_sys_s": usage.ru_stime, "peak_rss_bytes": own_peak_rss_bytes()}
    import torch

    if torch.cuda.is_available() and torch.cuda.max_memory_allocated():
        out["cost"]["peak_cuda_bytes"] = torch.cuda.max_memory_allocated()
    Path(path).write_text(json.dumps(out, indent=1))
    return 0


def sparse_options(args) -> dict:
    return {"random_seed": args.seed, "datasets": tuple(args.datasets.split(",")), "data_dir": args.data_dir,
            "probe_train_set_size": args.train_size, "probe_test_set_size": args.test_size,
            "context_length": args.context_length, "k_values": tuple(int(k) for k in args.k_values.split(",")),
            "padding": args.padding, "dense_probes": args.dense}


def task_options(args) -> dict:
    return {"random_seed": args.seed, "words_file": args.words_file, "prompt_template": args.template,
            "prompt_token_pos": args.pos, "min_feats_for_eval": args.min_letters, "min_GT_probe_f1": args.min_f1}


def word_list(args) -> list[str]:
    sys.path.insert(0, str(HERE))
    import _importable

    _importable.ensure()
    from transformers import AutoTokenizer

    from sae_bench.tasks.absorption.vocab import seeded_subset, single_token_words

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    words = seeded_subset(single_token_words(tokenizer), args.max_words, args.seed)
    if not args.fixture:  # SAEBench's code fails when a letter has no training or no held-out word
        import random

        from sae_bench.tasks.absorption.vocab import LETTERS, first_letter_class

        shuffled = random.Random(args.seed).sample(words, len(words))
        cut = int(len(shuffled) * 0.8)
        missing = [f"{LETTERS[l]} ({part})" for part, chunk in (("train", shuffled[:cut]), ("held-out", shuffled[cut:]))
                   for l in sorted(set(range(26)) - {first_letter_class(w) for w in chunk})]
        if missing:
            raise SystemExit(f"seed {args.seed} with {len(words)} words leaves letters without words: "
                             f"{', '.join(missing)}; SAEBench's code cannot run that (KeyError / one-class AUROC): "
                             "choose another --seeds or more --max-words")
    if args.fixture:  # SAEBench needs every prompt of a letter to have one length: keep words whose
        # prompt line "\n{word}: X" is exactly [separator, word, ':', ' X'] with the tiny tokenizer
        line = lambda w: "\n" + args.template.format(word=w) + " " + w.strip()[0].upper()
        words = [w for w in words if len(tokenizer(line(w), add_special_tokens=False).input_ids) == 4]
    return words


def resolve_inputs(args) -> None:
    if args.fixture:
        args.model = str(ROOT / "fixtures" / "tiny-gemma4")
        args.checkpoint = str(ROOT / "fixtures" / "saes" / "sparsify" / "tiny-gemma4-8x")
        args.hookpoint = "layers.2"
        args.template, args.pos = "{word}:", -2
        args.min_letters, args.min_f1 = 1, 0.0
    elif args.real:
        sys.path.insert(0, str(HERE))
        from real_setup import real_setup

        setup = real_setup(quiet=True)
        args.model, args.checkpoint, args.hookpoint = str(setup.model_dir), str(setup.sae_run_dir), setup.hookpoint
    if not (args.model and args.checkpoint and args.hookpoint):
        raise SystemExit("give --fixture, --real, or --model, --checkpoint and --hookpoint")


def compare_probing(mine: dict, theirs: dict) -> float:
    """Print both sides' k-sparse accuracies per dataset (and per class); return the largest |difference|."""
    worst = 0.0
    print(f"{'dataset / metric':64} {'ours':>9} {'SAEBench':>9} {'|diff|':>9}")
    for dataset, entry in theirs["per_dataset"].items():
        for metric, value in entry.items():
            a = mine["per_dataset"][dataset][metric]
            diff = abs(a["mean"] - value["mean"])
            worst = max(worst, diff, *(abs(a["per_class"][c] - v) for c, v in value["per_class"].items()))
            print(f"{dataset + ' ' + metric:64} {a['mean']:9.5f} {value['mean']:9.5f} {diff:9.2e}")
    return worst


def compare(mine: dict, theirs: dict) -> float:
    """Print both sides; return the largest absolute difference over every shared number."""
    worst = 0.0
    print(f"{'metric':34} {'ours':>12} {'SAEBench':>12} {'|diff|':>10}")
    rows = [(name, mine.get("metrics", {}).get(name), theirs.get("metrics", {}).get(name)) for name in SHARED]
    for letter in sorted(set(mine.get("per_letter", {})) | set(theirs.get("per_letter", {}))):
        a, b = mine.get("per_letter", {}).get(letter, {}), theirs.get("per_letter", {}).get(letter, {})
        for key in ("absorption_fraction", "full_absorption_rate", "num_split_features", "probe_true_positives"):
            rows.append((f"{letter}: {key}", a.get(key), b.get(key)))
    for letter in sorted(theirs.get("probe_f1", {})):
        rows.append((f"{letter}: probe_f1", mine["probe_f1"].get(letter), theirs["probe_f1"][letter]))
    for name, a, b in rows:
        diff = abs(a - b) if a is not None and b is not None else float("inf") if (a is None) != (b is None) else 0.0
        worst = max(worst, diff)
        fmt = lambda v: "—" if v is None else f"{v:12.6f}"
        print(f"{name:34} {fmt(a):>12} {fmt(b):>12} {diff:10.2e}")
    same_latents = sum(mine.get("main_latents", {}).get(k) == v for k, v in theirs.get("main_latents", {}).items())
    print(f"main latents identical for {same_latents}/{len(theirs.get('main_latents', {}))} letters")
    return worst


def run_pair(args, name: str, seed: int, peer_python: Path, layer: int, sae_folder: Path, tmp: Path):
    """Both sides of one eval and seed, each in a fresh process: (ours, SAEBench's) JSON."""
    common = ["--seed", str(seed), "--threads", str(args.threads)]
    if name == "absorption":
        words = tmp / f"words_{seed}.json"
        words.write_text(json.dumps(word_list(args)))
        common += ["--template", args.template, "--pos", str(args.pos), "--min-letters", str(args.min_letters),
                   "--min-f1", str(args.min_f1)]
        print(f"\n== absorption, seed {seed}: {len(json.loads(words.read_text()))} words, {args.hookpoint} of {args.model}")
    else:
        common += ["--data-dir", args.data_dir, "--datasets", args.datasets, "--train-size", str(args.train_size),
                   "--test-size", str(args.test_size), "--context-length", str(args.context_length),
                   "--k-values", args.k_values]
        ours_probing = ["--padding", args.padding] + ["--dense"] * args.dense
        print(f"\n== sparse probing, seed {seed}: {args.data_dir}, {args.train_size}/{args.test_size} texts, "
              f"{args.hookpoint} of {args.model}")
    mine_out, theirs_out = tmp / f"ours_{name}_{seed}.json", tmp / f"saebench_{name}_{seed}.json"
    ours_extra = ["--words-file", str(words)] if name == "absorption" else ours_probing
    theirs_extra = (["--words", str(words)] + (["--full-forward"] if args.full_forward else [])
                    if name == "absorption" else ["--dense"] * args.dense + ["--shipped"] * args.shipped)
    launch([sys.executable, __file__, "--side", "ours", "--eval", name, "--model", args.model,
            "--checkpoint", args.checkpoint, "--hookpoint", args.hookpoint, "--device", args.device,
            "--side-out", str(mine_out), *ours_extra, *common], args.quiet)
    launch([str(peer_python), str(HERE / "peers" / "saebench_side.py"), "--eval", name, "--device", args.device,
            "--model", args.model,
            "--sae", str(sae_folder), "--layer", str(layer), "--out", str(theirs_out), *theirs_extra, *common],
           args.quiet)
    return json.loads(mine_out.read_text()), json.loads(theirs_out.read_text())


def launch(cmd: list[str], quiet: bool) -> None:
    """One side in its own process, with bench_real's worker environment (idle OpenMP threads sleep,
    so neither side's CPU seconds count spinning on a shared machine)."""
    sys.path.insert(0, str(HERE))
    from bench_real import worker_env

    done = subprocess.run(cmd, stdout=subprocess.DEVNULL if quiet else None, stderr=subprocess.PIPE, text=True,
                          env=worker_env())
    if done.returncode != 0:
        last = [line for line in done.stderr.splitlines() if line.strip()][-1:] or ["(no output)"]
        raise SystemExit(f"{Path(cmd[1]).name}: exit {done.returncode}: {last[0]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--fixture", action="store_true", help="the tiny fixture model and SAE (layers.2)")
    where.add_argument("--real", action="store_true", help="Gemma 3 270M + the layers.6 TopK SAE of real_setup.py")
    parser.add_argument("--model")
    parser.add_argument("--checkpoint", help="a sparsify run folder (TopK)")
    parser.add_argument("--hookpoint")
    parser.add_argument("--max-words", type=int, default=None, help="seeded subset of the words (default: all)")
    parser.add_argument("--seeds", default="42", help="comma-separated seeds; each is one comparison")
    parser.add_argument("--template", default="{word} has the first letter:")
    parser.add_argument("--pos", type=int, default=-6)
    parser.add_argument("--min-letters", type=int, default=20)
    parser.add_argument("--min-f1", type=float, default=0.6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="both sides' device, e.g. cuda (CPU seconds are still "
                        "reported; peak CUDA memory too)")
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--full-forward", action="store_true",
                        help="SAEBench's absorption as shipped: full forwards (default: stopped after the layer)")
    parser.add_argument("--out", help="write both sides' JSON here")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--eval", choices=["absorption", "sparse_probing", "both"], default="both")
    parser.add_argument("--data-dir", default=str(ROOT / "fixtures" / "sparse_probing"),
                        help="local copies of SAEBench's probing datasets (default: the fixture copies)")
    parser.add_argument("--datasets", default=",".join((
        "LabHC/bias_in_bios_class_set1", "LabHC/bias_in_bios_class_set2", "LabHC/bias_in_bios_class_set3",
        "canrager/amazon_reviews_mcauley_1and5", "canrager/amazon_reviews_mcauley_1and5_sentiment",
        "codeparrot/github-code", "fancyzhx/ag_news", "Helsinki-NLP/europarl")))
    parser.add_argument("--train-size", type=int, default=16)
    parser.add_argument("--test-size", type=int, default=8)
    parser.add_argument("--context-length", type=int, default=128)
    parser.add_argument("--k-values", default="1,2,5")
    parser.add_argument("--padding", default="bucketed", choices=["saebench", "bucketed"],
                        help="our sparse probing's padding option (SAEBench's own side always pads to the context length)")
    parser.add_argument("--dense", action="store_true",
                        help="sparse probing: SAEBench's dense probes too (our dense_probes option), compared")
    parser.add_argument("--shipped", action="store_true",
                        help="sparse probing: SAEBench's run_eval as shipped (TransformerLens, its seeding, dense "
                             "probes; --real only): a cost comparison, its draws are not ours")
    parser.add_argument("--side", choices=["ours"], help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=42, help=argparse.SUPPRESS)
    parser.add_argument("--side-out", dest="out_side", help=argparse.SUPPRESS)
    parser.add_argument("--words-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "ours":
        args.out = args.out_side
        return ours(args)
    resolve_inputs(args)
    if args.shipped and not args.real:
        raise SystemExit("--shipped needs --real: TransformerLens knows Gemma 3 270M by name, not the fixture model")
    args.dense = args.dense or args.shipped  # SAEBench as shipped runs its dense probes: so do we
    peer_python = ensure_peer_venv(args.quiet)
    layer = int(args.hookpoint.split(".")[1])
    sae_folder = Path(args.checkpoint) / args.hookpoint
    report, worst = {}, 0.0
    evals = ["absorption", "sparse_probing"] if args.eval == "both" else [args.eval]
    with tempfile.TemporaryDirectory() as tmp:
        for seed in [int(s) for s in args.seeds.split(",")]:
            args.seed = seed
            for name in evals:
                mine, theirs = run_pair(args, name, seed, peer_python, layer, sae_folder, Path(tmp))
                diff = compare(mine, theirs) if name == "absorption" else compare_probing(mine, theirs)
                if name == "sparse_probing" and args.shipped:
                    print("(SAEBench as shipped threads one generator through every probe: other draws, so these "
                          "numbers differ by sampling; agreement is checked without --shipped)")
                else:
                    worst = max(worst, diff)
                for side, data in (("ours", mine), ("SAEBench", theirs)):
                    cost = data["cost"]
                    print(f"{side:9} CPU user {cost['cpu_user_s']:8.1f} s  sys {cost['cpu_sys_s']:6.1f} s  "
                          f"peak RSS {cost['peak_rss_bytes'] / 2**30:5.2f} GiB")
                ratio = sum(theirs["cost"][k] for k in ("cpu_user_s", "cpu_sys_s")) / \
                    sum(mine["cost"][k] for k in ("cpu_user_s", "cpu_sys_s"))
                print(f"CPU (user+sys) SAEBench / ours: {ratio:.2f}x")
                report[f"{name}/seed{seed}"] = {"ours": mine, "saebench": theirs, "cpu_ratio": ratio}
    compared = "" if args.eval != "sparse_probing" or not args.shipped else " (sparse probing as shipped: not compared)"
    print(f"\nlargest |difference| over every shared number and seed{compared}: {worst:.3g} (tolerance {args.tol:g})")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0 if worst <= args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
