"""The `sae-bench` command: a thin layer over the Python API (runner, leaderboard, compare, gate).

Bad input of any kind ends with one line on stderr naming the input and the problem, exit code
2, and no result written. This module holds argument parsing and printing only.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any, Sequence

from sae_bench.errors import EXIT_BAD_INPUT, InputError

DEFAULT_RESULTS = Path("results")
DEFAULT_CACHE = Path(".sae-bench-cache")


def _parse_value(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


def _task_options(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`--task-option probing.k_values=[1,2]` -> {"probing": {"k_values": [1, 2]}}."""
    options: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        task, dot, name = key.partition(".")
        if not sep or not dot or not task or not name:
            raise InputError(f"--task-option {item}", "expected TASK.OPTION=VALUE")
        options.setdefault(task, {})[name] = _parse_value(value)
    return options


def _checkpoint_specs(items: Sequence[str]):
    """`REF` or `REF@HOOKPOINT` (a hub id or path, optionally a hookpoint inside it)."""
    from sae_bench.runner import CheckpointSpec

    specs = []
    for item in items:
        ref, sep, hookpoint = item.rpartition("@") if "@" in item else (item, "", "")
        specs.append(CheckpointSpec(ref=ref, hookpoint=hookpoint or None))
    return specs


# --------------------------------------------------------------------------------------- run
def _add_run(sub) -> None:
    p = sub.add_parser("run", help="evaluate checkpoints (no arguments: the bundled fixture suite)")
    p.add_argument("--suite", type=Path, help="suite JSON (default: the bundled fixture suite)")
    p.add_argument("--model", help="model folder, hub id or .gguf file")
    p.add_argument("--gguf-file", help="GGUF file name inside --model")
    p.add_argument("--revision", help="model revision (hub)")
    p.add_argument("--checkpoint", "-c", action="append", default=[], metavar="REF[@HOOKPOINT]")
    p.add_argument("--corpus", help="corpus file or hub dataset id")
    p.add_argument("--corpus-split", default="train")
    p.add_argument("--corpus-column", default="text")
    p.add_argument("--seq-len", type=int)
    p.add_argument("--max-documents", type=int)
    p.add_argument("--tasks", help="comma-separated task names (default: all)")
    p.add_argument("--task-option", action="append", default=[], metavar="TASK.OPTION=VALUE")
    p.add_argument("--include-path", action="append", default=[], type=Path, help="folder of extra task files")
    p.add_argument("--results", type=Path, help="results folder (default: results/ or results/fixtures)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--device", default="cpu",
                   help="cpu, cuda, cuda:N, or auto (spread a model too large for one device: device_map='auto')")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8, help="sequences per model forward")
    p.add_argument("--overwrite", action="store_true", help="recompute records that already exist")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_run)


def run_config_from_args(args):
    """Build (RunConfig, specs) from parsed `run` arguments (the suite fills what is not given)."""
    from sae_bench import registry
    from sae_bench.runner import RunConfig, load_suite

    for folder in args.include_path:
        registry.include_path(folder)
    suite: dict[str, Any] = {}
    specs = _checkpoint_specs(args.checkpoint)
    suite_path = args.suite
    if suite_path is None and not args.model and not specs:
        from sae_bench.fixtures import SUITE_PATH

        suite_path = SUITE_PATH
    model_label = corpus_label = None
    if suite_path is not None:
        suite, suite_specs = load_suite(suite_path)
        specs = specs or suite_specs
        base = Path(suite_path).parent
        label_root = suite.get("label_root", base.name)
        if not args.model and "model" in suite:
            model_label = f"{label_root}/{suite['model']}"
        if not args.corpus and "corpus" in suite:
            corpus_label = f"{label_root}/{suite['corpus']}"
        for spec in specs:
            if spec.label and not spec.label.startswith(label_root + "/"):
                spec.label = f"{label_root}/{spec.label}"
    else:
        base = Path.cwd()
    model = args.model or (str(base / suite["model"]) if "model" in suite else None)
    corpus = args.corpus or (str(base / suite["corpus"]) if "corpus" in suite else None)
    if not model:
        raise InputError("--model", "no model given (and no suite names one)")
    if not corpus:
        raise InputError("--corpus", "no corpus given (and no suite names one)")
    results = args.results or (DEFAULT_RESULTS / "fixtures" if suite_path is not None and args.suite is None
                               else DEFAULT_RESULTS)
    config = RunConfig(
        model=model, model_label=model_label, corpus=corpus, corpus_label=corpus_label,
        model_revision=args.revision, gguf_file=args.gguf_file, trust_remote_code=args.trust_remote_code,
        seq_len=args.seq_len or int(suite.get("seq_len", 128)), max_documents=args.max_documents,
        corpus_split=args.corpus_split, corpus_column=args.corpus_column,
        tasks=[t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else suite.get("tasks"),
        task_options={**suite.get("task_options", {}), **_task_options(args.task_option)},
        results_dir=results, cache_dir=None if args.no_cache else args.cache_dir, device=args.device,
        dtype=args.dtype, seed=args.seed, batch_size=args.batch_size, overwrite=args.overwrite,
        show_progress=not args.quiet,
        resources={k: base / v for k, v in suite.get("resources", {}).items()},
    )
    return config, specs


def cmd_run(args) -> int:
    from sae_bench.runner import evaluate
    from sae_bench.summary import format_table

    config, specs = run_config_from_args(args)
    report = evaluate(config, specs)
    from sae_bench import distributed

    if not distributed.is_writer():
        return 0
    print(format_table(report.records))
    for checkpoint, hookpoint, task, reason in report.skipped:
        print(f"skipped {task} for {checkpoint} @ {hookpoint}: {reason}")
    print(f"{len(report.records)} records in {config.results_dir} ({report.reused} reused)")
    return 0


# ------------------------------------------------------------------------------------- tasks
def cmd_tasks(args) -> int:
    from sae_bench import registry

    for folder in args.include_path:
        registry.include_path(folder)
    for name, cls in registry.all_tasks().items():
        print(f"{name:<16} v{cls.version:<6} {cls.description}")
    return 0


def cmd_fixtures_build(args) -> int:
    from sae_bench.fixtures import FIXTURES_DIR
    from sae_bench.fixtures.build import build

    build(args.out or FIXTURES_DIR)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sae-bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run(sub)
    p = sub.add_parser("tasks", help="list registered tasks with their versions")
    p.add_argument("--include-path", action="append", default=[], type=Path)
    p.set_defaults(func=cmd_tasks)
    fixtures = sub.add_parser("fixtures", help="bundled fixtures").add_subparsers(dest="fixtures_command", required=True)
    p = fixtures.add_parser("build", help="rebuild the deterministic fixtures")
    p.add_argument("--out", type=Path, default=None)
    p.set_defaults(func=cmd_fixtures_build)
    for register in _plugin_commands():
        register(sub)
    return parser


def _plugin_commands():
    """CLI commands contributed by other modules (leaderboard, compare, gate, maxact)."""
    import importlib

    found = []
    for module_name in ("sae_bench.leaderboard_build.cli_commands", "sae_bench.compare", "sae_bench.gate",
                        "sae_bench.maxact_cli"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        register = getattr(module, "register_cli", None)
        if register is not None:
            found.append(register)
    return found


@contextlib.contextmanager
def silenced_libraries(quiet: bool):
    """`--quiet`: no progress bars or chatter from the libraries we drive (transformers' weight-loading
    bar, datasets' and the hub's bars, library warnings) while the command runs; errors still print.
    lm-eval's own bars are swallowed by `downstream.evaluate_tasks(quiet=True)`. Everything is
    restored afterwards, since main() is also called in-process. (TQDM_DISABLE would not do: tqdm
    reads it once, at import.)"""
    if not quiet:
        yield
        return
    import logging

    import huggingface_hub.utils as hub_utils
    from datasets.utils import logging as ds_logging
    from transformers.utils import logging as hf_logging

    loggers = [logging.getLogger(n) for n in ("lm_eval", "transformers", "datasets", "accelerate")]
    levels = [lg.level for lg in loggers]
    bars = [(hf_logging.is_progress_bar_enabled(), hf_logging.enable_progress_bar, hf_logging.disable_progress_bar),
            (ds_logging.is_progress_bar_enabled(), ds_logging.enable_progress_bar, ds_logging.disable_progress_bar),
            (not hub_utils.are_progress_bars_disabled(), hub_utils.enable_progress_bars,
             hub_utils.disable_progress_bars)]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    for _, _, disable in bars:
        disable()
    try:
        yield
    finally:
        for was_enabled, enable, _ in bars:
            if was_enabled:
                enable()
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with silenced_libraries(getattr(args, "quiet", False)):
            return int(args.func(args) or 0)
    except InputError as exc:
        print(f"sae-bench: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("sae-bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
