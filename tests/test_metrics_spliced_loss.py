"""Spliced-loss metrics against hand-computed CE/KL on tiny logits, plus the task on the fixture model."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sae_bench.metrics.spliced_loss import (SplicedLossAccumulator, chunked_ce_kl, next_token_targets,
                                            prediction_mask, spliced_loss_metrics, token_ce_kl)


def test_prediction_mask_requires_kept_input_and_kept_target():
    keep = torch.tensor([[False, True, True, True, False, False],  # BOS a b c EOS pad
                         [False, True, False, False, False, False]])  # BOS a pad...
    assert prediction_mask(keep).tolist() == [[False, True, True, False, False, False], [False] * 6]
    ids = torch.tensor([[2, 10, 11, 12, 1, 0]])
    assert next_token_targets(ids).tolist() == [[10, 11, 12, 1, 0, 0]]


def test_token_ce_and_kl_closed_form():
    # Two-token vocabulary: logits (0, 0) -> p = (½, ½); logits (log 3, 0) -> p = (¾, ¼).
    clean = torch.log_softmax(torch.tensor([[math.log(3.0), 0.0]]), dim=-1)
    ce, kl = token_ce_kl(torch.tensor([[0.0, 0.0]]), torch.tensor([1]), clean)
    assert ce.item() == pytest.approx(math.log(2.0))
    expected_kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert kl.item() == pytest.approx(expected_kl, rel=1e-6)
    ce_same, kl_same = token_ce_kl(torch.tensor([[math.log(3.0), 0.0]]), torch.tensor([0]), clean)
    assert ce_same.item() == pytest.approx(-math.log(0.75), rel=1e-6)
    assert kl_same.item() == 0.0


def _sums(ce_clean, ce_spliced, ce_zero, ce_mean, kl_spliced, kl_zero, count):
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    return ({"clean": t(ce_clean), "spliced": t(ce_spliced), "zero": t(ce_zero), "mean": t(ce_mean)},
            {"spliced": t(kl_spliced), "zero": t(kl_zero)}, t(count))


def test_metric_formulas_on_per_sequence_sums():
    ce, kl, count = _sums([2.0, 4.0], [3.0, 5.0], [10.0, 10.0], [6.0, 6.0], [0.5, 1.5], [4.0, 4.0], [2, 2])
    m = spliced_loss_metrics(ce, kl, count)
    assert m["ce_clean"].value == pytest.approx(6 / 4)
    assert m["ce_spliced"].value == pytest.approx(8 / 4)
    assert m["ce_zero"].value == pytest.approx(20 / 4)
    assert m["ce_mean"].value == pytest.approx(12 / 4)
    assert m["delta_ce"].value == pytest.approx(0.5)
    assert m["ce_loss_recovered"].value == pytest.approx((20 - 8) / (20 - 6))
    assert m["kl_spliced"].value == pytest.approx(2 / 4)
    assert m["kl_zero"].value == pytest.approx(8 / 4)
    assert m["kl_score"].value == pytest.approx((8 - 2) / 8)
    # delta_ce is the same per sequence (0.5 each): its clustered SE is zero
    assert m["delta_ce"].stderr == pytest.approx(0.0)
    assert m["kl_spliced"].stderr > 0


def test_identity_and_zero_splices():
    ce, kl, count = _sums([2.0, 4.0], [2.0, 4.0], [9.0, 7.0], [5.0, 5.0], [0.0, 0.0], [3.0, 1.0], [2, 3])
    m = spliced_loss_metrics(ce, kl, count)
    assert m["ce_loss_recovered"].value == 1.0 and m["kl_spliced"].value == 0.0 and m["kl_score"].value == 1.0
    assert m["delta_ce"].value == 0.0
    ce, kl, count = _sums([2.0, 4.0], [9.0, 7.0], [9.0, 7.0], [5.0, 5.0], [3.0, 1.0], [3.0, 1.0], [2, 3])
    m = spliced_loss_metrics(ce, kl, count)
    assert m["ce_loss_recovered"].value == 0.0 and m["kl_score"].value == 0.0


def test_zero_denominators_are_null_with_reason_not_nan():
    ce, kl, count = _sums([2.0], [3.0], [2.0], [2.0], [0.1], [0.0], [4])
    m = spliced_loss_metrics(ce, kl, count)
    assert m["ce_loss_recovered"].value is None and "zero-ablation" in m["ce_loss_recovered"].reason
    assert m["kl_score"].value is None and m["kl_score"].reason
    ce, kl, count = _sums([0.0], [0.0], [0.0], [0.0], [0.0], [0.0], [0])
    assert all(v.value is None and v.reason for v in spliced_loss_metrics(ce, kl, count).values())


def test_chunked_equals_unchunked_and_accumulator_end_to_end():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(8, 11, generator=g)
    logits_fn = lambda h: h @ W  # noqa: E731
    clean_h = torch.randn(23, 8, generator=g)
    spliced_h = clean_h + 0.3 * torch.randn(23, 8, generator=g)
    targets = torch.randint(0, 11, (23,), generator=g)
    ce1, kl1 = chunked_ce_kl(spliced_h, targets, logits_fn, clean_hidden=clean_h, chunk=5)
    ce2, kl2 = token_ce_kl(logits_fn(spliced_h), targets, torch.log_softmax(logits_fn(clean_h), -1))
    assert torch.allclose(ce1, ce2, atol=1e-6) and torch.allclose(kl1, kl2, atol=1e-6)
    # identity splice: the spliced run equals the clean run exactly
    ce_c, kl_c = chunked_ce_kl(clean_h, targets, logits_fn, clean_hidden=clean_h, chunk=5)
    ce_z, kl_z = chunked_ce_kl(torch.zeros_like(clean_h), targets, logits_fn, clean_hidden=clean_h, chunk=5)
    seq = torch.arange(23) % 4
    acc = SplicedLossAccumulator(4)
    acc.add_count(seq)
    acc.add("clean", seq, ce_c)
    acc.add("spliced", seq, ce_c, kl_c)
    acc.add("zero", seq, ce_z, kl_z)
    acc.add("mean", seq, ce_z)
    m = acc.finalize()
    assert m["ce_loss_recovered"].value == 1.0 and m["kl_spliced"].value == 0.0
    assert m["kl_zero"].value > 0 and m["kl_score"].value == 1.0
    assert m["ce_zero"].value == pytest.approx(math.log(11), rel=1e-6)  # zero hidden -> uniform logits
    assert acc.per_sequence()["delta_ce"] == [0.0] * 4
    assert acc.n_predictions == 23


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 30), st.floats(0.0, 5.0))
def test_kl_is_nonnegative_and_zero_only_for_equal_distributions(seed, vocab, scale):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(7, vocab, generator=g) * scale
    b = torch.randn(7, vocab, generator=g) * scale
    _, kl = token_ce_kl(b, torch.zeros(7, dtype=torch.int64), torch.log_softmax(a, -1))
    assert bool((kl >= 0).all())
    _, kl_same = token_ce_kl(a, torch.zeros(7, dtype=torch.int64), torch.log_softmax(a, -1))
    assert float(kl_same.max()) < 1e-5
