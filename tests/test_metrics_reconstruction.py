"""Reconstruction metrics against cases whose answers are known in closed form."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sae_bench.metrics.reconstruction import ReconstructionAccumulator, reconstruction_metrics
from sae_bench.metrics.stats import ratio_of_sums


def _x(n=200, d=16, offset=5.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) + offset


def test_identity_reconstruction_is_perfect():
    x = _x()
    m = reconstruction_metrics(x, x.clone())
    assert m["fvu"].value == 0.0 and m["mse"].value == 0.0
    assert m["explained_variance"].value == 1.0
    assert math.isclose(m["cossim"].value, 1.0, rel_tol=1e-12)
    assert math.isclose(m["l2_ratio"].value, 1.0, rel_tol=1e-12)
    assert math.isclose(m["relative_reconstruction_bias"].value, 1.0, rel_tol=1e-12)


def test_constant_mean_reconstruction_explains_nothing():
    x = _x()
    x_hat = x.mean(dim=0, keepdim=True).expand_as(x)
    m = reconstruction_metrics(x, x_hat)
    assert math.isclose(m["fvu"].value, 1.0, rel_tol=1e-9)
    assert abs(m["explained_variance"].value) < 1e-9


def test_variance_is_about_the_mean_not_zero():
    """x̂ = μ + ½(x − μ): fvu = ¼ exactly, explained variance ¾ — however large the mean
    (SAEBench 0.6.0's variance-about-zero would report ~0.975 here)."""
    x = _x(offset=50.0)
    mu = x.mean(dim=0, keepdim=True)
    m = reconstruction_metrics(x, mu + 0.5 * (x - mu))
    assert math.isclose(m["fvu"].value, 0.25, rel_tol=1e-9)
    assert math.isclose(m["explained_variance"].value, 0.75, rel_tol=1e-9)


def test_mse_is_per_element_and_scaled_reconstruction_closed_forms():
    x = _x(offset=0.0)
    m = reconstruction_metrics(x, 2.0 * x)
    assert math.isclose(m["mse"].value, float((x**2).sum() / x.numel()), rel_tol=1e-12)
    assert math.isclose(m["l2_ratio"].value, 2.0, rel_tol=1e-12)
    assert math.isclose(m["cossim"].value, 1.0, rel_tol=1e-12)
    assert math.isclose(m["relative_reconstruction_bias"].value, 2.0, rel_tol=1e-12)


def test_orthogonal_reconstruction_has_zero_cosine():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    x_hat = torch.tensor([[0.0, 3.0], [4.0, 0.0]], dtype=torch.float64)
    m = reconstruction_metrics(x, x_hat)
    assert m["cossim"].value == 0.0
    assert math.isclose(m["l2_ratio"].value, (3.0 + 2.0) / 2)
    assert m["relative_reconstruction_bias"].value is None  # Σ x·x̂ = 0: an explicit null
    assert m["relative_reconstruction_bias"].reason


def test_zero_variance_activations_give_null_not_nan():
    x = torch.ones(10, 4, dtype=torch.float64)
    m = reconstruction_metrics(x, torch.zeros_like(x))
    assert m["fvu"].value is None and "variance" in m["fvu"].reason
    assert m["explained_variance"].value is None


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 40), st.integers(1, 8), st.integers(0, 10_000), st.integers(1, 39))
def test_streaming_equals_one_shot_and_fvu_nonnegative(n, d, seed, split):
    split = min(split, n - 1)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    x_hat = torch.randn(n, d, generator=g, dtype=torch.float64)
    seq = torch.randint(0, 3, (n,), generator=g)
    one = ReconstructionAccumulator(3, d)
    one.update(x, x_hat, seq)
    two = ReconstructionAccumulator(3, d)
    two.update(x[:split], x_hat[:split], seq[:split])
    two.update(x[split:], x_hat[split:], seq[split:])
    a, b = one.finalize(), two.finalize()
    for name in a:
        if a[name].value is None:
            assert b[name].value is None
        else:
            assert math.isclose(a[name].value, b[name].value, rel_tol=1e-9, abs_tol=1e-12)
    if a["fvu"].value is not None:
        assert a["fvu"].value >= 0


def test_ratio_of_sums_standard_error_reduces_to_sd_over_sqrt_n():
    values = torch.tensor([1.0, 2.0, 3.0, 4.0, 10.0], dtype=torch.float64)
    value, se = ratio_of_sums(values, torch.ones_like(values))
    assert math.isclose(value, float(values.mean()))
    assert math.isclose(se, float(values.std(unbiased=True) / math.sqrt(5)), rel_tol=1e-12)
