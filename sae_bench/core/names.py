"""Names that select behaviour (tasks, task options, metrics, releases) are checked, never guessed.

A misspelt name must stop the run with one line naming it and the closest valid names: a typo
that is silently ignored produces numbers that look right and are not what was asked for.
Must never: import anything heavy (the listing commands and argument checks use it).
"""

from __future__ import annotations

import difflib
from typing import Iterable

from sae_bench.core.errors import InputError


def closest(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Up to `n` known names closest to `name` (difflib's ratio; case ignored)."""
    known = sorted(set(known))
    by_lower = {k.lower(): k for k in known}
    found = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.5)
    return [by_lower[k] for k in found]


def unknown(kind: str, name: str, known: Iterable[str]) -> str:
    """`unknown task; did you mean spliced_loss? known: a, b, c` (the problem half of an error line)."""
    known = sorted(set(known))
    near = closest(name, known)
    hint = f"did you mean {' or '.join(near)}? " if near else ""
    listing = ", ".join(known) if len(known) <= 12 else ", ".join(known[:12]) + f", ... ({len(known)} in all)"
    return f"unknown {kind}; {hint}known: {listing or '(none)'}"


def require(kind: str, name: str, known: Iterable[str], source: str | None = None,
            error: type[InputError] = InputError) -> None:
    """Raise `error(source or name, unknown(...))` when `name` is not among `known`."""
    known = list(known)
    if name not in known:
        raise error(source if source is not None else name, unknown(kind, name, known))
