"""Helpers for SAE authors' own test suites: evaluate a checkpoint, assert it does not regress.

`assert_no_regression(candidate, baseline, rules=None)` runs `sae_bench.analysis.gate.gate` and raises
AssertionError with the gate's failure table when a metric regresses or a record pair cannot be
compared. `evaluate_checkpoint(...)` runs `sae_bench.run.runner.evaluate` for one checkpoint and
returns its records by task name. The pytest plugin (`sae_bench.pytest_plugin`) wraps both in
fixtures.

Importing this module stays cheap (no torch): the runner is imported only when evaluating. This
module never computes a metric itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from sae_bench.analysis.gate import DEFAULT_Z, GateReport, as_records, gate
from sae_bench.core.metric_directions import MetricRule, rule_from_value
from sae_bench.records.results import ResultRecord

__all__ = ["assert_no_regression", "evaluate_checkpoint"]


def _rules(rules: Mapping[str, Any] | None) -> dict[str, MetricRule] | None:
    if rules is None:
        return None
    return {name: rule_from_value(value, f"rules[{name!r}]") for name, value in rules.items()}


def assert_no_regression(candidate: Any, baseline: Any, rules: Mapping[str, Any] | None = None, *,
                         z: float = DEFAULT_Z) -> GateReport:
    """Gate `candidate` against `baseline`; raise AssertionError with the failure table if it fails.

    Each side: a results folder or record file path, a ResultRecord, a record's JSON dict, or a
    list/dict of those (such as what the `sae_bench_evaluate` fixture returns). `rules` override
    the defaults per metric: `{"fvu": "lower:0.02", "l0": "none", "cossim": MetricRule(...)}`.
    Returns the report when the gate passes."""
    report = gate(as_records(baseline, "baseline"), as_records(candidate, "candidate"), _rules(rules), z=z)
    if not report.ok:
        raise AssertionError("sae-bench regression gate failed\n" + report.format())
    return report


def evaluate_checkpoint(checkpoint: str | os.PathLike, *, results_dir: str | os.PathLike,
                        hookpoint: str | None = None, model: str | os.PathLike | None = None,
                        corpus: str | os.PathLike | None = None, tasks: list[str] | None = None,
                        format: str | None = None, label: str | None = None, seq_len: int | None = None,
                        max_documents: int | None = None, task_options: dict[str, dict[str, Any]] | None = None,
                        cache_dir: str | os.PathLike | None = None, device: str | None = None,
                        dtype: str | None = None, batch_size: int | None = None, seed: int | None = None,
                        show_progress: bool = False,
                        **options: Any) -> dict[str, ResultRecord]:
    """Evaluate one checkpoint; returns {task name: record}. Records already in `results_dir` for
    the same task version, config, weights and corpus are reused.

    `model` and `corpus` default to the bundled tiny Gemma 4 and its evaluation corpus (for trying
    things out; a real SAE needs its own model). `options` go to `load_checkpoint`; seq_len, device,
    dtype, batch_size and seed left None take `RunConfig`'s defaults."""
    from sae_bench.run.config import CheckpointSpec, RunConfig
    from sae_bench.run.runner import evaluate

    if model is None or corpus is None:
        from sae_bench.fixtures import load_suite

        suite = load_suite(resolve=True)
        model = model if model is not None else suite["model"]
        corpus = corpus if corpus is not None else suite["corpus"]
        seq_len = seq_len if seq_len is not None else suite.get("seq_len")  # the fixtures' own rows
    given = {name: value for name, value in (("seq_len", seq_len), ("device", device), ("dtype", dtype),
                                             ("batch_size", batch_size), ("seed", seed)) if value is not None}
    config = RunConfig(model=str(model), corpus=str(corpus), results_dir=Path(results_dir), tasks=tasks,
                       max_documents=max_documents, task_options=dict(task_options or {}),
                       cache_dir=Path(cache_dir) if cache_dir is not None else None, show_progress=show_progress,
                       **given)
    spec = CheckpointSpec(ref=str(checkpoint), hookpoint=hookpoint, format=format, label=label, options=options)
    report = evaluate(config, [spec])
    return {record.task_name: record for record in report.records}
