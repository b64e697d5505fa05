"""Side-by-side comparison of two SAEs (or two sets of result records) and of their dictionaries.

Metrics: for every comparable record pair (see `sae_bench.analysis.pairing`) and every metric, A, B, the
difference d = B − A and a 95% interval d ± 1.96·se_d, paired over sequences when both records
carry the metric's per-sequence terms on the same corpus, else unpaired (√(se_A² + se_B²), with
the reason), and which side is better according to the metric's declared direction (its
`MetricSpec`; `--rule` overrides it), "~" when the interval contains 0. The printout labels every column and ends with a footer explaining them.

Dictionary: with Â_i, B̂_j the unit-normalised decoder rows (latent directions) of A and B,

    max_cos_i = max_j Â_i · B̂_j,    share_matched = #{i : max_cos_i ≥ threshold} / F_A,
    mean_max_cos = (1/F_A) Σ_i max_cos_i.

Computed in chunks of A's rows so that at most `chunk_elements` similarities exist at once (never
F_A × F_B for 131k-latent SAEs). The cosine is signed: a flipped direction is a different latent.

Checkpoints given to `compare_checkpoints` are evaluated with `sae_bench.run.runner.evaluate` on the
same corpus (one model load, one activation pass). This module never changes a record.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from sae_bench.core.errors import InputError
from sae_bench.core.metric_directions import MetricRule, rule_for
from sae_bench.analysis.pairing import difference, fitted_table, format_table, pair_records
from sae_bench.core.progress import WIDTH, fit
from sae_bench.records.results import ResultRecord, is_results_path, iter_records

Z_95 = 1.959963984540054
DEFAULT_THRESHOLD = 0.9
DEFAULT_CHUNK_ELEMENTS = 1 << 25  # similarities held at once (128 MiB in float32)


@dataclass(frozen=True)
class MetricComparison:
    hookpoint: str
    task: str
    metric: str
    a: float | None
    a_stderr: float | None
    b: float | None
    b_stderr: float | None
    diff: float | None = None  # B − A
    ci_low: float | None = None
    ci_high: float | None = None
    se_diff: float | None = None
    paired: bool = False
    n_pairs: int | None = None
    direction: str = "none"
    better: str = "-"  # "A" | "B" | "~" (interval contains 0) | "same" | "-" (no direction / not comparable)
    reason: str = ""  # why there is no difference (a null or absent value), or why it is unpaired
    checkpoint: str = ""  # set when a side holds several checkpoints (rows are matched by checkpoint too)

    @property
    def pairing(self) -> str:
        """What the interval rests on, in words (the `pairing` column)."""
        if self.diff is None:
            return self.reason
        if self.paired:
            return f"paired n={self.n_pairs}"
        return f"unpaired: {self.reason}" if self.reason else "unpaired"


@dataclass(frozen=True)
class DictionaryMatch:
    threshold: float
    share_matched: float  # share of A's latents with a B latent at cosine >= threshold
    mean_max_cos: float
    n_a: int
    n_b: int


@dataclass
class Comparison:
    a_label: str
    b_label: str
    rows: list[MetricComparison] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # "hookpoint: reason"
    dictionary: DictionaryMatch | None = None
    dictionary_note: str = ""
    pairs: list = field(default_factory=list, repr=False)  # the RecordPairs behind the rows (for --html)

    def differing(self) -> list[MetricComparison]:
        """Rows whose values differ (non-zero difference, or a value on one side only)."""
        return [r for r in self.rows if (r.diff is not None and r.diff != 0) or (r.diff is None and r.a != r.b)]

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a_label, "b": self.b_label, "rows": [asdict(r) for r in self.rows],
                "refused": list(self.refused),
                "dictionary": asdict(self.dictionary) if self.dictionary else None,
                "dictionary_note": self.dictionary_note}

    def format(self, wide: bool = False) -> str:
        """The printout: one table per hookpoint x task within `WIDTH` columns, or (`wide`) one table with
        every column (checkpoint, hookpoint, task, A±se, B±se, the pairing's reason) on each row."""
        lines = [f"A: {self.a_label}", f"B: {self.b_label}"]
        if self.rows:
            lines += self._wide_table() if wide else self._narrow_tables()
        for reason in self.refused:
            lines.append(f"not compared: {reason}")
        if self.dictionary is not None:
            d = self.dictionary
            lines.append(f"dictionary: {d.share_matched:.4f} of A's {d.n_a} latents have a B latent "
                         f"(of {d.n_b}) at cosine >= {d.threshold:g}; mean max cosine {d.mean_max_cos:.4f}")
        elif self.dictionary_note:
            lines.append(f"dictionary: {self.dictionary_note}")
        if self.rows:
            lines += ["", WIDE_FOOTER if wide else NARROW_FOOTER]
        return "\n".join(lines)

    def _wide_table(self) -> list[str]:
        several = any(r.checkpoint for r in self.rows)
        header = (["checkpoint"] if several else []) + ["hookpoint", "task", "metric", "A", "B", "B-A",
                                                        "95% CI of B-A", "pairing", "better"]
        return [format_table(header, [
            ([r.checkpoint] if several else []) + [
                r.hookpoint, r.task, r.metric, _pm(r.a, r.a_stderr), _pm(r.b, r.b_stderr), _num(r.diff, True),
                "-" if r.ci_low is None else f"[{r.ci_low:+.3g}, {r.ci_high:+.3g}]", r.pairing, r.better]
            for r in self.rows])]

    def _narrow_tables(self) -> list[str]:
        """A heading per (checkpoint,) hookpoint x task, then metric, A, B, B-A, CI, pairing, better; why
        rows are unpaired or empty follows each table once per reason, so no column carries a sentence."""
        groups: dict[tuple[str, str, str], list[MetricComparison]] = {}
        for r in self.rows:
            groups.setdefault((r.checkpoint, r.hookpoint, r.task), []).append(r)
        lines: list[str] = []
        for (checkpoint, hookpoint, task), rows in groups.items():
            cells = [[_num(r.a), _num(r.b), _num(r.diff, True),
                      "-" if r.ci_low is None else f"[{r.ci_low:+.2g}, {r.ci_high:+.2g}]",
                      (f"paired n={r.n_pairs}" if r.paired else "unpaired") if r.diff is not None else "-",
                      r.better] for r in rows]
            header = ["A", "B", "B-A", "95% CI", "pairing", "better"]
            heading = f"{checkpoint} @ {hookpoint} · {task}" if checkpoint else f"{hookpoint} · {task}"
            lines += ["", fit(heading, WIDTH), fitted_table(["metric"] + header,
                                                             [[r.metric] + c for r, c in zip(rows, cells)],
                                                             WIDTH, shrink=((0, 6),))]
            reasons: dict[tuple[str, str], int] = {}  # (unpaired | no difference, why) -> how many rows
            for r in rows:
                if r.reason and not r.paired:
                    kind = "unpaired" if r.diff is not None else "no difference"
                    reasons[(kind, r.reason)] = reasons.get((kind, r.reason), 0) + 1
            lines += [fit(f"  {kind} ({n} metric{'s' if n > 1 else ''}): {why}", WIDTH)
                      for (kind, why), n in reasons.items()]
        return lines


WIDE_FOOTER = """\
A, B: value±standard error; null: the task reported no value; -: none (absent or not applicable).
B-A: the difference; 95% CI: B-A ± 1.96 se. pairing: 'paired n=N' when both sides were measured
on the same N sequences (the shared noise cancels), else 'unpaired' (se = sqrt(se_A^2 + se_B^2))
and why. better: A or B is better beyond the interval; ~ the interval contains 0 (no clear
difference); same: identical values; - the metric has no better direction (l0, ce_clean ...)."""

NARROW_FOOTER = """\
A, B: values (--wide adds standard errors); null: no value; -: none (absent or not applicable).
B-A: the difference; 95% CI: B-A ± 1.96 se. pairing: 'paired n=N' when both sides were measured on
the same N sequences (the shared noise cancels), else 'unpaired' (se = sqrt(se_A^2 + se_B^2)), the
reason under the table. better: A or B is better beyond the interval; ~ the interval contains 0;
same: identical values; - the metric has no better direction (l0, ce_clean ...)."""


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _pm(value: float | None, stderr: float | None) -> str:
    if value is None:
        return "null"
    return f"{value:.4g}" if stderr is None else f"{value:.4g}±{stderr:.2g}"


def _better(direction: str, diff: float, low: float, high: float) -> str:
    if diff == 0:
        return "same"
    if direction == "none":
        return "-"
    if low <= 0 <= high:
        return "~"
    b_higher = diff > 0
    return "B" if b_higher == (direction == "higher") else "A"


def compare_records(a_records: Iterable[ResultRecord], b_records: Iterable[ResultRecord], *,
                    rules: Mapping[str, MetricRule] | None = None, a_label: str = "A",
                    b_label: str = "B") -> Comparison:
    """Every metric of every comparable pair side by side (see the module docstring)."""
    out = Comparison(a_label, b_label)
    out.pairs = pair_records(a_records, b_records)
    for pair in out.pairs:
        if not pair.comparable:
            out.refused.append(f"{' / '.join(pair.key[:-1])}: {pair.reason}")
            continue
        for metric in sorted(set(pair.a.metrics) | set(pair.b.metrics)):
            ea, eb = pair.a.metrics.get(metric) or {}, pair.b.metrics.get(metric) or {}
            spec = pair.a.metric_spec(metric) or pair.b.metric_spec(metric)
            rule = rule_for(metric, pair.task, spec and spec.rule, rules)
            direction = rule.direction if rule else "none"
            common = dict(checkpoint=pair.key[0] if len(pair.key) == 3 else "",
                          hookpoint=pair.hookpoint, task=pair.task, metric=metric, a=ea.get("value"),
                          a_stderr=ea.get("stderr"), b=eb.get("value"), b_stderr=eb.get("stderr"), direction=direction)
            d = difference(pair.a, pair.b, metric)
            if d is None:
                side = "A" if ea.get("value") is None else "B"
                entry = ea if side == "A" else eb
                why = f"{side}: {entry.get('reason') or 'absent'}"
                out.rows.append(MetricComparison(reason=why, **common))
                continue
            low, high = d.diff - Z_95 * d.se, d.diff + Z_95 * d.se
            out.rows.append(MetricComparison(diff=d.diff, ci_low=low, ci_high=high, se_diff=d.se, paired=d.paired,
                                             n_pairs=d.n_pairs, better=_better(direction, d.diff, low, high),
                                             reason=d.why_unpaired, **common))
    return out


def dictionary_match(w_a, w_b, threshold: float = DEFAULT_THRESHOLD, *,
                     chunk_elements: int = DEFAULT_CHUNK_ELEMENTS, show_progress: bool = False) -> DictionaryMatch:
    """Match A's decoder directions in B's (`w_a` [F_A, D], `w_b` [F_B, D], latent-major); see the docstring."""
    import torch
    from sae_bench.core.progress import tqdm

    if w_a.ndim != 2 or w_b.ndim != 2 or w_a.shape[1] != w_b.shape[1]:
        raise InputError("dictionary", f"decoders of shapes {tuple(w_a.shape)} and {tuple(w_b.shape)} "
                                       "do not share an input width")
    if not -1.0 <= threshold <= 1.0:
        raise InputError(f"--threshold {threshold}", "a cosine threshold lies in [-1, 1]")
    device = w_b.device
    unit_b = torch.nn.functional.normalize(w_b.detach().float(), dim=1)
    n_a, n_b = w_a.shape[0], w_b.shape[0]
    rows = max(1, chunk_elements // max(n_b, 1))
    matched, total = 0, 0.0
    with torch.no_grad():
        for start in tqdm(range(0, n_a, rows), desc="dictionary match", disable=not show_progress):
            chunk = torch.nn.functional.normalize(w_a[start:start + rows].detach().to(device).float(), dim=1)
            best = (chunk @ unit_b.T).max(dim=1).values.clamp(-1.0, 1.0)
            matched += int((best >= threshold).sum())
            total += float(best.double().sum())
    return DictionaryMatch(threshold=threshold, share_matched=matched / n_a if n_a else math.nan,
                           mean_max_cos=total / n_a if n_a else math.nan, n_a=n_a, n_b=n_b)


# ------------------------------------------------------------------------------ checkpoints in
@dataclass
class Side:
    """One side of a comparison: result records (a file or folder) or a checkpoint REF[@HOOKPOINT]."""

    text: str
    records: list[ResultRecord] | None = None
    ref: str | None = None
    hookpoint: str | None = None

    @property
    def is_checkpoint(self) -> bool:
        return self.ref is not None


def resolve_side(text: str) -> Side:
    """Results when the path holds result records (told by their schema marker, `is_results_path`,
    never by file names); anything else a checkpoint REF[@HOOKPOINT]."""
    path = Path(text)
    if is_results_path(path):
        return Side(text, records=iter_records(path))
    from sae_bench.run.config import CheckpointSpec

    spec = CheckpointSpec.parse(text)
    return Side(text, ref=spec.ref, hookpoint=spec.hookpoint)


def _labels(a: Side, b: Side) -> tuple[str, str]:
    if a.text != b.text:
        return a.text, b.text
    return a.text, f"{b.text} (copy)"


def evaluate_sides(sides: Sequence[Side], *, model: str, corpus: str, results_dir: Path,
                   tasks: list[str] | None = None, **config: Any) -> None:
    """Evaluate the checkpoint sides on one corpus (one runner call) and fill their `records`."""
    from sae_bench.run.config import CheckpointSpec, RunConfig
    from sae_bench.run.runner import evaluate

    labels = _labels(*sides) if len(sides) == 2 else tuple(s.text for s in sides)
    specs = {label: CheckpointSpec(ref=s.ref, hookpoint=s.hookpoint, label=label)
             for s, label in zip(sides, labels) if s.is_checkpoint}
    if not specs:
        return
    run = RunConfig(model=model, corpus=corpus, results_dir=Path(results_dir), tasks=tasks, **config)
    report = evaluate(run, list(specs.values()))
    for side, label in zip(sides, labels):
        if side.is_checkpoint:
            side.records = [r for r in report.records if r.checkpoint_id == label]


def compare_checkpoints(a_ref: str, b_ref: str, *, model: str | None = None, corpus: str | None = None,
                        tasks: list[str] | None = None, results_dir: Path | None = None,
                        threshold: float = DEFAULT_THRESHOLD, rules: Mapping[str, MetricRule] | None = None,
                        dictionary: bool = True, device: str = "cpu", show_progress: bool = False,
                        **config: Any) -> Comparison:
    """Compare A and B, each a checkpoint `REF[@HOOKPOINT]` or a result file/folder.

    Checkpoints are evaluated on `corpus` with `model` (into `results_dir`, a temporary folder if
    None); the dictionary comparison runs when both sides are checkpoints."""
    if not -1.0 <= threshold <= 1.0:
        raise InputError(f"--threshold {threshold}", "a cosine threshold lies in [-1, 1]")
    a, b = resolve_side(a_ref), resolve_side(b_ref)
    checkpoints = [s for s in (a, b) if s.is_checkpoint]
    if checkpoints:
        if not model or not corpus:
            raise InputError("--model/--corpus", "comparing checkpoints needs a model and a corpus to evaluate them on")
        with tempfile.TemporaryDirectory(prefix="sae-bench-compare-") as tmp:
            evaluate_sides([a, b], model=model, corpus=corpus, results_dir=Path(results_dir or tmp), tasks=tasks,
                           device=device, show_progress=show_progress, **config)
    a_label, b_label = _labels(a, b)
    out = compare_records(a.records or [], b.records or [], rules=rules, a_label=a_label, b_label=b_label)
    if not dictionary:
        out.dictionary_note = "not compared (disabled)"
    elif a.is_checkpoint and b.is_checkpoint:
        from sae_bench.checkpoints import load_checkpoint

        sae_a = load_checkpoint(a.ref, hookpoint=a.hookpoint, device=device)
        sae_b = load_checkpoint(b.ref, hookpoint=b.hookpoint, device=device)
        out.dictionary = dictionary_match(sae_a.W_dec, sae_b.W_dec, threshold, show_progress=show_progress)
    else:
        out.dictionary_note = "not compared (needs two checkpoints, result files were given)"
    return out
