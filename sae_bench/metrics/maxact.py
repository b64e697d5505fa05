"""Max-activation reproduction metrics: does re-encoding a stored context give back its numbers?

Per example (a stored window s_1..s_L with stored peak position p and stored peak value a, and the
re-encoded activations r_1..r_L of the same feature on the same tokens):

    peak_agrees        = [ r_p = max_j r_j  and  max_j r_j > min_j r_j ]
                         (the stored peak is a maximum of the re-encoding, and there is a peak at
                         all: an all-equal re-encoding, e.g. a feature that never fires, never agrees)
    relative_error     = |r_p − a| / |a|                         (undefined when a = 0)
    spearman           = Pearson correlation of the average ranks (ties share the mean rank) of s and
                         of r                                    (undefined when s or r is constant)
    reproduced         = peak_agrees and relative_error <= tol_rel and spearman >= tol_rho
                         (an undefined relative error or Spearman never reproduces)

Per feature (its n examples): peak_position_agreement, peak_relative_error and spearman are the
means over its examples (the last two over examples where they are defined), examples_reproduced
is the fraction of its examples reproduced, and the feature counts as reproduced when
examples_reproduced >= min_example_fraction (default 0.5: most of its examples).

Overall (over features with at least one scored example): the mean of each per-feature value with
se = sd/√n_features; reproduced_fraction = mean of the per-feature flags with the binomial se
sqrt(f(1 − f)/n_features); examples_reproduced_fraction is the pooled example-level rate (binomial
se over examples, which ignores the correlation of examples of one feature: read it as a lower
bound). Pure functions: numbers in, numbers out; no model, no files. Never NaN: undefined is None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch

from sae_bench.metrics.stats import mean_metric
from sae_bench.core.task_api import Metric


@dataclass(frozen=True)
class Tolerances:
    tol_rel: float = 0.1  # max relative error of the peak activation
    tol_rho: float = 0.7  # min Spearman correlation of per-token activations
    min_example_fraction: float = 0.5  # share of a feature's examples that must reproduce


@dataclass(frozen=True)
class ExampleScore:
    feature: int
    peak_agrees: bool
    relative_error: float | None
    spearman: float | None
    reproduced: bool


@dataclass(frozen=True)
class FeatureScore:
    feature: int
    n_examples: int
    peak_position_agreement: float
    peak_relative_error: float | None
    spearman: float | None
    examples_reproduced: float
    reproduced: bool

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rho with average ranks for ties; None when either side is constant or n < 2."""
    if len(a) != len(b):
        raise ValueError(f"spearman needs equal lengths, got {len(a)} and {len(b)}")
    if len(a) < 2:
        return None
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float((ra * ra).sum()) * float((rb * rb).sum()))
    if denom == 0.0:
        return None
    return max(-1.0, min(1.0, float((ra * rb).sum()) / denom))


def score_example(feature: int, stored: Sequence[float], new: Sequence[float], stored_peak: float,
                  peak_position: int, tol: Tolerances = Tolerances()) -> ExampleScore:
    """The per-example metrics of the module docstring."""
    if len(stored) != len(new):
        raise ValueError(f"stored has {len(stored)} activations, re-encoded {len(new)}")
    r = np.asarray(new, dtype=np.float64)
    peak_agrees = bool(r[peak_position] == r.max() and r.max() > r.min())
    rel = None if stored_peak == 0 else abs(float(r[peak_position]) - stored_peak) / abs(stored_peak)
    rho = spearman(stored, new)
    reproduced = peak_agrees and rel is not None and rel <= tol.tol_rel and rho is not None and rho >= tol.tol_rho
    return ExampleScore(feature, peak_agrees, rel, rho, reproduced)


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def score_features(examples: Sequence[ExampleScore], tol: Tolerances = Tolerances()) -> list[FeatureScore]:
    """Per-feature aggregates, ordered by feature index."""
    by_feature: dict[int, list[ExampleScore]] = {}
    for e in examples:
        by_feature.setdefault(e.feature, []).append(e)
    out = []
    for feature in sorted(by_feature):
        group = by_feature[feature]
        n = len(group)
        share = sum(e.reproduced for e in group) / n
        out.append(FeatureScore(
            feature=feature, n_examples=n,
            peak_position_agreement=sum(e.peak_agrees for e in group) / n,
            peak_relative_error=_mean(e.relative_error for e in group),
            spearman=_mean(e.spearman for e in group),
            examples_reproduced=share,
            reproduced=share >= tol.min_example_fraction,
        ))
    return out


def binomial_metric(successes: int, trials: int, reason: str) -> Metric:
    """successes/trials with se sqrt(f(1 − f)/trials); null when trials = 0."""
    if trials == 0:
        return Metric.null(reason)
    f = successes / trials
    return Metric(f, math.sqrt(f * (1.0 - f) / trials))


def _feature_mean(values: list[float | None], what: str) -> Metric:
    kept = [v for v in values if v is not None]
    if not kept:
        return Metric.null(f"{what} is undefined for every feature")
    return mean_metric(torch.tensor(kept, dtype=torch.float64), reason=f"no features with a defined {what}")


def summarize(features: Sequence[FeatureScore], examples: Sequence[ExampleScore]) -> dict[str, Metric]:
    """Overall metrics over features (and the pooled example-level rate)."""
    return {
        "peak_position_agreement": _feature_mean([f.peak_position_agreement for f in features], "peak agreement"),
        "peak_relative_error": _feature_mean([f.peak_relative_error for f in features], "relative error"),
        "spearman": _feature_mean([f.spearman for f in features], "Spearman correlation"),
        "reproduced_fraction": binomial_metric(sum(f.reproduced for f in features), len(features),
                                               "no feature had a scorable example"),
        "examples_reproduced_fraction": binomial_metric(sum(e.reproduced for e in examples), len(examples),
                                                        "no scorable examples"),
    }
