"""Factories for synthetic result records that pass `sae_bench.records.results.validate` (for tests only).

`make_record_data` builds the JSON object the runner would write (same keys as
`sae_bench.run.run_records.make_record`), with metrics given as plain numbers, `(value, stderr)` pairs or
`None` (a null metric with a reason). `write_records` writes several through
`sae_bench.records.results.write_record`. Nothing here computes a metric: the numbers are whatever the
test passes in.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterable, Mapping

from sae_bench.records.results import SCHEMA_VERSION, validate, write_record

DEFAULT_CORPUS_HASH = "c0ffee00c0ffee00"
DEFAULT_MODEL = "fixtures/tiny-gemma4"

MetricSpec = float | int | tuple | None


def _metric(name: str, spec: MetricSpec) -> dict[str, Any]:
    if spec is None:
        return {"value": None, "stderr": None, "reason": f"{name} not defined for this synthetic record"}
    if isinstance(spec, tuple):
        value, stderr = spec
        return {"value": value, "stderr": stderr}
    return {"value": spec, "stderr": abs(float(spec)) * 0.01}


def default_config_hash(task: str, version: int | str = 1) -> str:
    return hashlib.sha256(f"{task}:{version}".encode()).hexdigest()[:16]


def make_record_data(checkpoint_id: str, task: str, metrics: Mapping[str, MetricSpec], version: int | str = 1,
                     config_hash: str | None = None, corpus_hash: str = DEFAULT_CORPUS_HASH,
                     per_sequence: list[float] | None = None, *, hookpoint: str = "layers.2",
                     model_id: str = DEFAULT_MODEL, model_revision: str = "", sha256: str | None = None,
                     d_in: int = 64, d_sae: int = 512, fmt: str = "sparsify", corpus_id: str = "fixtures/eval.jsonl",
                     n_sequences: int = 16, notes: list[str] | None = None,
                     artifacts: dict[str, Any] | None = None, created_at: str = "2025-01-01T00:00:00+00:00",
                     ) -> dict[str, Any]:
    """A valid result record (checked with `validate` before it is returned)."""
    sha = sha256 if sha256 is not None else hashlib.sha256(checkpoint_id.encode()).hexdigest()
    arts = dict(artifacts or {})
    if per_sequence is not None:
        arts["per_sequence"] = list(per_sequence)
    data = {
        "schema_version": SCHEMA_VERSION,
        "harness_version": "0.1.0",
        "task": {"name": task, "version": str(version), "config": {"synthetic": True},
                 "config_hash": config_hash or default_config_hash(task, version)},
        "checkpoint": {"id": checkpoint_id, "format": fmt, "sha256": sha, "d_in": d_in, "d_sae": d_sae,
                       "activation": {"kind": "topk", "k": 8, "threshold": None},
                       "preprocessing": {"normalise": "none", "standardise": "none", "mean": None, "std": None},
                       "hookpoint": hookpoint, "source_model": model_id, "dtype": "float32"},
        "model": {"id": model_id, "revision": model_revision},
        "hookpoint": hookpoint,
        "corpus": {"id": corpus_id, "hash": corpus_hash, "tokenizer": "tok0000000000000", "seq_len": 32,
                   "n_sequences": n_sequences},
        "counts": {"sequences_total": n_sequences, "tokens_total": n_sequences * 32,
                   "tokens_kept": n_sequences * 31},
        "metrics": {name: _metric(name, spec) for name, spec in sorted(metrics.items())},
        "artifacts": arts,
        "notes": list(notes or []),
        "seed": 0,
        "randomness": {"seed": 0, "torch_manual_seed": 0, "sources": "synthetic"},
        "dtype": "float32",
        "device": "cpu",
        "libraries": {"python": "3.11", "torch": "2.13.0"},
        "timings": {"task_seconds": 0.5},
        "created_at": created_at,
    }
    validate(data, f"synthetic record {checkpoint_id}/{task}")
    return data


def write_records(results_dir: str | Path, records: Iterable[dict[str, Any]]) -> list[Path]:
    """Write each record with `sae_bench.records.results.write_record`; returns the paths."""
    return [write_record(Path(results_dir), data) for data in records]


def frontier_records(checkpoint_id: str, *, l0: float, fvu: float, ce_loss_recovered: float | None = None,
                     hookpoint: str = "layers.2", **common: Any) -> list[dict[str, Any]]:
    """The records of one checkpoint x hookpoint for the three headline tasks."""
    out = [
        make_record_data(checkpoint_id, "sparsity", {"l0": l0, "l1": l0 * 2.0, "dead_fraction": 0.1},
                         hookpoint=hookpoint, **common),
        make_record_data(checkpoint_id, "reconstruction", {"fvu": fvu, "cossim": 1.0 - fvu / 2},
                         hookpoint=hookpoint, **common),
    ]
    if ce_loss_recovered is not None:
        out.append(make_record_data(checkpoint_id, "spliced_loss",
                                    {"ce_loss_recovered": ce_loss_recovered, "delta_ce": 1.0 - ce_loss_recovered},
                                    hookpoint=hookpoint, **common))
    return out
