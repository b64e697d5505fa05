"""`sae-bench run`: evaluate checkpoints (no arguments: the bundled fixture suite) and print a table.

Options come from `RunConfig`'s documented fields; a suite file fills what the command line does
not give. Parsing and printing only: the work is `sae_bench.run.runner.evaluate`.
"""

from __future__ import annotations

from pathlib import Path
from sae_bench.core.arguments import add_include_path, add_options, given, include_paths
from sae_bench.core.errors import InputError

DEFAULT_RESULTS = Path("results")
DEFAULT_CACHE = Path(".sae-bench-cache")


def register(sub) -> None:
    from sae_bench.inputs.packing import DEFAULT_SEQ_LEN
    from sae_bench.run.config import RunConfig

    p = sub.add_parser("run", help="evaluate checkpoints (no arguments: the bundled fixture suite)")
    p.add_argument("--suite", type=Path, help="suite JSON (default: the bundled fixture suite)")
    p.add_argument("--checkpoint", "-c", action="append", default=[], metavar="REF[@SUBFOLDER] | RELEASE:LAYER",
                   help="checkpoint folder, file or hub id, optionally @SUBFOLDER inside it (a hookpoint, or a "
                        "hub sae_id folder: owner/repo@sub/folder fetches only that folder), or RELEASE:LAYER of a "
                        "known release (sae-bench releases) (repeatable; default: the suite's checkpoints)")
    p.add_argument("--release", help="evaluate a known release (sae-bench releases); --model defaults to its model")
    p.add_argument("--layers", help="with --release: comma-separated layers (default: every published layer)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (checkpoints, sites, forwards, estimated time, cache disk) and stop")
    add_include_path(p)
    add_options(p, RunConfig, defaults={"cache_dir": DEFAULT_CACHE},
                helps={"results_dir": "results folder (default: results/, or results/fixtures for the bundled suite)",
                       "model": "model folder, hub id or .gguf file (default: the suite's)",
                       "corpus": "corpus file or hub dataset id (default: the suite's)",
                       "seq_len": f"tokens per sequence, BOS included (default: the suite's, else {DEFAULT_SEQ_LEN})",
                       "tasks": "comma-separated task names (default: the suite's, else all registered tasks)"})
    p.add_argument("--no-cache", action="store_true", help="do not read or write the activation cache")
    p.add_argument("--wide", action="store_true",
                   help="print every headline metric at full precision (default: what fits 100 columns)")
    p.set_defaults(func=cmd_run)


def run_config_from_args(args):
    """Build (RunConfig, specs) from parsed `run` arguments (the suite fills what is not given:
    `sae_bench.run.config.merge_suite`)."""
    from sae_bench.run.config import CheckpointSpec, RunConfig, merge_suite

    include_paths(args)
    options = given(args, RunConfig)
    specs = [CheckpointSpec.parse(text) for text in args.checkpoint] + _release_specs(args.release, args.layers)
    trained_on = {spec.trained_on for spec in specs if spec.trained_on}
    if "model" not in options and len(trained_on) == 1:
        options["model"] = trained_on.pop()  # the release's model, unless --model says otherwise
    suite_path = args.suite
    if suite_path is None and "model" not in options and not specs:
        from sae_bench.fixtures import SUITE_PATH

        suite_path = SUITE_PATH
    if "results_dir" not in options:
        options["results_dir"] = DEFAULT_RESULTS / "fixtures" if suite_path is not None and args.suite is None \
            else DEFAULT_RESULTS
    if args.no_cache:
        options["cache_dir"] = None
    return merge_suite(suite_path, options, specs)


def _release_specs(name: str | None, layers: str | None) -> list:
    """`--release NAME [--layers 6,17,28]`: that release's checkpoints (sae_bench.inputs.releases)."""
    from sae_bench.inputs import releases
    from sae_bench.run.config import CheckpointSpec

    if name is None:
        if layers is not None:
            raise InputError(f"--layers {layers}", "needs --release NAME")
        return []
    chosen = releases.expand(name, releases.parse_layers(layers) if layers is not None else None)
    return [CheckpointSpec.from_release(found) for found in chosen]


def skipped_lines(skipped) -> list[str]:
    """One wrapped line per skipped task and reason, naming the checkpoints it concerns."""
    import textwrap

    grouped: dict[tuple[str, str, str], list[str]] = {}
    for checkpoint, hookpoint, task, reason in skipped:
        grouped.setdefault((task, hookpoint, reason), []).append(checkpoint)
    return [textwrap.fill(f"skipped {task} @ {hookpoint} for {', '.join(checkpoints)}: {reason}", 100,
                          subsequent_indent="  ", break_on_hyphens=False)
            for (task, hookpoint, reason), checkpoints in grouped.items()]


def _announce_plan(args, config, specs) -> bool:
    """A release, a multi-site run or --dry-run: the one-line plan first (stderr; stdout for --dry-run),
    then the disk check (an InputError before any work). True when the run must stop (--dry-run)."""
    import sys

    from sae_bench.core import registry

    from sae_bench.run import distributed, sweep_plan

    sites = {site for site in (sweep_plan.planned_site(spec) for spec in specs) if not site[0].startswith("<")}
    if not (args.dry_run or args.release or len(sites) > 1):
        return False
    registry.discover()  # every rank plans (and refuses) alike under torchrun; one prints
    try:
        plan = sweep_plan.make_plan(config, specs, config.tasks or list(registry.all_tasks()))
    except sweep_plan.NoPlan as exc:
        if args.dry_run:
            raise InputError("--dry-run", str(exc)) from None
        return False  # the run stops on the model itself, with its own error line
    if distributed.is_writer() and (args.dry_run or config.show_progress):
        print(plan.line(), file=sys.stdout if args.dry_run else sys.stderr, flush=True)
    sweep_plan.check_disk(plan)
    return args.dry_run


def cmd_run(args) -> int:
    from sae_bench.run import distributed
    from sae_bench.run.runner import evaluate
    from sae_bench.analysis.summary import format_table, next_steps

    config, specs = run_config_from_args(args)
    if _announce_plan(args, config, specs):
        return 0
    report = evaluate(config, specs)
    if not distributed.is_writer():
        return 0
    print(format_table(report.records, wide=args.wide))
    for line in skipped_lines(report.skipped):
        print(line)
    print(f"{len(report.records)} records in {config.results_dir} ({report.reused} reused); "
          f"tidy table: {report.table_path}")
    print("\n".join(next_steps(report.records, config.results_dir)))
    return 0
