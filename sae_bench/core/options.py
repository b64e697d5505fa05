"""Documented config fields: each option is declared, documented and validated once, on its dataclass.

`option(default, "help")` is a `dataclasses.field` whose metadata carries the help text, the
command-line spelling and a check. The CLI derives its argparse options from these fields
(`sae_bench.core.arguments`); `check_values` validates a config's values in one place, for the
Python API and the CLI alike. A field declared with plain `field()` is not a command-line option.

This module never parses argv and never imports the runner (the runner imports it).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from sae_bench.core.errors import InputError

# A check returns a problem ("must be a positive integer") or None when the value is fine.
Check = Callable[[Any], "str | None"]
_MISSING = dataclasses.MISSING


def option(default: Any = _MISSING, help: str = "", *, flag: str | None = None, metavar: str | None = None,
           type: Callable[[str], Any] | None = None, append: bool = False, invert: bool = False,
           convert: Callable[[Any], Any] | None = None, check: Check | None = None,
           default_factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field that is also a command-line option.

    flag: the option's spelling (default `--field-name`); type: parses one argv string;
    append: the option repeats and `convert` turns the list of parsed strings into the value;
    invert: a boolean field set to False by its flag (`show_progress` <- `--quiet`);
    check: validates the final value (None or a problem)."""
    metadata = {"help": help, "flag": flag, "metavar": metavar, "type": type, "append": append,
                "invert": invert, "convert": convert, "check": check}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def is_option(f: dataclasses.Field) -> bool:
    return "help" in f.metadata


def flag_of(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def option_fields(cls) -> dict[str, dataclasses.Field]:
    """The command-line fields of a config dataclass, in declaration order."""
    return {f.name: f for f in dataclasses.fields(cls) if is_option(f)}


def check_values(cls, values: Mapping[str, Any]) -> None:
    """Raise InputError (`--flag VALUE: problem`) for the first value its field's check rejects."""
    fields = option_fields(cls)
    for name, value in values.items():
        f = fields.get(name)
        check = f.metadata.get("check") if f is not None else None
        problem = check(value) if check is not None and value is not None else None
        if problem:
            raise InputError(f"{flag_of(f)} {value}", problem)


# ------------------------------------------------------------------------------------- checks
def int_at_least(lo: int) -> Check:
    """An integer >= lo (bools are not integers here)."""
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            return "must be a positive integer" if lo == 1 else f"must be an integer >= {lo}"
        return None
    return check


positive_int = int_at_least(1)


def int_between(lo: int, hi: int) -> Check:
    """An integer in [lo, hi] (seeds: numpy and scikit-learn take [0, 2**32))."""
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            return f"must be an integer in [{lo}, {hi}]"
        return None
    return check


def boolean(value: Any) -> str | None:
    """True or false (a suite file's "yes" is not)."""
    return None if isinstance(value, bool) else "must be true or false"


def torch_dtype(value: Any) -> str | None:
    import torch

    return None if isinstance(getattr(torch, str(value), None), torch.dtype) else "not a torch dtype"


def in_range(lo: float, hi: float | None = None) -> Check:
    """A number in [lo, hi] (hi None: no upper bound)."""
    def check(value: Any) -> str | None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= lo \
            and (hi is None or value <= hi)
        if ok:
            return None
        return f"must be a number >= {lo:g}" if hi is None else f"must lie in [{lo:g}, {hi:g}]"
    return check


def bounded(kind: type, low: float | None = None, high: float | None = None):
    """An argparse `type` for an option that lives only on the command line (compare's --threshold,
    gate's --z, maxact's --top-n ...): parses `kind`, checks low <= value <= high (finite for floats),
    else argparse reports `<option> <value>: must be ...` as the one error line."""
    import argparse
    import math

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if (kind is float and not math.isfinite(value)) or (low is not None and value < low) \
                or (high is not None and value > high):
            wanted = f">= {low}" if high is None else f"<= {high}" if low is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"{text} must be {wanted}")
        return value

    parse.__name__ = kind.__name__
    return parse


# ------------------------------------------------------------------------------------ parsers
def comma_list(text: str) -> list[str]:
    """`a, b,c` -> ["a", "b", "c"] (empty items dropped)."""
    return [t.strip() for t in text.split(",") if t.strip()]


def _json_or_text(text: str, source: str) -> Any:
    """JSON when it parses (strictly: no NaN, no duplicate keys, which are errors), else the text."""
    from sae_bench.inputs.input_files import loads_json

    try:
        return loads_json(text, source)
    except InputError as exc:
        if "duplicate key" in exc.problem:
            raise
        return text


def parse_task_options(items: list[str]) -> dict[str, dict[str, Any]]:
    """`probing.k_values=[1,2]` items -> {"probing": {"k_values": [1, 2]}} (values JSON, else text)."""
    options: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        task, dot, name = key.partition(".")
        if not sep or not dot or not task or not name:
            raise InputError(f"--task-option {item}", "expected TASK.OPTION=VALUE")
        options.setdefault(task, {})[name] = _json_or_text(value, f"--task-option {item}")
    return options
