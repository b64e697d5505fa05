"""`sae-bench tasks`: list the registered tasks with their versions."""

from __future__ import annotations

from sae_bench.core.arguments import add_include_path


def register(sub) -> None:
    p = sub.add_parser("tasks", help="list registered tasks with their versions")
    add_include_path(p)
    p.set_defaults(func=cmd_tasks)


def cmd_tasks(args) -> int:
    import textwrap

    from sae_bench.core.task_index import declarations

    for name, task in declarations([str(p) for p in args.include_path]).items():
        head = f"{name:<18} v{task.version:<4} "
        print(textwrap.fill(task.description, 100, initial_indent=head, subsequent_indent=" " * len(head)))
    return 0
