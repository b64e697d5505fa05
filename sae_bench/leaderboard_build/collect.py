"""Read and validate result records for a leaderboard, and group them by comparability key.

The comparability key of a record is (task name, task version, task config hash, corpus hash):
numbers are ranked against each other only when all four match. This module also refuses input
that would put numbers of different things in one row: two records for the same
checkpoint x hookpoint x task (or two whose names map to one file name), or records of one
checkpoint x hookpoint that disagree on the weights (sha256), the model (id, revision) or the
SAE's shape.

It only reads. It never writes a file and never computes a metric.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from sae_bench.core.errors import ResultError
from sae_bench.records.results import ResultRecord, iter_records


class ComparabilityKey(NamedTuple):
    """Rows rank together only when all four fields match."""

    task: str
    task_version: str
    config_hash: str
    corpus_hash: str

    def to_json(self) -> dict[str, str]:
        return {"task": self.task, "task_version": self.task_version, "config_hash": self.config_hash,
                "corpus_hash": self.corpus_hash}

    @classmethod
    def from_json(cls, data: object, source: str) -> "ComparabilityKey":
        if not isinstance(data, dict) or not all(isinstance(data.get(f), str) for f in cls._fields):
            raise ResultError(source, f"comparability key must be an object with string fields {', '.join(cls._fields)}")
        return cls(*(data[f] for f in cls._fields))


def key_of(record: ResultRecord) -> ComparabilityKey:
    return ComparabilityKey(*record.comparability_key())


# Fields that must agree across all records of one checkpoint x hookpoint row.
_ROW_FIELDS = (
    ("checkpoint sha256", lambda d: d["checkpoint"].get("sha256")),
    ("checkpoint format", lambda d: d["checkpoint"].get("format")),
    ("d_sae", lambda d: d["checkpoint"].get("d_sae")),
    ("model id", lambda d: d["model"].get("id")),
    ("model revision", lambda d: d["model"].get("revision")),
)


@dataclass
class Collection:
    """Validated records (sorted by checkpoint, hookpoint, task) and their comparability keys."""

    source: Path
    records: list[ResultRecord]

    @property
    def keys(self) -> list[ComparabilityKey]:
        return sorted({key_of(r) for r in self.records})

    def by_key(self) -> dict[ComparabilityKey, list[ResultRecord]]:
        groups: dict[ComparabilityKey, list[ResultRecord]] = {}
        for record in self.records:
            groups.setdefault(key_of(record), []).append(record)
        return dict(sorted(groups.items()))

    def by_row(self) -> dict[tuple[str, str], list[ResultRecord]]:
        rows: dict[tuple[str, str], list[ResultRecord]] = {}
        for record in self.records:
            rows.setdefault((record.checkpoint_id, record.hookpoint), []).append(record)
        return dict(sorted(rows.items()))


def _sort_key(record: ResultRecord) -> tuple:
    return (record.checkpoint_id, record.hookpoint, key_of(record))


def collect(results_dir: str | os.PathLike) -> Collection:
    """Every record under `results_dir`, validated; a one-line ResultError naming the file otherwise."""
    results_dir = Path(results_dir)
    records = iter_records(results_dir)  # validates each file, raises ResultError naming it
    if not records:
        raise ResultError(results_dir, "no result records (*.json) found")
    seen: dict[tuple[str, str, str], ResultRecord] = {}
    paths: dict[Path, ResultRecord] = {}
    for record in records:
        cell = (record.checkpoint_id, record.hookpoint, record.task_name)
        if cell in seen:
            raise ResultError(record.path, f"second record for checkpoint {cell[0]!r} at {cell[1]!r}, task {cell[2]!r} "
                                           f"(first: {seen[cell].path}); keep one")
        seen[cell] = record
        # The leaderboard stores each record at its canonical path: two must not share one.
        stored = record.relative_path()
        if stored in paths:
            raise ResultError(record.path, f"stores at {stored.as_posix()} like {paths[stored].path} "
                                           "(names that differ only in characters a file name cannot hold)")
        paths[stored] = record
    records.sort(key=_sort_key)
    collection = Collection(source=results_dir, records=records)
    for (checkpoint, hookpoint), row in collection.by_row().items():
        first = row[0]
        for label, get in _ROW_FIELDS:
            for other in row[1:]:
                if get(other.data) != get(first.data):
                    raise ResultError(other.path, f"{label} {get(other.data)!r} differs from {get(first.data)!r} in "
                                                  f"{first.path} for checkpoint {checkpoint!r} at {hookpoint!r}: "
                                                  "records of one row must describe the same weights and model")
    return collection
