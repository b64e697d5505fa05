"""The SAE runs in the model's dtype on CUDA (bf16/fp16), and every metric still accumulates in float32/64.

Checked on CPU: the rule that picks the compute dtype, the cast-while-moving loader, and that
feeding bf16 activations/reconstructions/codes/logits to the metric code gives exactly the numbers
of their float64 upcast (no sum is ever taken in bf16).
"""

from __future__ import annotations

import torch

from sae_bench.activations.source import POOLED_HOOKPOINT
from sae_bench.fixtures import SAES_DIR
from sae_bench.metrics.reconstruction import ReconstructionAccumulator
from sae_bench.metrics.sparsity import SparsityAccumulator
from sae_bench.metrics.spliced_loss import token_ce_kl
from sae_bench import CheckpointSpec
from sae_bench.checkpoints.compute_dtype import sae_compute_dtype
from sae_bench.checkpoints.sae import Codes


def test_compute_dtype_rule():
    assert sae_compute_dtype("cuda", torch.bfloat16, "layers.2") is torch.bfloat16
    assert sae_compute_dtype("cuda:0", torch.float16, "layers.2") is torch.float16
    assert sae_compute_dtype("cuda", torch.float32, "layers.2") is None
    assert sae_compute_dtype("cpu", torch.bfloat16, "layers.2") is None
    assert sae_compute_dtype("cuda", torch.bfloat16, POOLED_HOOKPOINT) is None


def test_loader_casts_while_moving():
    spec = CheckpointSpec(ref=str(SAES_DIR / "sparsify/tiny-gemma4-8x"), hookpoint="layers.2", format="sparsify")
    full = spec.load("cpu")
    half = spec.load("cpu", torch.bfloat16)
    assert full.dtype is torch.float32 and half.dtype is torch.bfloat16
    assert half.b_enc.dtype is half.b_dec.dtype is half.W_dec.dtype is torch.bfloat16
    assert torch.equal(half.W_enc, full.W_enc.to(torch.bfloat16))
    assert full.metadata.weights_sha256 == half.metadata.weights_sha256  # the file's identity, not the cast's
    x = torch.randn(64, full.d_in, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    codes = half.encode(x)
    assert codes.values.dtype is torch.bfloat16
    ref = full.reconstruct(x.float())[0]
    # bf16 rounding (and the odd top-k tie flipped by it) moves the reconstruction only a little
    assert (half.decode(codes).float() - ref).norm() < 0.1 * ref.norm()


def _bf16(shape, seed):
    return (torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 3 + 1).to(torch.bfloat16)


def test_reconstruction_metrics_accumulate_in_float64_when_fed_bf16():
    n, d = 4096, 16
    x, x_hat = _bf16((n, d), 1), _bf16((n, d), 2)
    seq = torch.arange(n) // 64
    fed_bf16 = ReconstructionAccumulator(64, d)
    fed_bf16.update(x, x_hat, seq)
    upcast = ReconstructionAccumulator(64, d)
    upcast.update(x.double(), x_hat.double(), seq)
    assert fed_bf16.sq_err.dtype is torch.float64
    assert fed_bf16.finalize() == upcast.finalize()
    # and a bf16 sum would not have matched: the check can fail
    bf16_sum = float(((x - x_hat) ** 2).sum(dtype=torch.bfloat16))
    assert bf16_sum != float(upcast.sq_err.sum())


def test_sparsity_metrics_accumulate_in_float64_when_fed_bf16():
    n, k, f = 2048, 8, 256
    g = torch.Generator().manual_seed(3)
    values = torch.rand(n, k, generator=g).to(torch.bfloat16) * 7
    indices = torch.stack([torch.randperm(f, generator=g)[:k] for _ in range(n)])
    seq = torch.arange(n) // 32
    fed_bf16 = SparsityAccumulator(64, f)
    fed_bf16.update(Codes(values, indices, f), seq)
    upcast = SparsityAccumulator(64, f)
    upcast.update(Codes(values.double(), indices, f), seq)
    assert fed_bf16.l1.dtype is torch.float64
    assert torch.equal(fed_bf16.l1, upcast.l1) and torch.equal(fed_bf16.l0, upcast.l0)
    assert fed_bf16.finalize() == upcast.finalize()


def test_spliced_loss_ce_kl_are_float32_when_fed_bf16_logits():
    logits, clean = _bf16((32, 100), 4), _bf16((32, 100), 5)
    targets = torch.arange(32) % 100
    clean_lp = torch.log_softmax(clean.float(), dim=-1)
    ce, kl = token_ce_kl(logits, targets, clean_lp)
    ce32, kl32 = token_ce_kl(logits.float(), targets, clean_lp)
    assert ce.dtype is torch.float32 and kl.dtype is torch.float32
    assert torch.equal(ce, ce32) and torch.equal(kl, kl32)
