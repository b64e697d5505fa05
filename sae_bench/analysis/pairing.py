"""Pairing two sets of result records and the standard error of a metric's difference (used by compare and gate).

Records of side A and side B are matched by (hookpoint, task) when each side holds a single
checkpoint, else by (checkpoint id, hookpoint, task). A matched pair is comparable only when its
comparability keys (task name, task version, config hash, corpus hash) agree; otherwise the
reason names the first difference, e.g. "reconstruction: task version 1 vs 2".

Difference of one metric, d = value_B − value_A, with standard error

    paired (terms):  the metric is a ratio of per-sequence sums R = Σ a_i / Σ b_i and both records
               store the terms (`artifacts.per_sequence_terms[metric] = {"num": [a_i], "den": [b_i]}`,
               same corpus hash, same n ≥ 2 sequences). With each side's linearised per-sequence
               contribution ψ_i = (a_i − R·b_i) / mean(b) (the one behind its own clustered stderr,
               `sae_bench.metrics.stats`) and δ_i = ψ_i^B − ψ_i^A,
                   se = √( Σ_i δ_i² / (n (n − 1)) ).
               For b_i = 1 (plain means of per-sequence values) this is sd(B_i − A_i)/√n.
    paired (values): otherwise, per-sequence values of the metric itself (`artifacts.per_sequence`,
               same conditions): se = sd(δ) / √n, δ_i = B_i − A_i over the sequences where both
               exist (sd with ddof = 1).
    unpaired:  se = √(se_A² + se_B²)   (missing stderrs count as 0), with the reason pairing was
               impossible (`Difference.why_unpaired`).
Both sides measured on the same tokens share their noise, which pairing cancels.

The centre is always the metric difference itself (value_B − value_A, ratios of sums); the
per-sequence values only estimate its spread. This module never reads files or computes metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from sae_bench.core.errors import ResultError
from sae_bench.core.progress import WIDTH, fit
from sae_bench.records.results import ResultRecord

Key = tuple[str, ...]


@dataclass(frozen=True)
class RecordPair:
    key: Key  # (hookpoint, task) or (checkpoint, hookpoint, task)
    a: ResultRecord | None
    b: ResultRecord | None
    reason: str | None = None  # why the pair is not comparable (None: comparable)

    @property
    def comparable(self) -> bool:
        return self.a is not None and self.b is not None and self.reason is None

    @property
    def task(self) -> str:
        return self.key[-1]

    @property
    def hookpoint(self) -> str:
        return self.key[-2]


@dataclass(frozen=True)
class Difference:
    diff: float  # value_B − value_A
    se: float
    paired: bool
    n_pairs: int | None = None  # sequences used by the paired se
    why_unpaired: str = ""  # e.g. "different corpora", "no per-sequence terms"


def incomparability(a: ResultRecord, b: ResultRecord) -> str | None:
    """None when `a` and `b` may be compared, else the first difference in words."""
    task = a.task_name
    checks = (("task", a.task_name, b.task_name), ("task version", a.task_version, b.task_version),
              ("config hash", a.config_hash, b.config_hash), ("corpus hash", a.corpus_hash, b.corpus_hash))
    for what, left, right in checks:
        if left != right:
            return f"{task}: {what} {left} vs {right}"
    return None


def _single_checkpoint(records: Sequence[ResultRecord]) -> bool:
    return len({r.checkpoint_id for r in records}) <= 1


def pair_records(a_records: Iterable[ResultRecord], b_records: Iterable[ResultRecord]) -> list[RecordPair]:
    """Match A's and B's records (see module docstring); unmatched records come back with the other side None."""
    a_records, b_records = list(a_records), list(b_records)
    by_checkpoint = not (_single_checkpoint(a_records) and _single_checkpoint(b_records))

    def key(record: ResultRecord) -> Key:
        base = (record.hookpoint, record.task_name)
        return (record.checkpoint_id, *base) if by_checkpoint else base

    def index(records: list[ResultRecord], side: str) -> dict[Key, ResultRecord]:
        out: dict[Key, ResultRecord] = {}
        for record in records:
            k = key(record)
            if k in out:
                raise ResultError(record.path or side, f"two records for {' / '.join(k)} on side {side}")
            out[k] = record
        return out

    left, right = index(a_records, "A"), index(b_records, "B")
    pairs = []
    for k in sorted(set(left) | set(right)):
        a, b = left.get(k), right.get(k)
        if a is None:
            reason = f"{k[-1]}: only in B"
        elif b is None:
            reason = f"{k[-1]}: only in A"
        else:
            reason = incomparability(a, b)
        pairs.append(RecordPair(k, a, b, reason))
    return pairs


def _artifact(record: ResultRecord, table_name: str, metric: str) -> Any:
    arts = record.data.get("artifacts")
    table = arts.get(table_name) if isinstance(arts, dict) else None
    return table.get(metric) if isinstance(table, dict) else None


def per_sequence(record: ResultRecord, metric: str) -> list[Any] | None:
    values = _artifact(record, "per_sequence", metric)
    return values if isinstance(values, list) else None


def ratio_terms(record: ResultRecord, metric: str) -> tuple[list[float], list[float]] | None:
    """(a_i, b_i) of a ratio metric from `artifacts.per_sequence_terms`, or None if absent or malformed."""
    terms = _artifact(record, "per_sequence_terms", metric)
    if not isinstance(terms, dict):
        return None
    num, den = terms.get("num"), terms.get("den")
    if not (isinstance(num, list) and isinstance(den, list) and len(num) == len(den)
            and all(_number(v) for v in num) and all(_number(v) for v in den)):
        return None
    return [float(v) for v in num], [float(v) for v in den]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def paired_deltas(a: ResultRecord, b: ResultRecord, metric: str) -> list[float] | None:
    """Per-sequence B − A for `metric`, or None when the two are not measured on the same sequences."""
    if a.corpus_hash != b.corpus_hash:
        return None
    xs, ys = per_sequence(a, metric), per_sequence(b, metric)
    if xs is None or ys is None or len(xs) != len(ys):
        return None
    deltas = [float(y) - float(x) for x, y in zip(xs, ys) if _number(x) and _number(y)]
    return deltas if len(deltas) >= 2 else None


def _contributions(num: list[float], den: list[float]) -> list[float] | None:
    """ψ_i = (a_i − R·b_i) / mean(b) for R = Σa/Σb; None when Σb = 0."""
    total = sum(den)
    if total == 0:
        return None
    ratio = sum(num) / total
    mean_den = total / len(den)
    return [(x - ratio * y) / mean_den for x, y in zip(num, den)]


def paired_terms_se(a_terms: tuple[list[float], list[float]],
                    b_terms: tuple[list[float], list[float]]) -> float | None:
    """The paired standard error of R_B − R_A from both sides' per-sequence terms (module docstring)."""
    n = len(a_terms[0])
    if n < 2 or len(b_terms[0]) != n:
        return None
    psi_a, psi_b = _contributions(*a_terms), _contributions(*b_terms)
    if psi_a is None or psi_b is None:
        return None
    return math.sqrt(sum((pb - pa) ** 2 for pa, pb in zip(psi_a, psi_b)) / (n * (n - 1)))


def difference(a: ResultRecord, b: ResultRecord, metric: str) -> Difference | None:
    """value_B − value_A with its standard error (paired when possible); None if either value is null/missing."""
    ea, eb = a.metrics.get(metric), b.metrics.get(metric)
    if ea is None or eb is None or ea.get("value") is None or eb.get("value") is None:
        return None
    diff = float(eb["value"]) - float(ea["value"])
    same_tokens = a.corpus_hash == b.corpus_hash
    terms_a, terms_b = ratio_terms(a, metric), ratio_terms(b, metric)
    if same_tokens and terms_a is not None and terms_b is not None and len(terms_a[0]) == len(terms_b[0]):
        se = paired_terms_se(terms_a, terms_b)
        if se is not None:
            return Difference(diff, se, True, len(terms_a[0]))
    deltas = paired_deltas(a, b, metric)
    if deltas is not None:
        n = len(deltas)
        mean = sum(deltas) / n
        sd = math.sqrt(sum((d - mean) ** 2 for d in deltas) / (n - 1))
        return Difference(diff, sd / math.sqrt(n), True, n)
    if not same_tokens:
        why = "different corpora"
    elif (terms_a is None and per_sequence(a, metric) is None) or (terms_b is None and per_sequence(b, metric) is None):
        why = "no per-sequence terms"
    else:
        why = "different sequences"
    se_a, se_b = ea.get("stderr") or 0.0, eb.get("stderr") or 0.0
    return Difference(diff, math.sqrt(float(se_a) ** 2 + float(se_b) ** 2), False, why_unpaired=why)


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned plain-text columns (shared by the compare and gate printouts)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    fmt = lambda line: "  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(cells[0]), fmt(["-" * w for w in widths])] + [fmt(line) for line in cells[1:]])


def fitted_table(header: Sequence[str], rows: Sequence[Sequence[Any]], width: int = WIDTH,
                 shrink: Sequence[tuple[int, int]] = ()) -> str:
    """`format_table` within `width` columns: the columns in `shrink`, (index, narrowest) pairs of text
    columns (a metric's name, a reason), give up room in that order, their cells elided in the middle."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(str(h))] + [len(row[i]) for row in cells]) for i, h in enumerate(header)]
    for i, narrowest in shrink:
        excess = sum(widths) + 2 * (len(widths) - 1) - width
        if excess > 0:
            widths[i] = max(len(str(header[i])), narrowest, widths[i] - excess)
    shrunk = {i for i, _ in shrink}
    return format_table(header, [[fit(c, widths[i], head=widths[i] // 3) if i in shrunk else c
                                  for i, c in enumerate(row)] for row in cells])

