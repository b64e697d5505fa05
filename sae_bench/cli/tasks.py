"""`sae-bench tasks`: list the registered tasks with their versions."""

from __future__ import annotations

from sae_bench.cli._options import add_include_path, include_paths


def register(sub) -> None:
    p = sub.add_parser("tasks", help="list registered tasks with their versions")
    add_include_path(p)
    p.set_defaults(func=cmd_tasks)


def cmd_tasks(args) -> int:
    from sae_bench import registry

    include_paths(args)
    for name, cls in registry.all_tasks().items():
        print(f"{name:<16} v{cls.version:<6} {cls.description}")
    return 0
