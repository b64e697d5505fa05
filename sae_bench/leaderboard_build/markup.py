"""Text for the leaderboard's HTML: escaping and the short renderings every page part uses (the
board, checkpoint pages and the sections tasks declare). Every string from a record is untrusted
and goes through `esc`.
"""

from __future__ import annotations

import html
import math
from typing import Any, Iterable


def esc(value: Any) -> str:
    """Escape untrusted text for HTML text and (double-quoted) attribute values."""
    return html.escape(str(value), quote=True)


def rounded(value: Any, digits: int = 4) -> Any:
    """`value` with every float rounded to `digits` significant digits (provenance is read, not recomputed)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


def compact(value: Any) -> str:
    """A short one-line rendering of a small JSON value: `kind=topk, k=8` for {"kind": "topk", "k": 8}."""
    value = rounded(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={compact(v)}" for k, v in sorted(value.items()) if v is not None) or "-"
    if isinstance(value, list):
        numbers = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(value) > 8 and len(numbers) == len(value):  # e.g. per-latent thresholds: a summary, not 16k numbers
            return f"{len(value)} values from {compact(min(numbers))} to {compact(max(numbers))}"
        return "[" + ", ".join(compact(v) for v in value[:8]) + (f", … {len(value) - 8} more]" if len(value) > 8
                                                                   else "]")
    return "-" if value is None else str(value)


def dl(items: Iterable[tuple[str, Any]]) -> str:
    """A definition list of (label, value): strings as they are, other values `compact`."""
    parts = ["<dl>"]
    for label, value in items:
        text = value if isinstance(value, str) else compact(value)
        parts.append(f"<dt>{esc(label)}</dt><dd>{esc(text)}</dd>")
    parts.append("</dl>")
    return "".join(parts)


def cell_text(entry: dict[str, Any] | None) -> str:
    """`value ±se` (4 and 1 significant digits) for the board, `null`, or `-` when not run."""
    from sae_bench.leaderboard_build.table import format_value

    return format_value(entry, stderr_digits=1, sep=" ±")


def breakable(name: str) -> str:
    """Escaped text that may wrap after '_' and '/' (long metric names in narrow headers)."""
    return esc(name).replace("_", "_<wbr>").replace("/", "/<wbr>")


def fmt(value: Any) -> str:
    """A table cell's text: yes/no for booleans, 3 significant digits for floats, "" for None."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else ("yes" if value else "no")
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def fixed(value: Any, digits: str = ".3f") -> str:
    """A number in a fixed format, "" for anything else (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    return format(value, digits)
