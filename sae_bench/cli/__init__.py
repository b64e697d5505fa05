"""The `sae-bench` command: a thin layer over the Python API (runner, leaderboard, compare, gate).

One module per subcommand in this package, each with `register(subparsers)`; they are found by
listing the package (a new subcommand is a new file here, nothing else to edit) and a module that
fails to import fails loudly. A task's own subcommands live in its folder and are found through
its declarations (`Task.commands`, read from the task index without importing the tasks). The
private module `_quiet` holds what subcommands share; options come from `sae_bench.core.arguments`.

Bad input of any kind ends with one line on stderr naming the input and the problem, exit code
2, and no result written. This package holds argument parsing and printing only.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

from sae_bench.cli._quiet import silenced_libraries
from sae_bench.core.errors import EXIT_BAD_INPUT, InputError, os_problem

PREFIX = "sae-bench: error: "

__all__ = ["build_parser", "main", "silenced_libraries", "subcommand_modules", "subcommands", "task_commands"]

# Listed first in `sae-bench --help`; the others follow alphabetically.
FIRST = ("run", "tasks")


def _own_names() -> list[str]:
    """The subcommands of this package: its public modules."""
    return [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]


def task_commands() -> dict[str, str]:
    """Subcommand name -> module, for the subcommands tasks declare (`Task.commands`)."""
    from sae_bench.core import task_index

    found: dict[str, str] = {}
    for declared in task_index.declarations().values():
        for name, module in declared.commands:
            if name in found or name in _own_names():
                raise TypeError(f"task {declared.name} declares the subcommand {name!r}, which exists already")
            found[name] = module
    return found


def subcommands() -> dict[str, str]:
    """Subcommand name -> module with `register(subparsers)`: this package's and the tasks', `run` and
    `tasks` first, the others alphabetically."""
    found = {name: f"{__name__}.{name}" for name in _own_names()}
    found.update(task_commands())
    return dict(sorted(found.items(), key=lambda kv: (FIRST.index(kv[0]) if kv[0] in FIRST else len(FIRST), kv[0])))


def _module(path: str):
    module = importlib.import_module(path)
    if not callable(getattr(module, "register", None)):
        raise TypeError(f"{module.__name__} is a subcommand module but has no register(subparsers)")
    return module


def subcommand_modules() -> list:
    """The subcommand modules (`subcommands`), imported, in that order."""
    return [_module(path) for path in subcommands().values()]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is the same one escaped line as any bad input, exit code 2
    (argparse would print the usage block and echo unrecognised arguments raw)."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        import re

        ranged = re.match(r"^argument (?P<option>[^:]+): (?P<value>\S+) (?P<problem>must be .*)$", message)
        if ranged:  # an options.bounded refusal: `<option> <value>: <problem>` like any bad input
            line = InputError(f"{ranged['option'].split('/')[0]} {ranged['value']}", ranged["problem"])
        else:
            line = InputError(self.prog, f"{message} (see {self.prog} --help)")
        self.exit(EXIT_BAD_INPUT, f"{PREFIX}{line}\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `only` (a subcommand's name) just that subcommand, so that a
    listing command never imports what the others need (the runner imports torch: ~1.5 s)."""
    parser = OneLineParser(prog="sae-bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    if only is not None:
        _module(f"{__name__}.{only}" if only in _own_names() else task_commands()[only]).register(sub)
        return parser
    for module in subcommand_modules():
        module.register(sub)
    return parser


def _named_subcommand(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` names first, when it is one of ours (else None: the whole parser)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if not (first and argv and argv[0] == first):
        return None
    return first if first in _own_names() or first in task_commands() else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_named_subcommand(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (already printed on one line) or --help
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        from sae_bench.core.progress import live

        with silenced_libraries(bool(getattr(args, "quiet", False)), bars=live()):
            return int(args.func(args) or 0)
    except InputError as exc:
        print(f"{PREFIX}{exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # the environment (a file we cannot read or write) where no module named it
        where = exc.filename if exc.filename is not None else "sae-bench"
        print(f"{PREFIX}{InputError(where, os_problem(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("sae-bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
