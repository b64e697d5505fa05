"""The regression gate: does a candidate's set of result records regress against a baseline's?

For every metric of every comparable record pair (see `sae_bench.analysis.pairing`) with a direction (the
task's declared `MetricSpec`, carried by the record, or the user's override, see
`sae_bench.core.metric_directions`), with d = candidate − baseline and `worse` = d when lower is
better, −d when higher is better:

    regression  ⇔  worse > max(min_effect, z · se_d)          (z = 2 by default)

se_d is the paired standard error of the difference when both records carry per-sequence values
over the same corpus, else √(se_baseline² + se_candidate²). A metric that is a number in the
baseline and null (or absent) in the candidate is a failure. Metrics without a direction are
reported as not gated. Pairs that cannot be compared (different task version, config or corpus,
or a record missing on the candidate side) are refused with the reason; the gate fails on them.

`sae-bench gate` exits 1 on any failure or refusal, 0 otherwise, 2 on bad input. This module
never computes a metric and never writes records.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from sae_bench.core.errors import ResultError
from sae_bench.core.metric_directions import MetricRule, load_rules_file, parse_rule_arg, rule_for
from sae_bench.analysis.pairing import difference, fitted_table, format_table, pair_records
from sae_bench.core.progress import WIDTH, fit
from sae_bench.records.results import ResultRecord, iter_records, validate

DEFAULT_Z = 2.0


@dataclass(frozen=True)
class GateRow:
    checkpoint: str
    hookpoint: str
    task: str
    metric: str
    status: str  # "fail" | "pass" | "ungated"
    baseline: float | None
    candidate: float | None
    diff: float | None = None  # candidate − baseline
    se_diff: float | None = None
    paired: bool = False
    tolerance: float | None = None  # max(min_effect, z·se)
    rule: str = "none"
    reason: str = ""


@dataclass(frozen=True)
class Refusal:
    checkpoint: str
    hookpoint: str
    task: str
    reason: str


@dataclass
class GateReport:
    failures: list[GateRow] = field(default_factory=list)
    passes: list[GateRow] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    ungated: list[GateRow] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # candidate records without a baseline (not gated)
    z: float = DEFAULT_Z

    @property
    def ok(self) -> bool:
        return not self.failures and not self.refused

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def summary(self) -> str:
        verdict = "PASSED" if self.ok else "FAILED"
        return (f"gate {verdict}: {len(self.failures)} regressed, {len(self.passes)} passed, "
                f"{len(self.refused)} refused, {len(self.ungated)} not gated (z={self.z:g})")

    def format(self, show_all: bool = False, wide: bool = False) -> str:
        """The failure table (every gated row with `show_all`), the refusals, and the summary line: a table
        per checkpoint @ hookpoint · task within 100 columns, or (`wide`) one table with every column."""
        parts = []
        rows = self.failures + (self.passes + self.ungated if show_all else [])
        if rows and wide:
            parts.append(format_table(
                ["status", "checkpoint", "hookpoint", "task", "metric", "baseline", "candidate", "diff",
                 "tolerance", "se", "rule", "reason"],
                [[r.status.upper(), r.checkpoint, r.hookpoint, r.task] + _cells(r) for r in rows]))
        elif rows:
            groups: dict[tuple[str, str, str], list[GateRow]] = {}
            for r in rows:
                groups.setdefault((r.checkpoint, r.hookpoint, r.task), []).append(r)
            for (checkpoint, hookpoint, task), group in groups.items():
                parts.append(fit(f"{checkpoint} @ {hookpoint} · {task}", WIDTH))
                parts.append(fitted_table(["status", "metric", "baseline", "candidate", "diff", "tolerance", "rule",
                                           "reason"],  # the standard error: --wide, --json
                                          [[r.status.upper()] + _cells(r)[:5] + _cells(r)[6:] for r in group],
                                          WIDTH, shrink=((1, 26), (7, 12), (1, 6))))
        if self.refused:
            parts.append("refused (not comparable):")
            parts.extend(f"  {r.checkpoint} @ {r.hookpoint}: {r.reason}" for r in self.refused)
        parts.append(self.summary())
        return "\n".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "z": self.z, "failures": [asdict(r) for r in self.failures],
                "passes": [asdict(r) for r in self.passes], "refused": [asdict(r) for r in self.refused],
                "ungated": [asdict(r) for r in self.ungated], "extra": list(self.extra)}


def _cells(r: GateRow) -> list[str]:
    return [r.metric, _num(r.baseline), _num(r.candidate), _num(r.diff, signed=True), _num(r.tolerance),
            _num(r.se_diff) + (" paired" if r.paired else ""), r.rule, r.reason]


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def as_records(source: Any, name: str = "records") -> list[ResultRecord]:
    """Records from a results folder/file path, a ResultRecord, a record dict, or a list/dict of those."""
    if isinstance(source, ResultRecord):
        return [source]
    if isinstance(source, (str, os.PathLike)):
        return iter_records(source)
    if isinstance(source, Mapping):
        if "schema_version" in source:  # one record's JSON object
            return [validate(dict(source), name)]
        return [r for value in source.values() for r in as_records(value, name)]
    if isinstance(source, Iterable):
        return [r for item in source for r in as_records(item, name)]
    raise TypeError(f"{name}: cannot read result records from {type(source).__name__}")


def gate(baseline_records: Iterable[ResultRecord], candidate_records: Iterable[ResultRecord],
         rules: Mapping[str, MetricRule] | None = None, z: float = DEFAULT_Z) -> GateReport:
    """Gate the candidate against the baseline; `rules` override the metrics' declared rules key by key."""
    baseline_records, candidate_records = list(baseline_records), list(candidate_records)
    check_rule_names(rules or {}, baseline_records + candidate_records)
    report = GateReport(z=z)
    for pair in pair_records(baseline_records, candidate_records):
        anchor = pair.a or pair.b
        checkpoint = pair.b.checkpoint_id if pair.b is not None else anchor.checkpoint_id
        if pair.a is None:
            report.extra.append(f"{checkpoint} @ {pair.hookpoint}: {pair.task} (no baseline)")
            continue
        if not pair.comparable:
            reason = (pair.reason or "").replace("only in A", "missing in the candidate")
            report.refused.append(Refusal(checkpoint, pair.hookpoint, pair.task, reason))
            continue
        for metric in sorted(pair.a.metrics):
            row = _gate_metric(pair.a, pair.b, metric, rules, z, checkpoint)
            {"fail": report.failures, "pass": report.passes, "ungated": report.ungated}[row.status].append(row)
    return report


def _gate_metric(base: ResultRecord, cand: ResultRecord, metric: str, rules: Mapping[str, MetricRule] | None,
                 z: float, checkpoint: str) -> GateRow:
    spec = base.metric_spec(metric)
    rule = rule_for(metric, base.task_name, spec and spec.rule, rules)
    b_value = base.metrics[metric].get("value")
    c_entry = cand.metrics.get(metric)
    c_value = None if c_entry is None else c_entry.get("value")
    common = dict(checkpoint=checkpoint, hookpoint=base.hookpoint, task=base.task_name, metric=metric,
                  baseline=b_value, candidate=c_value)
    if rule is None or rule.direction == "none":
        return GateRow(status="ungated", reason="no direction" if rule else "unknown metric", **common)
    if b_value is None:
        return GateRow(status="ungated", rule=rule.describe(), reason="baseline is null", **common)
    if c_value is None:
        why = "absent in the candidate" if c_entry is None else f"candidate is null: {c_entry.get('reason', '')}"
        return GateRow(status="fail", rule=rule.describe(), reason=why, **common)
    d = difference(base, cand, metric)
    worse = d.diff if rule.direction == "lower" else -d.diff
    tolerance = max(rule.threshold(float(b_value)), z * d.se)
    failed = worse > tolerance
    reason = (f"worse by {worse:.4g} > {tolerance:.4g}" if failed else "")
    return GateRow(status="fail" if failed else "pass", diff=d.diff, se_diff=d.se, paired=d.paired,
                   tolerance=tolerance, rule=rule.describe(), reason=reason, **common)


def check_rule_names(rules: Mapping[str, MetricRule], records: Iterable[ResultRecord]) -> None:
    """Every rule names a metric (`metric` or `task.metric`, a pattern matching one) of these records
    or of a registered task's declared metrics; a misspelt rule would otherwise gate nothing."""
    import fnmatch

    from sae_bench.core import registry
    from sae_bench.core.names import unknown

    known: set[str] = set()
    for record in records:
        known.update(record.metrics)
        known.update(f"{record.task_name}.{m}" for m in record.metrics)
    for name, cls in registry.all_tasks().items():
        known.update(spec.name for spec in cls.metrics)
        known.update(f"{name}.{spec.name}" for spec in cls.metrics)
    for key in rules:
        if key in known or any(fnmatch.fnmatchcase(k, key) or fnmatch.fnmatchcase(key, k) for k in known):
            continue
        raise ResultError(f"rule {key}", unknown("metric", key, (k for k in known if "." not in k)))


def rules_from_options(rule_args: Iterable[str] = (), rules_file: str | os.PathLike | None = None) -> dict[str, MetricRule]:
    """Overrides: the rules file first, then each `--rule METRIC=DIRECTION:MIN_EFFECT` on top."""
    rules: dict[str, MetricRule] = {}
    if rules_file is not None:
        rules.update(load_rules_file(rules_file))
    for text in rule_args:
        name, rule = parse_rule_arg(text)
        rules[name] = rule
    return rules


def load_side(path: str | os.PathLike, option: str) -> list[ResultRecord]:
    path = Path(path)
    if not path.exists():
        raise ResultError(path, f"{option}: no such result file or folder")
    records = iter_records(path)
    if not records:
        raise ResultError(path, f"{option}: no result records found")
    return records
