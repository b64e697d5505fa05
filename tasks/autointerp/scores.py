"""Per-latent scores of the autointerp protocols (pure functions: lists in, numbers out).

- balanced accuracy (delphi's detection/fuzzing headline): (TPR + TNR) / 2 over the examples
  whose prediction parsed, TPR = mean prediction over activating examples, TNR = mean (1 −
  prediction) over the others; None when either class has no parsed example.
- AUROC (delphi, from the judge's P("1") per example): P(s⁺ > s⁻) + ½ P(s⁺ = s⁻) over all
  (activating, non-activating) pairs (Mann-Whitney); None without both classes.
- SAEBench's score: the fraction of the shown examples whose predicted membership equals the
  truth, (1/n) Σᵢ [i ∈ predicted] == activeᵢ (its `score_predictions`).
- The SAE's score is the mean over scored latents, its standard error std/√n (ddof 1).
"""

from __future__ import annotations

import math
from typing import Sequence


def balanced_accuracy(labels: Sequence[int], preds: Sequence[int]) -> float | None:
    pos = [p for y, p in zip(labels, preds) if y == 1]
    neg = [p for y, p in zip(labels, preds) if y == 0]
    if not pos or not neg:
        return None
    return (sum(pos) / len(pos) + sum(1 - p for p in neg) / len(neg)) / 2


def auroc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    pos = [s for y, s in zip(labels, scores) if y == 1]
    neg = [s for y, s in zip(labels, scores) if y == 0]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def saebench_score(predicted: Sequence[int], active: Sequence[bool]) -> float:
    chosen = set(predicted)
    return sum((i + 1 in chosen) == a for i, a in enumerate(active)) / len(active)


def mean_and_stderr(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """(mean, standard error, n) over the values that are not None."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return None, None, 0
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, None, len(xs)
    var = sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)
    return mean, math.sqrt(var / len(xs)), len(xs)
