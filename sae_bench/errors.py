"""Errors a user can act on: one line naming the input and the problem.

Every failure caused by bad input (a corrupt checkpoint, a wrong hookpoint, malformed JSON ...)
is raised as an `InputError`. The CLI prints `str(error)` on one line and exits with code 2,
before any result is written. Never raise an InputError for a bug in the harness itself.
"""

from __future__ import annotations

import os

EXIT_BAD_INPUT = 2


class InputError(Exception):
    """Bad input: `source` names the file/id/option, `problem` says what is wrong with it."""

    def __init__(self, source: str | os.PathLike, problem: str):
        self.source = str(source)
        self.problem = " ".join(str(problem).split())  # always a single line
        super().__init__(f"{self.source}: {self.problem}")


class CheckpointError(InputError):
    """A checkpoint that cannot be loaded or does not match what it claims to be."""


class HookpointError(InputError):
    """A hookpoint name that does not resolve to a module of the model."""


class DataError(InputError):
    """A corpus, probe set, feature map or parquet file that is malformed."""


class ResultError(InputError):
    """A result record that is malformed or incomparable with another."""
