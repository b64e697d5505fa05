"""The device metric path: sums kept on the data's device (float64, or compensated float32 where the
device has no float64) give the CPU float64 numbers to 1e-6 relative.

No accelerator is needed for most checks: the compensated float32 path is forced on the CPU
(`compensated=True`), which is what a device without float64 runs. The CUDA checks run only where
a GPU is present (they skip otherwise)."""

from __future__ import annotations

import math

import pytest
import torch

from sae_bench.metrics.device_sums import SegmentSums, accumulation_dtype, has_float64
from sae_bench.metrics.reconstruction import ReconstructionAccumulator
from sae_bench.metrics.sparsity import SparsityAccumulator
from sae_bench.checkpoints.sae import Codes

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _close(a, b, rel=1e-6):
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def _metrics_close(a: dict, b: dict, rel=1e-6, stderr_rel=1e-6):
    assert a.keys() == b.keys()
    for name in a:
        assert _close(a[name].value, b[name].value, rel) and _close(a[name].stderr, b[name].stderr, stderr_rel), \
            (name, a[name], b[name])


def test_float64_where_the_device_has_it():
    assert has_float64("cpu") and accumulation_dtype("cpu") == torch.float64
    assert accumulation_dtype("cpu", compensated=True) == torch.float32


def test_compensated_float32_sums_match_float64():
    """Many small additions onto large sums: plain float32 drifts, the compensated sum does not."""
    g = torch.Generator().manual_seed(0)
    exact = SegmentSums(5, device="cpu")
    compensated = SegmentSums(5, device="cpu", compensated=True)
    plain = torch.zeros(5, dtype=torch.float32)
    exact.add(torch.arange(5), torch.full((5,), 1e4))
    compensated.add(torch.arange(5), torch.full((5,), 1e4))
    plain += 1e4
    for _ in range(2000):
        index = torch.randint(0, 5, (64,), generator=g)
        values = torch.rand(64, generator=g) * 1e-3
        exact.add(index, values)
        compensated.add(index, values)
        plain.index_add_(0, index, values)
    want = exact.total()
    assert torch.allclose(compensated.total(), want, rtol=1e-9, atol=0)
    assert not torch.allclose(plain.double(), want, rtol=1e-9, atol=0)  # the check can fail


def _reconstruction_batches(seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(6):
        x = torch.randn(300, 16, generator=g) * 3 + 1
        yield x, x + 0.1 * torch.randn(300, 16, generator=g), torch.randint(0, 9, (300,), generator=g)


def test_reconstruction_compensated_path_matches_float64():
    """Values to 1e-6. Standard errors only to 1e-3: on a device without float64 the per-token
    quantities themselves are float32 (cos ≈ 0.9995 carries ~6e-8 absolute error per token), and
    the spread of a near-constant quantity is small enough to feel that."""
    a, b = ReconstructionAccumulator(9, 16), ReconstructionAccumulator(9, 16, compensated=True)
    for x, x_hat, seq in _reconstruction_batches():
        a.update(x, x_hat, seq)
        b.update(x, x_hat, seq)
    _metrics_close(a.finalize(), b.finalize(), stderr_rel=1e-3)


def _codes_batches(seed=0, f=512):
    g = torch.Generator().manual_seed(seed)
    for _ in range(5):
        values = torch.rand(400, 8, generator=g)
        values[values < 0.1] = 0
        yield Codes(values, torch.randint(0, f, (400, 8), generator=g), f), torch.randint(0, 30, (400,), generator=g)


def test_sparsity_compensated_path_matches_float64_and_bootstrap_is_identical():
    a = SparsityAccumulator(30, 512, dense_threshold=0.01)
    b = SparsityAccumulator(30, 512, dense_threshold=0.01, compensated=True)
    for codes, seq in _codes_batches():
        a.update(codes, seq)
        b.update(codes, seq)
    ma = a.finalize(replicates=50, generator=torch.Generator().manual_seed(3))
    mb = b.finalize(replicates=50, generator=torch.Generator().manual_seed(3))
    _metrics_close(ma, mb)
    # integer counts: the bootstrap is exact in float32 too
    assert ma["dead_fraction"] == mb["dead_fraction"] and ma["dense_fraction"] == mb["dense_fraction"]
    assert ma["dense_fraction"].stderr > 0


@CUDA
def test_cuda_accumulators_match_the_cpu_path():
    a, b = ReconstructionAccumulator(9, 16), ReconstructionAccumulator(9, 16)
    for x, x_hat, seq in _reconstruction_batches():
        a.update(x, x_hat, seq)
        b.update(x.cuda(), x_hat.cuda(), seq.cuda())
    _metrics_close(a.finalize(), b.finalize())
    s, t = SparsityAccumulator(30, 512, dense_threshold=0.01), SparsityAccumulator(30, 512, dense_threshold=0.01)
    for codes, seq in _codes_batches():
        s.update(codes, seq)
        t.update(Codes(codes.values.cuda(), codes.indices.cuda(), codes.d_sae), seq.cuda())
    assert t.device.type == "cuda"
    _metrics_close(s.finalize(replicates=50, generator=torch.Generator().manual_seed(3)),
                   t.finalize(replicates=50, generator=torch.Generator().manual_seed(3)))


@CUDA
def test_cuda_spliced_scores_match_the_cpu_path():
    from sae_bench.metrics.spliced_loss import score_runs

    vocab, d, n = 4000, 32, 300
    weight = torch.randn(vocab, d)

    def head_for(w):
        return lambda h, out: torch.mm(h, w.t(), out=out[:h.shape[0]])

    clean, run = torch.randn(n, d), torch.randn(n, d)
    targets = torch.randint(0, vocab, (n,))
    cpu = score_runs(clean, targets, {"r": run}, head_for(weight), vocab, chunk=64)
    gpu = score_runs(clean.cuda(), targets, {"r": run.cuda()}, head_for(weight.cuda()), vocab, chunk=64)
    assert torch.allclose(cpu[0], gpu[0], rtol=1e-5) and torch.allclose(cpu[1]["r"][0], gpu[1]["r"][0], rtol=1e-5)
    assert torch.allclose(cpu[1]["r"][1], gpu[1]["r"][1], rtol=1e-4, atol=1e-6)
