"""`sae-bench metrics`: every task's declared metrics (direction, gate default, unit, definition)."""

from __future__ import annotations

from pathlib import Path

from sae_bench.core.arguments import add_include_path


def register(sub) -> None:
    p = sub.add_parser("metrics", help="list every task's metrics: which way is better, gate default, definition")
    add_include_path(p)
    p.add_argument("--write", type=Path, metavar="FILE",
                   help="replace the generated tables in FILE, e.g. docs/metrics.md (default: print them)")
    p.add_argument("--format", choices=("text", "markdown"), default="text",
                   help="text: fits 100 columns (default); markdown: the tables docs/metrics.md holds")
    p.set_defaults(func=cmd_metrics)


def cmd_metrics(args) -> int:
    from sae_bench.core.errors import InputError
    from sae_bench.core.metric_docs import render, render_text, with_tables
    from sae_bench.core.task_index import declarations

    tasks = declarations([str(p) for p in args.include_path])
    if args.write is None:
        print(render(tasks) if args.format == "markdown" else render_text(tasks), end="")
        return 0
    tables = render(tasks)
    try:
        text = args.write.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(args.write, f"cannot read: {exc.strerror or exc}") from None
    args.write.write_text(with_tables(text, tables, str(args.write)), encoding="utf-8")
    print(f"wrote the metric tables of {args.write}")
    return 0
