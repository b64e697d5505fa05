"""argparse options derived from documented config dataclasses (see `sae_bench.core.options`).

A subcommand asks for the fields it needs (`add_options(parser, RunConfig, ["model", ...])`) and
reads back only the values the user gave (`given(args, RunConfig)`), so the dataclass stays the one
place for each option's spelling, help, default and check. Every option's help shows its default.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping

from sae_bench.core.options import check_values, flag_of, option_fields


def _scalar_type(hint: Any):
    """int/float/str/Path from a field's annotation (Optional unwrapped); str otherwise."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        hint = args[0]
    return hint if hint in (int, float, str, Path) else str


def _dest(f: dataclasses.Field) -> str:
    """The argparse attribute: the field's name, or the flag's for an inverted flag (`args.quiet`)."""
    return flag_of(f).lstrip("-").replace("-", "_") if f.metadata["invert"] else f.name


def _default_text(value: Any) -> str:
    if isinstance(value, bool) or value is None or value == {} or value == []:
        return ""
    return f" (default: {value})"


def add_options(parser: argparse.ArgumentParser, cls, names: Iterable[str] | None = None, *,
                defaults: Mapping[str, Any] | None = None, helps: Mapping[str, str] | None = None,
                required: Iterable[str] = ()) -> None:
    """Add `cls`'s option fields `names` (default: all) to `parser`.

    defaults: this subcommand's own defaults (shown and applied); helps: this subcommand's wording
    of a field's help; required: fields the user must give. Unlisted options parse to None
    ("not given"), so the dataclass default or a suite file can fill them."""
    fields = option_fields(cls)
    hints = typing.get_type_hints(cls)
    defaults, helps, required = dict(defaults or {}), dict(helps or {}), set(required)
    for name in names if names is not None else fields:
        f = fields[name]
        meta = f.metadata
        shown = defaults.get(name, f.default)
        text = helps.get(name, meta["help"])
        if "default" not in text and name not in required and shown is not dataclasses.MISSING:
            text += _default_text(shown)
        kwargs: dict[str, Any] = {"dest": _dest(f), "default": defaults.get(name), "help": text.replace("%", "%%")}
        if meta["append"]:
            kwargs.update(action="append", type=meta["type"] or str)
        elif hints.get(name) is bool:
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = meta["type"] or _scalar_type(hints.get(name))
        if not kwargs.get("action") == "store_true":
            kwargs["metavar"] = meta["metavar"] or flag_of(f).lstrip("-").replace("-", "_").upper()
        if name in required:
            kwargs["required"] = True
        parser.add_argument(flag_of(f), **kwargs)


def given(args: argparse.Namespace, cls) -> dict[str, Any]:
    """The option values the user gave (or the subcommand defaulted), converted to field values and
    checked by their fields' checks."""
    values = {}
    for name, f in option_fields(cls).items():
        value = getattr(args, _dest(f), None)
        if value is None:
            continue
        if f.metadata["convert"] is not None:
            value = f.metadata["convert"](value)
        if f.metadata["invert"]:
            value = not value
        values[name] = value
    check_values(cls, values)
    return values


def add_include_path(parser: argparse.ArgumentParser) -> None:
    """`--include-path FOLDER`: extra task files (run and tasks)."""
    parser.add_argument("--include-path", action="append", default=[], type=Path, metavar="FOLDER",
                        help="folder of extra task files (repeatable; default: none)")


def include_paths(args: argparse.Namespace) -> None:
    from sae_bench.core import registry

    for folder in args.include_path:
        registry.include_path(folder)
