"""Max-activation reproduction metrics on closed-form cases."""

import math

import pytest
from hypothesis import given, settings, strategies as st
from scipy.stats import spearmanr

from sae_bench.metrics.maxact import (ExampleScore, Tolerances, average_ranks, binomial_metric, score_example,
                                      score_features, spearman, summarize)


def test_identical_activations_reproduce_perfectly():
    stored = [0.0, 0.5, 3.0, 1.0, 0.0]
    s = score_example(7, stored, list(stored), 3.0, 2)
    assert s.peak_agrees and s.relative_error == 0.0 and s.spearman == pytest.approx(1.0) and s.reproduced


def test_reversed_ranks_give_minus_one():
    assert spearman([1, 2, 3, 4, 5], [50, 40, 30, 20, 10]) == pytest.approx(-1.0)
    s = score_example(0, [1, 2, 3, 4, 5], [5, 4, 3, 2, 1], 5.0, 4)
    assert not s.peak_agrees and s.spearman == pytest.approx(-1.0) and not s.reproduced
    assert s.relative_error == pytest.approx(0.8)  # r_p = 1 against a = 5


def test_hand_example_with_ties():
    # a = [0, 0, 1, 2]: ranks 1.5, 1.5, 3, 4.  b = [0, 1, 1, 1]: ranks 1, 3, 3, 3.
    assert list(average_ranks([0, 0, 1, 2])) == [1.5, 1.5, 3.0, 4.0]
    assert list(average_ranks([0, 1, 1, 1])) == [1.0, 3.0, 3.0, 3.0]
    # centred: a' = [-1, -1, 0.5, 1.5], b' = [-1.5, 0.5, 0.5, 0.5]
    # Σa'b' = 1.5 - 0.5 + 0.25 + 0.75 = 2; Σa'² = 4.5; Σb'² = 3  -> rho = 2 / sqrt(13.5)
    assert spearman([0, 0, 1, 2], [0, 1, 1, 1]) == pytest.approx(2 / math.sqrt(13.5))


def test_constant_side_is_undefined_and_never_reproduces():
    assert spearman([1, 2, 3], [0, 0, 0]) is None
    s = score_example(0, [0.0, 2.0, 0.0], [0.0, 0.0, 0.0], 2.0, 1)
    assert not s.peak_agrees and s.spearman is None and s.relative_error == 1.0 and not s.reproduced


def test_peak_agreement_accepts_a_tied_maximum_at_the_stored_peak():
    assert score_example(0, [0, 3, 1], [0, 2, 2], 3.0, 1).peak_agrees
    assert not score_example(0, [0, 3, 1], [0, 2, 2.5], 3.0, 1).peak_agrees


def test_tolerances_are_inclusive_bounds():
    stored = [0.0, 1.0, 10.0, 2.0]
    new = [0.0, 1.0, 11.0, 2.0]  # rel err exactly 0.1, same ranks
    assert score_example(0, stored, new, 10.0, 2, Tolerances(tol_rel=0.1)).reproduced
    assert not score_example(0, stored, new, 10.0, 2, Tolerances(tol_rel=0.09)).reproduced
    assert score_example(0, stored, new, 0.0, 2).relative_error is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=2, max_size=12), st.data())
def test_spearman_matches_scipy_with_ties(a, data):
    b = data.draw(st.lists(st.integers(-3, 3), min_size=len(a), max_size=len(a)))
    ours = spearman(a, b)
    if len(set(a)) < 2 or len(set(b)) < 2:
        assert ours is None
    else:
        assert ours == pytest.approx(float(spearmanr(a, b).statistic), abs=1e-12)


def test_feature_aggregation_and_overall_ses():
    ex = [ExampleScore(1, True, 0.0, 1.0, True), ExampleScore(1, True, 0.2, 0.8, False),
          ExampleScore(1, True, 0.0, 0.9, True),
          ExampleScore(2, False, 0.5, None, False), ExampleScore(2, False, None, None, False)]
    feats = score_features(ex)
    assert [f.feature for f in feats] == [1, 2]
    f1, f2 = feats
    assert f1.peak_position_agreement == 1.0 and f1.examples_reproduced == pytest.approx(2 / 3) and f1.reproduced
    assert f1.peak_relative_error == pytest.approx(0.2 / 3) and f1.spearman == pytest.approx(0.9)
    assert f2.peak_position_agreement == 0.0 and f2.spearman is None and f2.peak_relative_error == 0.5
    assert not f2.reproduced
    overall = summarize(feats, ex)
    assert overall["reproduced_fraction"].value == 0.5
    assert overall["reproduced_fraction"].stderr == pytest.approx(math.sqrt(0.25 / 2))
    assert overall["peak_position_agreement"].value == 0.5
    assert overall["peak_position_agreement"].stderr == pytest.approx(0.5)  # sd([1, 0]) / sqrt(2)
    assert overall["spearman"].value == pytest.approx(0.9) and overall["spearman"].stderr is None
    assert overall["examples_reproduced_fraction"].value == pytest.approx(2 / 5)
    assert not any(isinstance(m.value, float) and math.isnan(m.value) for m in overall.values())


def test_empty_inputs_give_null_metrics_with_reasons():
    overall = summarize([], [])
    assert all(m.value is None and m.reason for m in overall.values())
    assert binomial_metric(3, 3, "x").value == 1.0 and binomial_metric(3, 3, "x").stderr == 0.0
