"""The `sae-bench` command: a thin layer over the Python API (runner, leaderboard, compare, gate).

One module per subcommand in this package, each with `register(subparsers)`; they are found by
listing the package (a new subcommand is a new file here, nothing else to edit) and a module that
fails to import fails loudly. Private modules (`_options`, `_quiet`) hold what subcommands share.

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

__all__ = ["build_parser", "main", "silenced_libraries", "subcommand_modules"]

# Listed first in `sae-bench --help`; the others follow alphabetically.
FIRST = ("run", "tasks")


def subcommand_modules() -> list:
    """The subcommand modules of this package (public modules), `run` and `tasks` first."""
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]
    names.sort(key=lambda n: (FIRST.index(n) if n in FIRST else len(FIRST), n))
    modules = [importlib.import_module(f"{__name__}.{name}") for name in names]
    for module in modules:
        if not callable(getattr(module, "register", None)):
            raise TypeError(f"{module.__name__} is in sae_bench.cli but has no register(subparsers)")
    return modules


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
        importlib.import_module(f"{__name__}.{only}").register(sub)
        return parser
    for module in subcommand_modules():
        module.register(sub)
    return parser


def _named_subcommand(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` names first, when it is one of ours (else None: the whole parser)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    names = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    return first if first in names and argv and argv[0] == first else None


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
