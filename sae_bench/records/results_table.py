"""The tidy results table: `<results>/results.parquet`, one row per checkpoint x hookpoint x task x metric.

Why: a researcher's first step is `pd.read_parquet("results/results.parquet")`, not a walk over
JSON files. The table is derived from the records alone and rewritten atomically (temporary file
in the same folder, then rename) from every record under the folder after each run, so it never
disagrees with them for longer than a run and a reader never sees half a file.

Columns (`COLUMNS`): checkpoint, hookpoint, task, metric, value, stderr (null when the record has
none), reason (why a value is null), n, task_version, config_hash, corpus_hash, corpus, model,
model_revision, checkpoint_sha256, format, record (the record's path under the folder).
`n` is the count the metric rests on, the first of the record's `counts` in `N_COUNTS` (tokens for
reconstruction/sparsity, predictions for spliced_loss, test texts for probing ...), null if none.

This module never computes a metric: values and standard errors are copied from the records.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from sae_bench.records.results import ResultRecord, iter_records

FILE_NAME = "results.parquet"
N_COUNTS = ("tokens", "test_texts", "examples_scored", "documents", "sequences")
COLUMNS: tuple[tuple[str, str], ...] = (
    ("checkpoint", "string"), ("hookpoint", "string"), ("task", "string"), ("metric", "string"),
    ("value", "float64"), ("stderr", "float64"), ("reason", "string"), ("n", "int64"),
    ("task_version", "string"), ("config_hash", "string"), ("corpus_hash", "string"), ("corpus", "string"),
    ("model", "string"), ("model_revision", "string"), ("checkpoint_sha256", "string"), ("format", "string"),
    ("record", "string"),
)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _n(counts: dict[str, Any]) -> int | None:
    return next((counts[k] for k in N_COUNTS if isinstance(counts.get(k), int)), None)


def tidy_rows(records: Iterable[ResultRecord]) -> list[dict[str, Any]]:
    """The table's rows (dicts keyed by column), sorted by checkpoint, hookpoint, task, metric."""
    rows = []
    for record in records:
        data = record.data
        common = {
            "checkpoint": record.checkpoint_id, "hookpoint": record.hookpoint, "task": record.task_name,
            "n": _n(data["counts"]), "task_version": record.task_version, "config_hash": record.config_hash,
            "corpus_hash": record.corpus_hash, "corpus": str(data["corpus"].get("id", "")),
            "model": str(data["model"].get("id", "")), "model_revision": str(data["model"].get("revision") or ""),
            "checkpoint_sha256": str(data["checkpoint"].get("sha256") or ""),
            "format": str(data["checkpoint"].get("format", "")), "record": record.relative_path().as_posix(),
        }
        for metric, entry in record.metrics.items():
            rows.append({**common, "metric": metric, "value": _number(entry.get("value")),
                         "stderr": _number(entry.get("stderr")), "reason": entry.get("reason")})
    rows.sort(key=lambda r: (r["checkpoint"], r["hookpoint"], r["task"], r["metric"]))
    return [{name: row[name] for name, _ in COLUMNS} for row in rows]


def to_arrow(records: Iterable[ResultRecord]):
    """A pyarrow Table with the fixed schema of `COLUMNS` (no pandas metadata: deterministic bytes)."""
    import pyarrow as pa

    rows = tidy_rows(records)
    types = {"string": pa.string(), "float64": pa.float64(), "int64": pa.int64()}
    schema = pa.schema([pa.field(name, types[kind]) for name, kind in COLUMNS])
    return pa.Table.from_arrays([pa.array([r[f.name] for r in rows], type=f.type) for f in schema], schema=schema)


def write_results_parquet(results_dir: str | os.PathLike,
                          records: list[ResultRecord] | None = None) -> Path:
    """Rewrite `<results_dir>/results.parquet` atomically from `records` (default: every record
    under the folder, validated); returns its path."""
    import pyarrow.parquet as pq

    results_dir = Path(results_dir)
    if records is None:
        records = iter_records(results_dir)
    table = to_arrow(records)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / FILE_NAME
    fd, tmp = tempfile.mkstemp(prefix=f".{FILE_NAME}.pid{os.getpid()}.", suffix=".tmp", dir=results_dir)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="snappy", write_statistics=False)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
