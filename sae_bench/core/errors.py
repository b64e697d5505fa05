"""Errors a user can act on: one line naming the input and the problem.

Every failure caused by bad input (a corrupt checkpoint, a wrong hookpoint, malformed JSON ...)
is raised as an `InputError`. The CLI prints `str(error)` on one line and exits with code 2,
before any result is written. Never raise an InputError for a bug in the harness itself.
"""

from __future__ import annotations

import errno
import os
import unicodedata

EXIT_BAD_INPUT = 2


def one_line(text: object) -> str:
    """`text` with every control or line-breaking character escaped (`\\n`, `\\x1b`, `\\u2028`), so a
    user-supplied path or name can never start a second, forged line or move the terminal cursor."""
    out = []
    for char in str(text):
        if char == "\\":
            out.append("\\\\")
        elif unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs") and char != " ":
            out.append(repr(char)[1:-1] if char.isascii() else f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


class InputError(Exception):
    """Bad input: `source` names the file/id/option, `problem` says what is wrong with it.

    Both are escaped onto one line (`one_line`): any text in them may come from the user."""

    def __init__(self, source: str | os.PathLike, problem: str):
        self.source = one_line(os.fspath(source) if isinstance(source, os.PathLike) else source)
        self.problem = one_line(" ".join(str(problem).split()))  # collapsed, then escaped
        super().__init__(f"{self.source}: {self.problem}")


class CheckpointError(InputError):
    """A checkpoint that cannot be loaded or does not match what it claims to be."""


class HookpointError(InputError):
    """A hookpoint name that does not resolve to a module of the model."""


class DataError(InputError):
    """A corpus, probe set, feature map or parquet file that is malformed."""


class ResultError(InputError):
    """A result record that is malformed or incomparable with another."""


class OutputError(InputError):
    """A file or folder the harness must write that cannot be written: no permission, a full disk, a
    regular file where a folder belongs. The environment's fault, reported like bad input."""


_PROBLEMS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
             errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
             errno.EROFS: "read-only file system", errno.ENOTDIR: "a path component is a file, not a folder",
             errno.EEXIST: "exists and is not a folder", errno.EISDIR: "is a folder, not a file",
             errno.ENOENT: "no such file or folder", errno.ELOOP: "a symbolic link loop"}


def os_problem(exc: OSError) -> str:
    """A short, stable description of an OSError (the strerror, without the path repeated)."""
    return _PROBLEMS.get(exc.errno, exc.strerror or type(exc).__name__)


def output_error(exc: OSError, path: str | os.PathLike, doing: str = "cannot write") -> OutputError:
    """An OSError met while writing under `path`, as one line naming the file the OS named (or `path`)."""
    return OutputError(exc.filename if exc.filename else path, f"{doing}: {os_problem(exc)}")
