"""How records name local files: never by an absolute path.

A record travels (committed leaderboards, CI artifacts, another machine), so a local path in it is
stored relative to the current directory when it lies inside it, else relative to the harness's
own root (shipped data: the probe set, the fixtures), else as its last three components. Hub ids
and other non-paths pass unchanged. Content hashes, not paths, identify what was measured.
"""

from __future__ import annotations

import os
from pathlib import Path

_HARNESS_ROOT = Path(__file__).resolve().parents[2]


def portable(ref: str | os.PathLike | None) -> str | None:
    """`ref` as a record may store it: no absolute local path (see the module docstring)."""
    if ref is None:
        return None
    text = os.fspath(ref)
    path = Path(text)
    if not path.is_absolute():
        return text
    resolved = path.resolve()
    for base in (Path.cwd().resolve(), _HARNESS_ROOT):
        try:
            return resolved.relative_to(base).as_posix()
        except ValueError:
            continue
    return "/".join(resolved.parts[-3:])
