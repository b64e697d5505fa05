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

from sae_bench.core.errors import InputError, OutputError, os_problem


def read_text(path: str | os.PathLike, error: type[InputError] = InputError, what: str = "file") -> str:
    """The file's text, decoded as UTF-8; any failure is `error` naming the file."""
    path = Path(path)
    refuse_special(path, error)  # a pipe would block the read; a loop would read as "no such file"
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(path, f"{what} is not valid UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise error(exc.filename or path, f"cannot read {what}: {os_problem(exc)}") from None


def not_a_file_problem(path: str | os.PathLike) -> str | None:
    """What a path is when it is no regular file or folder, in words (a symbolic link loop, a link to
    a missing target, a named pipe, a socket, a device), None for a regular file, a folder or a
    path with nothing there. So that messages say what is true, never "no such file" for a loop."""
    import stat

    path = Path(path)
    try:
        mode = path.lstat().st_mode
    except OSError:
        return None  # nothing there (or a folder on the way that cannot be read): the caller's message
    if stat.S_ISLNK(mode):
        try:
            path.stat()
        except OSError as exc:
            import errno

            if exc.errno == errno.ELOOP:
                return "is a symbolic link loop (it never reaches a file)"
            return f"is a symbolic link to {os.readlink(path)!r}, which does not exist"
        mode = path.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    return None


def refuse_special(path: str | os.PathLike, error: type[InputError] = InputError) -> None:
    """Raise `error` naming `path` when it is a link loop, a dangling link, a pipe, a socket or a device."""
    problem = not_a_file_problem(path)
    if problem:
        raise error(path, problem)


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
