"""Reading the files a user hands us, and checking the folders we will write, in one place.

Every environment fault on the way in (missing file, no permission, bytes that are not UTF-8) or
on the way out (a folder that is a regular file, not writable, on a full disk) becomes one
`InputError`/`OutputError` line naming the path. JSON is parsed strictly: no NaN/Infinity, and a
key given twice in one object is an error (never "last one wins"). This module never writes a
file other than the short-lived probe in `ensure_writable_dir`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from sae_bench.errors import InputError, OutputError, os_problem


def read_text(path: str | os.PathLike, error: type[InputError] = InputError, what: str = "file") -> str:
    """The file's text, decoded as UTF-8; any failure is `error` naming the file."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(path, f"{what} is not valid UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise error(exc.filename or path, f"cannot read {what}: {os_problem(exc)}") from None


def _no_constants(name: str):
    raise ValueError(f"{name} is not valid JSON")


def unique_keys_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def loads_json(text: str, source: str | os.PathLike, error: type[InputError] = InputError) -> Any:
    """Parse JSON strictly (no NaN/Infinity, no duplicate keys); a failure is `error` naming `source`."""
    try:
        return json.loads(text, parse_constant=_no_constants, object_pairs_hook=unique_keys_object)
    except RecursionError:
        raise error(source, "malformed JSON: nested too deeply") from None
    except ValueError as exc:
        raise error(source, f"malformed JSON: {exc}") from None


def read_json(path: str | os.PathLike, error: type[InputError] = InputError, what: str = "file") -> Any:
    """`read_text` then `loads_json`."""
    return loads_json(read_text(path, error, what), path, error)


def check_utf8(path: str | os.PathLike, error: type[InputError] = InputError, what: str = "file") -> None:
    """Raise `error` naming the file if it is not valid UTF-8 (read in 1 MiB chunks: corpora are big)."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    raise error(path, f"{what} is not valid UTF-8 text (byte {offset + exc.start})") from None
                offset += len(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise error(path, f"{what} is not valid UTF-8 text (it ends inside a character)") from None
    except OSError as exc:
        raise error(path, f"cannot read {what}: {os_problem(exc)}") from None


def ensure_writable_dir(path: str | os.PathLike, what: str) -> Path:
    """Create folder `path` if needed and prove it writable (a probe file is created and removed),
    before any work: a regular file in the way, no permission or no space is an OutputError."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(path, f"{what} is an existing file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=".tmp", dir=path)
        try:
            os.write(fd, b"x")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise OutputError(path, f"{what} is not writable: {os_problem(exc)}") from None
    return path
