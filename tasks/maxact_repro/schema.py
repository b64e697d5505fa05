"""Max-activation parquet files in gemma-loupe's schema: read, validate, write.

Required columns (gemma-loupe's model card):
    feature (int), activation (float, the peak value), token (str, the peak token),
    context (str), context_tokens (JSON list of token strings),
    token_activations (JSON list of floats, one per context token).
Optional columns (written by `sae-bench maxact build`, absent from gemma-loupe's files):
    doc_id (int, row of the corpus), start / end (int, token offsets of the window in the tokenised
    document, BOS at 0, end exclusive), peak_position (int, index of the peak inside the window),
    hookpoint (str), checkpoint_sha256 (str).
File metadata key `sae_bench.maxact` (optional): JSON with checkpoint_sha256, hookpoint, corpus
hash, seq_len, window, top_n ... so a file can be matched to the checkpoint it describes.

Every malformed input raises one `DataError` line naming the file, the column and the row. This
module never runs a model and never decides what a re-encoding means.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from sae_bench.core.errors import DataError

METADATA_KEY = b"sae_bench.maxact"
SCHEMA_VERSION = 1
REQUIRED_COLUMNS = ("feature", "activation", "token", "context", "context_tokens", "token_activations")
OPTIONAL_INT_COLUMNS = ("doc_id", "start", "end", "peak_position")
OPTIONAL_STR_COLUMNS = ("hookpoint", "checkpoint_sha256")


@dataclass(frozen=True)
class MaxActExample:
    """One stored example: a window of tokens around the peak of `feature`."""

    row: int  # row in the file (0-based), for messages
    feature: int
    activation: float  # stored peak activation
    token: str
    context: str
    context_tokens: tuple[str, ...]
    token_activations: tuple[float, ...]
    peak_position: int  # index of the peak in the window (column, else first argmax of token_activations)
    doc_id: int | None = None
    start: int | None = None
    end: int | None = None

    @property
    def has_offsets(self) -> bool:
        return self.doc_id is not None and self.start is not None and self.end is not None


@dataclass
class MaxActTable:
    """The validated contents of one parquet file."""

    path: str
    examples: list[MaxActExample]
    metadata: dict[str, Any] = field(default_factory=dict)  # the `sae_bench.maxact` file metadata, {} if none
    columns: tuple[str, ...] = ()
    n_features_in_file: int = 0

    @property
    def has_offsets(self) -> bool:
        return bool(self.examples) and all(e.has_offsets for e in self.examples)

    def features(self) -> list[int]:
        return sorted({e.feature for e in self.examples})


# ------------------------------------------------------------------------------------- reading
def _open(path: Path):
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DataError(path, "max-activation parquet not found")
    try:
        return pq.ParquetFile(str(path))
    except Exception as exc:  # pyarrow raises several kinds for a non-parquet file
        raise DataError(path, f"not a readable parquet file: {type(exc).__name__}: {exc}") from exc


def _metadata_of(schema_metadata: dict | None, path: Path) -> dict[str, Any]:
    raw = (schema_metadata or {}).get(METADATA_KEY)
    if raw is None:
        return {}
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataError(path, f"file metadata {METADATA_KEY.decode()!r} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise DataError(path, f"file metadata {METADATA_KEY.decode()!r} is not a JSON object")
    return meta


def read_maxact_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The `sae_bench.maxact` file metadata only (cheap: reads the footer, not the rows)."""
    path = Path(path)
    return _metadata_of(_open(path).schema_arrow.metadata, path)


def _check_types(schema, path: Path) -> None:
    import pyarrow as pa

    names = set(schema.names)
    for name in REQUIRED_COLUMNS:
        if name not in names:
            raise DataError(path, f"missing required column {name!r} (columns: {', '.join(schema.names)})")

    def is_str(t):
        return pa.types.is_string(t) or pa.types.is_large_string(t)

    def is_list_of(t, pred):
        return (pa.types.is_list(t) or pa.types.is_large_list(t)) and pred(t.value_type)

    checks = {
        "feature": (pa.types.is_integer, "an integer"),
        "activation": (pa.types.is_floating, "a float"),
        "token": (is_str, "a string"),
        "context": (is_str, "a string"),
        "context_tokens": (lambda t: is_str(t) or is_list_of(t, is_str), "a JSON string (list of token strings)"),
        "token_activations": (lambda t: is_str(t) or is_list_of(t, lambda v: pa.types.is_floating(v) or pa.types.is_integer(v)),
                              "a JSON string (list of floats)"),
        **{c: (pa.types.is_integer, "an integer") for c in OPTIONAL_INT_COLUMNS},
        **{c: (is_str, "a string") for c in OPTIONAL_STR_COLUMNS},
    }
    for name, (ok, wanted) in checks.items():
        if name in names and not ok(schema.field(name).type):
            raise DataError(path, f"column {name!r} has type {schema.field(name).type}, expected {wanted}")


def _json_list(value: Any, path: Path, column: str, row: int) -> list:
    if isinstance(value, list):
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError) as exc:
        raise DataError(path, f"row {row}, column {column!r}: not valid JSON ({exc})") from exc
    if not isinstance(parsed, list):
        raise DataError(path, f"row {row}, column {column!r}: expected a JSON list, got {type(parsed).__name__}")
    return parsed


def _example(rec: dict[str, Any], row: int, path: Path) -> MaxActExample:
    for name in REQUIRED_COLUMNS:
        if rec[name] is None:
            raise DataError(path, f"row {row}, column {name!r}: null value")
    tokens = _json_list(rec["context_tokens"], path, "context_tokens", row)
    acts = _json_list(rec["token_activations"], path, "token_activations", row)
    if not tokens:
        raise DataError(path, f"row {row}, column 'context_tokens': empty context")
    if not all(isinstance(t, str) for t in tokens):
        raise DataError(path, f"row {row}, column 'context_tokens': every element must be a string")
    if not all(isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) for a in acts):
        raise DataError(path, f"row {row}, column 'token_activations': every element must be a finite number")
    if len(tokens) != len(acts):
        raise DataError(path, f"row {row}, column 'token_activations': {len(acts)} values for "
                              f"{len(tokens)} context_tokens (lengths must match)")
    activation = float(rec["activation"])
    if not math.isfinite(activation):
        raise DataError(path, f"row {row}, column 'activation': not a finite number")
    acts = tuple(float(a) for a in acts)
    peak = rec.get("peak_position")
    if peak is None:
        peak = max(range(len(acts)), key=lambda i: (acts[i], -i))  # first argmax
    elif not 0 <= peak < len(tokens):
        raise DataError(path, f"row {row}, column 'peak_position': {peak} outside the {len(tokens)}-token context")
    offsets = [rec.get(c) for c in ("doc_id", "start", "end")]
    if all(v is not None for v in offsets):
        doc_id, start, end = offsets
        if doc_id < 0 or start < 0 or end - start != len(tokens):
            raise DataError(path, f"row {row}, column 'end': offsets doc_id={doc_id} start={start} end={end} "
                                  f"do not span the {len(tokens)} context tokens")
    else:
        doc_id = start = end = None
    feature = int(rec["feature"])
    if feature < 0:
        raise DataError(path, f"row {row}, column 'feature': negative feature index {feature}")
    return MaxActExample(row=row, feature=feature, activation=activation, token=rec["token"],
                         context=rec["context"], context_tokens=tuple(tokens), token_activations=acts,
                         peak_position=int(peak), doc_id=doc_id, start=start, end=end)


def read_maxact(path: str | os.PathLike, *, max_features: int | None = None,
                features: Iterable[int] | None = None) -> MaxActTable:
    """Read and validate a max-activation parquet.

    `features` keeps only those features; `max_features` keeps the lowest-numbered N features of
    the file (JSON of the rows not kept is never parsed, so huge files stay cheap)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    path = Path(path)
    parquet = _open(path)
    schema = parquet.schema_arrow
    _check_types(schema, path)
    meta = _metadata_of(schema.metadata, path)
    try:
        table = parquet.read()
    except Exception as exc:
        raise DataError(path, f"cannot read parquet rows: {type(exc).__name__}: {exc}") from exc
    feature_col = table.column("feature")
    if feature_col.null_count:
        raise DataError(path, f"row {feature_col.to_pylist().index(None)}, column 'feature': null value")
    all_features = sorted(set(feature_col.to_pylist()))
    wanted = None
    if features is not None:
        wanted = set(int(f) for f in features)
    elif max_features is not None:
        wanted = set(all_features[:max_features])
    rows = list(range(table.num_rows))
    if wanted is not None:
        mask = pc.is_in(feature_col, value_set=pa.array(sorted(wanted), type=feature_col.type))
        rows = [i for i, keep in enumerate(mask.to_pylist()) if keep]
        table = table.filter(mask)
    present = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_INT_COLUMNS) if c in schema.names]
    data = {c: table.column(c).to_pylist() for c in present}
    examples = [_example({c: data[c][j] for c in present}, row, path) for j, row in enumerate(rows)]
    return MaxActTable(path=str(path), examples=examples, metadata=meta, columns=tuple(schema.names),
                       n_features_in_file=len(all_features))


# ------------------------------------------------------------------------------------- writing
def write_maxact(path: str | os.PathLike, examples: Sequence[MaxActExample], metadata: dict[str, Any]) -> Path:
    """Write examples (in the given order) with `metadata` in the file footer, atomically.

    Deterministic: the same examples and metadata give the same bytes (no timestamps)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    columns = {
        "feature": pa.array([e.feature for e in examples], pa.int64()),
        "activation": pa.array([e.activation for e in examples], pa.float64()),
        "token": pa.array([e.token for e in examples], pa.string()),
        "context": pa.array([e.context for e in examples], pa.string()),
        "context_tokens": pa.array([json.dumps(list(e.context_tokens), ensure_ascii=False) for e in examples],
                                   pa.string()),
        "token_activations": pa.array([json.dumps([float(a) for a in e.token_activations]) for e in examples],
                                      pa.string()),
        "doc_id": pa.array([e.doc_id for e in examples], pa.int64()),
        "start": pa.array([e.start for e in examples], pa.int64()),
        "end": pa.array([e.end for e in examples], pa.int64()),
        "peak_position": pa.array([e.peak_position for e in examples], pa.int64()),
    }
    meta = {"schema_version": SCHEMA_VERSION, **metadata}
    table = pa.table(columns).replace_schema_metadata(
        {METADATA_KEY: json.dumps(meta, sort_keys=True).encode("utf-8")})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.pid{os.getpid()}.tmp")
    try:
        pq.write_table(table, str(tmp), compression="zstd", row_group_size=max(len(examples), 1))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
