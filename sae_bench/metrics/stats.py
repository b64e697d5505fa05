"""Standard errors for metrics that are ratios of sums over sequences.

Every per-token average in sae-bench is a ratio of sums, R = Σ_i a_i / Σ_i b_i, where i runs
over sequences (a_i: the sequence's summed quantity, b_i: its kept-token count or another sum).
Tokens of one sequence are correlated, so the sequence is the sampling unit: the standard error
is the cluster-robust (delta-method) one,

    se(R) = sqrt( Σ_i (a_i − R·b_i)² / (n (n − 1)) ) / mean_i(b_i),

which for b_i = 1 reduces to the usual sd/√n. All arithmetic is float64. Never returns NaN:
undefined values come back as None.

The per-sequence terms (a_i, b_i) of each such metric are also stored in the result record
(`artifacts.per_sequence_terms[metric] = {"num": [a_i], "den": [b_i]}`, `ratio_terms_json`), so
that two checkpoints measured on the same sequences can be compared with a paired standard
error (`sae_bench.analysis.pairing`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sae_bench.core.task_api import Metric


def ratio_of_sums(numerators: Tensor, denominators: Tensor) -> tuple[float | None, float | None]:
    """(R, se(R)) for per-unit sums; (None, None) when Σ b = 0."""
    a = numerators.to(torch.float64).flatten()
    b = denominators.to(torch.float64).flatten()
    total_b = float(b.sum())
    if a.numel() == 0 or total_b == 0.0:
        return None, None
    ratio = float(a.sum()) / total_b
    n = a.numel()
    if n < 2:
        return ratio, None
    residual = a - ratio * b
    se = math.sqrt(float((residual**2).sum()) / (n * (n - 1))) / (total_b / n)
    return ratio, se


def ratio_metric(numerators: Tensor, denominators: Tensor, reason: str) -> Metric:
    """A Metric for Σa/Σb, or a null Metric with `reason` when it is undefined."""
    value, se = ratio_of_sums(numerators, denominators)
    if value is None or not math.isfinite(value):
        return Metric.null(reason)
    return Metric(value, se)


def mean_metric(values: Tensor, reason: str = "no units to average") -> Metric:
    """Mean of per-unit values with se = sd/√n."""
    return ratio_metric(values, torch.ones_like(values, dtype=torch.float64), reason)


def one_minus(metric: Metric) -> Metric:
    """1 − m with the same standard error (for explained_variance = 1 − fvu)."""
    return metric if metric.value is None else Metric(1.0 - metric.value, metric.stderr)


def ratio_metrics(terms: dict[str, tuple[Tensor, Tensor, str]]) -> dict[str, Metric]:
    """{metric: (numerators, denominators, reason if undefined)} -> {metric: Metric} (Σa/Σb each)."""
    return {name: ratio_metric(num, den, reason) for name, (num, den, reason) in terms.items()}


def ratio_terms_json(terms: dict[str, tuple[Tensor, Tensor, str]]) -> dict[str, dict[str, list[float]]]:
    """The per-sequence terms of ratio metrics as JSON: {metric: {"num": [a_i], "den": [b_i]}}."""
    return {name: {"num": num.to(torch.float64).flatten().tolist(), "den": den.to(torch.float64).flatten().tolist()}
            for name, (num, den, _reason) in sorted(terms.items())}


def per_unit_ratio(numerators: Tensor, denominators: Tensor) -> list[float | None]:
    """a_i / b_i per unit (for paired comparisons); None where b_i = 0."""
    out: list[float | None] = []
    for a, b in zip(numerators.tolist(), denominators.tolist()):
        out.append(None if b == 0 else a / b)
    return out
