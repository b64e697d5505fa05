"""Hugging Face Hub access for checkpoints: validate ids and subfolders, download only what is needed.

For: turning "owner/name" (+ a hookpoint subfolder) into a local snapshot folder with
`huggingface_hub.snapshot_download(..., allow_patterns=[...])`. Works offline from a populated
cache when HF_HUB_OFFLINE=1.

Must never: download a whole multi-layer repository when one hookpoint was asked for; accept an
id or subfolder that could escape the cache (`..`, absolute paths, backslashes).
"""

from __future__ import annotations

import re
from pathlib import Path

from sae_bench.core.errors import CheckpointError

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_relative_path(value: str, what: str, source: str) -> str:
    """A relative, forward-slash subpath with no `.`/`..`/empty parts (so it cannot escape its root)."""
    if not isinstance(value, str) or not value:
        raise CheckpointError(source, f"{what} must be a non-empty string, got {value!r}")
    if "\\" in value or "\x00" in value:
        raise CheckpointError(source, f"{what} {value!r} contains a backslash or NUL; use '/' separated names")
    if value.startswith("/") or re.match(r"^[A-Za-z]:", value) or value.startswith("~"):
        raise CheckpointError(source, f"{what} {value!r} is an absolute path; give a name relative to the checkpoint")
    parts = value.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise CheckpointError(source, f"{what} {value!r} has an empty, '.' or '..' part (path traversal is refused)")
    return value


def looks_like_hub_id(ref: str) -> bool:
    """Shape test only: "owner/name" with no path syntax."""
    return bool(_HUB_ID.match(ref)) and ".." not in ref


def check_hub_id(ref: str) -> str:
    if not isinstance(ref, str) or not looks_like_hub_id(ref):
        raise CheckpointError(str(ref), "not a local file or folder, and not a valid hub id 'owner/name' "
                                        "(no '..', absolute paths or backslashes)")
    return ref


def download(repo_id: str, *, allow_patterns: list[str], revision: str | None = None,
             cache_dir: str | None = None) -> Path:
    """Local snapshot folder of `repo_id` holding only files matching `allow_patterns`."""
    check_hub_id(repo_id)
    if revision is not None and (not isinstance(revision, str) or not revision or "\\" in revision
                                 or ".." in revision.split("/")):
        raise CheckpointError(repo_id, f"invalid revision {revision!r}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, HFValidationError

    try:
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=allow_patterns, cache_dir=cache_dir)
    # OSError covers offline cache misses, missing repos/revisions, auth and network failures.
    except (OSError, EntryNotFoundError, HFValidationError, ValueError) as e:
        kind = type(e).__name__
        first = " ".join(str(e).split())[:300]
        raise CheckpointError(f"{repo_id}@{revision or 'main'}", f"cannot download {allow_patterns} ({kind}: {first})") from None
    return Path(folder)
