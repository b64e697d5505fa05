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
from sae_bench.errors import EXIT_BAD_INPUT, InputError

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sae-bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for module in subcommand_modules():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with silenced_libraries(bool(getattr(args, "quiet", False))):
            return int(args.func(args) or 0)
    except InputError as exc:
        print(f"sae-bench: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("sae-bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
