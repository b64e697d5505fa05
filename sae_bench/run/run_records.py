"""What the runner writes: one result record per checkpoint x hookpoint x task, and which existing
record may be reused instead of recomputing it.

`make_record` assembles the JSON (task, checkpoint, model, corpus, counts, metrics with the specs
the task declares for them, provenance); `RecordSink` writes it atomically on the writer rank and
collects it in the run's report. Never computes a metric.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import sae_bench
from sae_bench.run import distributed
from sae_bench.core.context import TokenizedCorpus
from sae_bench.core.errors import InputError
from sae_bench.records.provenance import portable
from sae_bench.records.results import SCHEMA_VERSION, ResultRecord, read_record, record_path, validate, write_record
from sae_bench.core.task_api import MetricSpec, Task, TaskOutput

if TYPE_CHECKING:  # pragma: no cover
    from sae_bench.run.config import CheckpointSpec, RunConfig, RunReport


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape the numbers (read once per process: a lookup costs ~3 ms)."""
    return dict(_library_versions())


@functools.lru_cache(maxsize=1)
def _library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for dist in ("torch", "transformers", "safetensors", "eai-sparsify", "numpy", "datasets", "lm-eval", "scikit-learn"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return versions


def reusable_record(path: Path, task: Task, sha256: str, corpus: TokenizedCorpus) -> ResultRecord | None:
    """The record at `path` if it was made by the same task version and config, declaring the same
    metrics as the task does now (a metric added without a version bump must not be missing from a
    reused record), for the same checkpoint weights and corpus rows; None otherwise (absent,
    unreadable or stale: recompute)."""
    if not path.exists():
        return None
    try:
        record = read_record(path)
    except InputError:
        return None  # unreadable: recompute and replace atomically
    data = record.data
    same = (data["task"]["version"] == task.version and data["task"]["config_hash"] == task.config.config_hash()
            and declares_the_same(data, task)
            and data["checkpoint"].get("sha256") == sha256 and data["corpus"]["hash"] == corpus.corpus_hash
            and data["corpus"].get("seq_len") == corpus.seq_len)  # the hash names the documents, seq_len the rows
    return record if same else None


def declared_names(task: Task) -> list[str]:
    """The names of the metrics (and metric families) `task` declares now, sorted."""
    return sorted(spec.name for spec in task.metrics)


def declares_the_same(data: dict[str, Any], task: Task) -> bool:
    """Whether the record's task declared the metrics `task` declares now (`task.metrics_declared`).
    A record made before that field only shows the metrics it reports (a task may declare more, such
    as ones an option turns on): it passes when each of those is still declared; it is remade, and
    then carries the field, the next time anything else about it changes."""
    now = declared_names(task)
    stored = data["task"].get("metrics_declared")
    if isinstance(stored, list):
        return sorted(stored) == now
    return set(data.get("metric_specs", {})) <= set(now)


def declared_specs(task: Task, output: TaskOutput) -> dict[str, MetricSpec]:
    """The specs of the metrics `output` reports, by declared name; InputError naming the first
    metric the task does not declare (so no record carries a metric nothing knows how to read)."""
    declared = {s.name: s for s in task.metrics}
    used: dict[str, MetricSpec] = {}
    for metric in sorted(output.metrics):
        spec = task.metric_spec(metric)
        if spec is None:
            raise InputError(f"task {task.name}", f"reported metric {metric!r}, which it does not declare in "
                                                  f"`metrics` (declared: {', '.join(declared)})")
        used[spec.name] = declared[spec.name]  # as declared: a part's view (no headline, no ranking) is not the spec
    return used


def make_record(*, task: Task, output: TaskOutput, sae, spec: CheckpointSpec, model, hookpoint: str,
                corpus: TokenizedCorpus, config: RunConfig, corpus_label: str, model_label: str,
                seconds: float, mismatch: dict[str, str] | None = None,
                extra_notes: list[str] | None = None) -> dict[str, Any]:
    meta = sae.metadata
    notes = list(output.notes) + list(extra_notes or [])
    if mismatch:
        notes.insert(0, f"MODEL MISMATCH: this checkpoint {mismatch['problem']}; evaluated anyway "
                        "(--allow-model-mismatch)")
    record = {
        "schema_version": SCHEMA_VERSION,
        "harness_version": sae_bench.__version__,
        "task": {"name": task.name, "version": task.version, "config": task.config.to_json(),
                 "config_hash": task.config.config_hash(), "metrics_declared": declared_names(task)},
        "checkpoint": {"id": spec.display_id, "format": meta.format, "sha256": meta.weights_sha256 or "",
                       "d_in": meta.d_in, "d_sae": meta.d_sae, "activation": dataclasses.asdict(meta.activation),
                       "preprocessing": dataclasses.asdict(meta.preprocessing), "hookpoint": meta.hookpoint,
                       **({"output_hookpoint": meta.output_hookpoint} if meta.output_hookpoint else {}),
                       "source_model": meta.source_model, "dtype": meta.dtype},
        "model": {"id": model_label, "revision": model.revision or ""},
        "hookpoint": hookpoint,
        "corpus": {**corpus.describe(), "id": corpus_label},
        "counts": {"sequences_total": corpus.n_sequences, "tokens_total": corpus.n_tokens,
                   "tokens_kept": corpus.n_kept, **output.counts},
        "metrics": {name: metric.to_json() for name, metric in sorted(output.metrics.items())},
        "metric_specs": {name: spec.to_json() for name, spec in sorted(declared_specs(task, output).items())},
        "artifacts": output.artifacts,
        "notes": notes,
        "seed": config.seed,
        "randomness": {"seed": config.seed, "torch_manual_seed": config.seed,
                       "sources": list(task.random_sources) or ["none: deterministic given the inputs"]},
        "dtype": config.dtype,
        "device": str(config.device),
        "libraries": library_versions(),
        "timings": {"task_seconds": round(seconds, 3), "world_size": distributed.world_size()},
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if mismatch:
        record["model_mismatch"] = {"trained_on": mismatch["trained_on"], "evaluated": mismatch["evaluated"]}
    return record


class RecordSink:
    """Turns task outputs into records: written atomically by the writer rank (and read back),
    validated in memory on the other ranks, collected in the report."""

    def __init__(self, config: RunConfig, model, corpus: TokenizedCorpus, report: RunReport,
                 on_record: Callable[[ResultRecord], None] | None = None, mismatches: dict | None = None):
        self.config, self.model, self.corpus, self.report, self.on_record = config, model, corpus, report, on_record
        self.mismatches = mismatches or {}
        self.notes: dict[str, list[str]] = {}  # extra notes per checkpoint (the scale warning)

    def emit(self, task: Task, output: TaskOutput, sae, spec: CheckpointSpec, hookpoint: str, seconds: float) -> None:
        config = self.config
        data = make_record(task=task, output=output, sae=sae, spec=spec, model=self.model, hookpoint=hookpoint,
                           corpus=self.corpus, config=config, corpus_label=config.corpus_label or portable(config.corpus),
                           model_label=config.model_label or portable(config.model), seconds=seconds,
                           mismatch=self.mismatches.get(spec.display_id), extra_notes=self.notes.get(spec.display_id))
        if not distributed.is_writer():  # other ranks only lend their share of the forwards
            self.report.records.append(validate(data, f"rank {distributed.rank()}"))
            return
        record = read_record(write_record(config.results_dir, data))
        self.report.records.append(record)
        if self.on_record:
            self.on_record(record)


def reused_records(config: RunConfig, tasks: list[Task], item, corpus: TokenizedCorpus,
                   hookpoint: str) -> dict[str, ResultRecord]:
    """Task name -> the existing record that may stand for it (same task version, config, checkpoint
    and corpus; none with --overwrite). `item`: a checkpoint that passed preflight (`Checked`)."""
    found = {}
    if distributed.is_writer() and not config.overwrite:
        for task in tasks:
            path = record_path(config.results_dir, item.spec.display_id, hookpoint, task.name)
            existing = reusable_record(path, task, item.sha256, corpus)
            if existing is not None:
                found[task.name] = existing
    # Under torchrun every rank must run the same tasks (they share collectives): rank 0's files decide.
    return distributed.from_writer(found)
