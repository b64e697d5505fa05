"""The fast paths of the metric accumulators give exactly the numbers of their plain definitions.

The sparsity bootstrap computes every replicate's firing counts in one (dense or sparse) product;
its terms are integers, so the result must equal, bit for bit, the replicate-by-replicate loop
of the definition (sae_bench.metrics.sparsity docstring). Codes.abs_sum works in row chunks and
must equal the one-shot float64 sum.
"""

from __future__ import annotations

import pytest
import torch

import sae_bench.metrics.sparsity as sparsity
from sae_bench.metrics.sparsity import SparsityAccumulator
from sae_bench.checkpoints.sae import Codes


def _loop_bootstrap(acc: SparsityAccumulator, replicates: int, seed: int):
    """The definition: resample sequences, recount each latent's firings, replicate by replicate."""
    generator = torch.Generator().manual_seed(seed)
    present = torch.nonzero(acc.tokens > 0).flatten()
    n = present.numel()
    seqs, latents, counts = acc.sequence_latent_counts()
    position = torch.full((acc.n_sequences,), -1, dtype=torch.int64)
    position[present] = torch.arange(n)
    seqs, tokens = position[seqs], acc.tokens[present]
    dead, dense = [], []
    for _ in range(replicates):
        weights = torch.bincount(torch.randint(0, n, (n,), generator=generator), minlength=n).to(torch.float64)
        fire = torch.zeros(acc.d_sae, dtype=torch.float64).index_add_(0, latents, weights[seqs] * counts)
        d, s = acc._fractions(fire, float((weights * tokens).sum()))
        dead.append(d)
        dense.append(s)
    sd = lambda v: float(torch.tensor(v, dtype=torch.float64).std(unbiased=True))  # noqa: E731
    return sd(dead), sd(dense)


@pytest.mark.parametrize("limit", [sparsity.DENSE_BOOTSTRAP_LIMIT, 0])  # dense product, then sparse
def test_bootstrap_product_equals_replicate_loop(monkeypatch, limit):
    monkeypatch.setattr(sparsity, "DENSE_BOOTSTRAP_LIMIT", limit)
    n, k, f = 3000, 4, 4096  # about 3 firings per latent: dead and dense counts move between replicates
    g = torch.Generator().manual_seed(0)
    values = torch.rand(n, k, generator=g)
    values[values < 0.2] = 0  # some inactive slots
    indices = torch.randint(0, f, (n, k), generator=g)
    sequence = torch.arange(n) // 37
    sequence[sequence == 5] = 6  # a sequence without vectors
    acc = SparsityAccumulator(int(sequence.max()) + 1, f, dense_threshold=0.002)
    acc.update(Codes(values, indices, f), sequence)
    got = acc.bootstrap(150, torch.Generator().manual_seed(11))
    assert got == _loop_bootstrap(acc, 150, 11)
    assert got[0] > 0 and got[1] > 0  # both standard errors are informative here: the check can fail


def test_abs_sum_in_chunks_equals_one_shot():
    for shape in [(300, 70_000), (5, 3), (0, 4)]:
        values = torch.randn(*shape)
        assert torch.equal(Codes(values, None, shape[1]).abs_sum(), values.abs().to(torch.float64).sum(dim=-1))


def test_counts_in_row_blocks_equal_one_shot():
    for shape in [(300, 70_000), (5, 3), (0, 4)]:
        values = torch.relu(torch.randn(*shape) - 1)
        codes = Codes(values, None, shape[1])
        assert torch.equal(codes.active_count(), (values != 0).sum(dim=-1).to(torch.float64))
        assert torch.equal(codes.fire_counts(), (values != 0).sum(dim=0))


def test_check_tensor_finite_values_whose_sum_overflows_pass_and_nan_fails():
    """check_tensor sums chunks in the tensor's own dtype: an overflowing sum must fall back to the
    exact check (finite values pass), while a NaN/Inf still fails."""
    from sae_bench.checkpoints.safe_tensors import check_tensor
    from sae_bench.core.errors import CheckpointError

    big = torch.full((64, 32), 3e38)  # finite float32; their float32 sum is +Inf
    assert check_tensor("w.safetensors", "W", big, (64, 32)) is big
    for bad in (float("nan"), float("inf")):
        planted = big.clone()
        planted[40, 7] = bad
        with pytest.raises(CheckpointError, match="NaN" if bad != bad else "Inf"):
            check_tensor("w.safetensors", "W", planted, (64, 32))


@pytest.mark.parametrize("task_name", ["reconstruction", "sparsity"])
@pytest.mark.parametrize("ref", ["sparsify/tiny-gemma4-8x@layers.2", "ernos/tiny_sae.safetensors@pooled_final_norm"])
def test_encoding_in_row_chunks_gives_the_same_metrics(monkeypatch, task_name, ref):
    """A tiny encode budget forces many row chunks per batch; every number stays the same up to
    float32 rounding (a float32 GEMM's blocking, hence its rounding, depends on the row count)."""
    from sae_bench.activations import ActivationSource
    from sae_bench import load_checkpoint
    from sae_bench.core.context import EvalContext
    from sae_bench.inputs.corpus import load_corpus
    from sae_bench.fixtures import EVAL_CORPUS_PATH, SAES_DIR, TINY_MODEL_DIR
    from sae_bench.models import ModelAdapter
    from sae_bench.core.registry import discover, get_task
    from sae_bench.checkpoints.sae import SparseAutoencoder

    path, hookpoint = ref.split("@")
    model = ModelAdapter.load(TINY_MODEL_DIR)
    corpus = load_corpus(EVAL_CORPUS_PATH, model.tokenizer, seq_len=32, max_documents=12)
    sae = load_checkpoint(str(SAES_DIR / path), hookpoint=hookpoint)
    ctx = EvalContext(model=model, hookpoint=hookpoint, corpus=corpus, show_progress=False,
                      activations=ActivationSource(model, hookpoint, corpus, show_progress=False))
    discover()
    whole = get_task(task_name)().run(sae, ctx)
    monkeypatch.setattr(SparseAutoencoder, "ENCODE_BUDGET_BYTES", 7 * sae.d_sae * 4)  # 7 rows per encode
    assert len(sae.row_chunks(50)) == 8
    chunked = get_task(task_name)().run(sae, ctx)
    for name, metric in whole.metrics.items():
        assert chunked.metrics[name].value == pytest.approx(metric.value, rel=1e-6, abs=1e-9), name
        if metric.stderr is not None:
            assert chunked.metrics[name].stderr == pytest.approx(metric.stderr, rel=1e-5, abs=1e-9), name
    assert chunked.counts == whole.counts
