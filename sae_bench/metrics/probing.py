"""Probing metrics: do labeled features fire on their concept, and how well do k latents classify it?

Pure functions (arrays in, numbers out). They never run a model, never encode, never read files.

(a) Label check. For a feature labelled with category c and its activations s on c's positive
    (y = 1) and negative (y = 0) probe texts:

        AUROC(s, y) = (R₊ − n₊(n₊ + 1)/2) / (n₊ n₋)              (Mann–Whitney U / n₊n₋)

    where R₊ is the sum of the mid-ranks (ties get the average rank) of the positives among all
    n₊ + n₋ scores; equivalently P(s₊ > s₋) + ½ P(s₊ = s₋) over all positive/negative pairs.
    The one-sided permutation p-value with n label permutations π₁..πₙ is

        p = (1 + #{j : AUROC(s, π_j(y)) ≥ AUROC(s, y)}) / (1 + n),

    never 0, and exact-valid for any n. A label is confirmed when AUROC ≥ 0.7 and p < 0.05.
    The confirmed fraction f of m tested features has binomial se sqrt(f(1 − f)/m).

(b) Sparse probing. Per category, latents are ranked by |mean(x | y=1) − mean(x | y=0)| on the
    training split (ties broken by lower index); the top k feed a scikit-learn logistic
    regression (inputs standardised on the training split, L2 penalty C, fixed random_state),
    scored by accuracy on the held-out split. Pooled over categories c with n_c test texts and
    accuracy a_c:

        accuracy = Σ_c n_c a_c / N,    se = sqrt(Σ_c n_c a_c (1 − a_c)) / N     (N = Σ_c n_c),

    the stratified binomial standard error (categories are independent test sets).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from scipy.stats import rankdata

from sae_bench.core.task_api import Metric


# ----------------------------------------------------------------------------- (a) label check
def _as_numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().to("cpu", torch.float64).numpy()
    return np.asarray(values, dtype=np.float64)


def _check_labels(labels: np.ndarray, n: int) -> tuple[int, int]:
    if labels.shape[0] != n:
        raise ValueError(f"{labels.shape[0]} labels for {n} scores")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    n_pos = int(labels.sum())
    return n_pos, n - n_pos


def auroc(scores, labels) -> float | None:
    """AUROC of `scores` [n] (or [n, F]: one per column) for binary `labels` [n], with mid-rank
    ties (see module docstring). None when there are no positives or no negatives."""
    s = _as_numpy(scores)
    y = _as_numpy(labels).astype(np.int64)
    n_pos, n_neg = _check_labels(y, s.shape[0])
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(s, method="average", axis=0)
    rank_sum = ranks[y == 1].sum(axis=0)
    result = (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return float(result) if np.ndim(result) == 0 else result


def permutation_aurocs(scores, labels, n_permutations: int, generator: torch.Generator) -> np.ndarray:
    """AUROCs [n_permutations, F] under random relabelings (positive count kept). Ranks do not
    depend on labels, so each permutation is one sum of ranks."""
    s = _as_numpy(scores)
    squeeze = s.ndim == 1
    s = s[:, None] if squeeze else s
    y = _as_numpy(labels).astype(np.int64)
    n_pos, n_neg = _check_labels(y, s.shape[0])
    if n_pos == 0 or n_neg == 0:
        raise ValueError("permutation test needs positives and negatives")
    ranks = rankdata(s, method="average", axis=0)  # [n, F]
    order = torch.rand(n_permutations, s.shape[0], generator=generator).argsort(dim=1).numpy()
    chosen = np.zeros((n_permutations, s.shape[0]))
    np.put_along_axis(chosen, order[:, :n_pos], 1.0, axis=1)  # random positive sets
    result = (chosen @ ranks - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return result[:, 0] if squeeze else result


def permutation_p_value(scores, labels, n_permutations: int, generator: torch.Generator) -> float | np.ndarray:
    """One-sided p = (1 + #{perm AUROC ≥ observed}) / (1 + n_permutations) (per column for [n, F])."""
    if n_permutations < 1:
        raise ValueError("n_permutations must be >= 1")
    observed = auroc(scores, labels)
    if observed is None:
        raise ValueError("permutation test needs positives and negatives")
    null = permutation_aurocs(scores, labels, n_permutations, generator)
    exceed = (null >= np.asarray(observed) - 1e-12).sum(axis=0)  # tolerance: equal AUROCs count
    p = (1.0 + exceed) / (1.0 + n_permutations)
    return float(p) if np.ndim(p) == 0 else p


@dataclass(frozen=True)
class FeatureCheck:
    """The label check of one labelled feature."""

    sae_index: int
    label: str
    category: str
    auroc: float | None  # None: the category is not in the probe set (untested)
    p_value: float | None
    confirmed: bool | None
    n_pos: int
    n_neg: int

    def to_json(self) -> dict:
        return asdict(self)


def label_check(activations, text_labels, text_categories: Sequence[str], features: Sequence[tuple[int, str, str]],
                *, n_permutations: int, generator: torch.Generator, min_auroc: float = 0.7,
                alpha: float = 0.05) -> list[FeatureCheck]:
    """Check each labelled feature against its category's probe texts.

    activations: [n_texts, n_features] per-text activation of each feature in `features`
    (same column order); text_labels [n_texts] 1/0; text_categories [n_texts];
    features: (sae_index, label, category) per column. Permutations for one category are shared
    by all its features (one generator stream, category order as given)."""
    acts = _as_numpy(activations)
    labels = _as_numpy(text_labels).astype(np.int64)
    cats = np.asarray(list(text_categories), dtype=object)
    if acts.shape != (len(cats), len(features)) or labels.shape[0] != len(cats):
        raise ValueError(f"activations {acts.shape} do not match {len(cats)} texts x {len(features)} features")
    results: dict[int, FeatureCheck] = {}
    by_category: dict[str, list[int]] = {}
    for column, (_, _, category) in enumerate(features):
        by_category.setdefault(category, []).append(column)
    for category, columns in by_category.items():
        rows = np.flatnonzero(cats == category)
        y = labels[rows]
        n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
        if n_pos == 0 or n_neg == 0:
            for column in columns:
                index, label, _ = features[column]
                results[column] = FeatureCheck(index, label, category, None, None, None, n_pos, n_neg)
            continue
        scores = acts[np.ix_(rows, columns)]
        observed = np.atleast_1d(auroc(scores, y))
        p_values = np.atleast_1d(permutation_p_value(scores, y, n_permutations, generator))
        for j, column in enumerate(columns):
            index, label, _ = features[column]
            a, p = float(observed[j]), float(p_values[j])
            results[column] = FeatureCheck(index, label, category, a, p, bool(a >= min_auroc and p < alpha),
                                           n_pos, n_neg)
    return [results[column] for column in range(len(features))]


def fraction_metric(successes: int, trials: int, reason: str) -> Metric:
    """successes/trials with binomial se sqrt(f(1 − f)/trials); null when trials = 0."""
    if trials == 0:
        return Metric.null(reason)
    f = successes / trials
    return Metric(f, math.sqrt(f * (1.0 - f) / trials))


def confirmed_fractions(checks: Sequence[FeatureCheck]) -> dict[str, Metric]:
    """{"": overall, category: per category} confirmed fraction over tested features."""
    tested = [c for c in checks if c.confirmed is not None]
    out = {"": fraction_metric(sum(c.confirmed for c in tested), len(tested), "no labelled feature has probe texts")}
    for category in dict.fromkeys(c.category for c in checks):
        group = [c for c in tested if c.category == category]
        out[category] = fraction_metric(sum(c.confirmed for c in group), len(group),
                                        f"probe set has no texts for category {category!r}")
    return out


# ----------------------------------------------------------------------------- (b) sparse probing
def select_by_mean_difference(x_train, y_train, k: int) -> np.ndarray:
    """Indices of the k columns with the largest |mean(x | y=1) − mean(x | y=0)|, ties to the
    lower index; k is capped at the number of columns."""
    x = _as_numpy(x_train)
    y = _as_numpy(y_train).astype(bool)
    if not y.any() or y.all():
        raise ValueError("mean-difference selection needs both classes in the training split")
    diff = np.abs(x[y].mean(axis=0) - x[~y].mean(axis=0))
    order = np.lexsort((np.arange(diff.shape[0]), -diff))  # primary key: -diff; ties: index
    return order[: min(k, diff.shape[0])]


def probe_accuracy(x_train, y_train, x_test, y_test, *, seed: int, C: float = 1.0, max_iter: int = 1000) -> float:
    """Held-out accuracy of a standardised L2 logistic regression (scikit-learn, fixed random_state)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the accuracy is still what it is
        model.fit(_as_numpy(x_train), _as_numpy(y_train).astype(np.int64))
    return float(model.score(_as_numpy(x_test), _as_numpy(y_test).astype(np.int64)))


@dataclass(frozen=True)
class ProbeResult:
    category: str
    k: int | None  # None: dense probe on every column
    accuracy: float
    n_test: int
    selected: list[int] | None  # chosen columns (None for dense)


def sparse_probe(x, labels, is_train, category: str, k: int | None, *, seed: int, C: float = 1.0,
                 max_iter: int = 1000) -> ProbeResult:
    """Select k columns by mean difference on the training rows (all columns when k is None),
    fit on the training rows, score on the others."""
    x = _as_numpy(x)
    y = _as_numpy(labels).astype(np.int64)
    train = np.asarray(is_train, dtype=bool)
    columns = None if k is None else select_by_mean_difference(x[train], y[train], k)
    features = x if columns is None else x[:, columns]
    accuracy = probe_accuracy(features[train], y[train], features[~train], y[~train], seed=seed, C=C,
                              max_iter=max_iter)
    return ProbeResult(category, k, accuracy, int((~train).sum()),
                       None if columns is None else [int(c) for c in columns])


def pooled_accuracy(results: Sequence[ProbeResult]) -> Metric:
    """Test-size-weighted accuracy over categories with the stratified binomial se."""
    total = sum(r.n_test for r in results)
    if total == 0:
        return Metric.null("no held-out probe texts")
    correct = sum(r.accuracy * r.n_test for r in results)
    variance = sum(r.n_test * r.accuracy * (1.0 - r.accuracy) for r in results)
    return Metric(correct / total, math.sqrt(variance) / total)
