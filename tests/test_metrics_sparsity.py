"""Sparsity metrics against hand-built codes whose answers are known in closed form."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sae_bench.metrics.reconstruction import reconstruction_metrics
from sae_bench.metrics.sparsity import SparsityAccumulator, log10_histogram, sparsity_metrics
from sae_bench.checkpoints.sae import ActivationSpec, Codes, SaeMetadata, SparseAutoencoder


def _dense(rows):
    values = torch.tensor(rows, dtype=torch.float32)
    return Codes(values, None, values.shape[1])


def test_hand_built_dense_codes():
    # 4 tokens, 5 latents: latent 0 fires on all, latent 1 on one, latents 3,4 never.
    codes = _dense([[1.0, 0.0, 0.0, 0.0, 0.0],
                    [2.0, -3.0, 0.0, 0.0, 0.0],
                    [1.0, 0.0, 0.5, 0.0, 0.0],
                    [1.0, 0.0, 0.0, 0.0, 0.0]])
    m = sparsity_metrics(codes, dense_threshold=0.3)
    assert m["l0"].value == pytest.approx((1 + 2 + 2 + 1) / 4)
    assert m["l1"].value == pytest.approx((1 + 5 + 1.5 + 1) / 4)
    assert m["dead_fraction"].value == pytest.approx(2 / 5)
    # frequencies: 1.0, 0.25, 0.25, 0, 0 -> only latent 0 is above 0.3
    assert m["dense_fraction"].value == pytest.approx(1 / 5)
    # threshold is strict: frequency 0.25 is not "more than 25%"
    assert sparsity_metrics(codes, dense_threshold=0.25)["dense_fraction"].value == pytest.approx(1 / 5)
    assert sparsity_metrics(codes, dense_threshold=0.2)["dense_fraction"].value == pytest.approx(3 / 5)


def test_l0_standard_error_is_sd_over_sqrt_n_per_sequence():
    codes = _dense([[1, 0, 0], [1, 1, 0], [1, 1, 1], [0, 0, 0]])
    m = sparsity_metrics(codes)
    per_token = torch.tensor([1.0, 2.0, 3.0, 0.0], dtype=torch.float64)
    assert m["l0"].value == pytest.approx(1.5)
    assert m["l0"].stderr == pytest.approx(float(per_token.std() / 2))


def test_topk_l0_equals_k_when_k_latents_are_positive_and_sparse_equals_dense():
    g = torch.Generator().manual_seed(0)
    n, F, k = 50, 40, 6
    values = torch.rand(n, k, generator=g) + 0.1
    indices = torch.stack([torch.randperm(F, generator=g)[:k] for _ in range(n)])
    sparse = Codes(values, indices, F)
    seq = torch.arange(n) // 5
    a = sparsity_metrics(sparse, seq, replicates=50, seed=3)
    b = sparsity_metrics(Codes(sparse.to_dense(), None, F), seq, replicates=50, seed=3)
    assert a["l0"].value == k and a["l0"].stderr == 0.0
    for name in a:
        assert a[name].value == pytest.approx(b[name].value, abs=1e-12)
        assert a[name].stderr == pytest.approx(b[name].stderr, abs=1e-12)


def test_topk_zeros_in_values_do_not_count():
    codes = Codes(torch.tensor([[2.0, 0.0], [0.0, 0.0]]), torch.tensor([[3, 1], [0, 2]]), 4)
    m = sparsity_metrics(codes)
    assert m["l0"].value == 0.5
    assert m["dead_fraction"].value == 0.75  # only latent 3 fired


def test_bootstrap_se_is_zero_for_identical_sequences_and_positive_otherwise():
    rows = [[1, 0, 0, 0], [0, 1, 0, 0]] * 6
    seq = torch.arange(12) // 2  # each sequence: one token on latent 0, one on latent 1
    m = sparsity_metrics(_dense(rows), seq, replicates=100)
    assert m["dead_fraction"].value == 0.5 and m["dead_fraction"].stderr == 0.0
    # Latent 2 fires in one sequence only: resampling sometimes drops it -> positive SE.
    rows2 = [r[:] for r in rows]
    rows2[0][2] = 1
    m2 = sparsity_metrics(_dense(rows2), seq, replicates=200)
    assert m2["dead_fraction"].value == 0.25
    assert m2["dead_fraction"].stderr > 0.0


def test_bootstrap_is_seeded():
    g = torch.Generator().manual_seed(1)
    codes = Codes(torch.relu(torch.randn(60, 30, generator=g) - 1.5), None, 30)
    seq = torch.arange(60) // 4
    a = sparsity_metrics(codes, seq, seed=11)
    b = sparsity_metrics(codes, seq, seed=11)
    assert a == b


def test_histogram_bins_and_dead_count():
    # T = 100 tokens: frequencies 1, 0.1, 0.01, 0 -> log10 0, -1, -2 and one dead.
    hist = log10_histogram(torch.tensor([100, 10, 1, 0]), 100, bins_per_decade=1)
    assert hist["log10_bin_edges"] == [-2.0, -1.0, 0.0]
    assert hist["counts"] == [1, 2]  # [-2,-1): 0.01 ; [-1, 0]: 0.1 and 1.0 (last bin closed)
    assert hist["dead"] == 1 and hist["alive"] == 3 and hist["tokens"] == 100
    assert sum(hist["counts"]) + hist["dead"] == 4


def test_no_tokens_gives_nulls():
    acc = SparsityAccumulator(3, 5)
    m = acc.finalize()
    assert all(v.value is None and v.reason for v in m.values())


def _sae(W_enc, b_enc, W_dec, b_dec, spec):
    F, D = W_enc.shape
    meta = SaeMetadata(checkpoint_id="t", format="test", d_in=D, d_sae=F, activation=spec)
    return SparseAutoencoder(W_enc, b_enc, W_dec, b_dec, meta)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["relu", "topk"]), st.integers(2, 24), st.integers(2, 6))
def test_permuting_latents_changes_no_metric_and_l0_bounded(seed, kind, F, D):
    g = torch.Generator().manual_seed(seed)
    W_enc, b_enc = torch.randn(F, D, generator=g), torch.randn(F, generator=g) - 0.5
    W_dec, b_dec = torch.randn(F, D, generator=g), torch.randn(D, generator=g)
    spec = ActivationSpec("topk", k=min(3, F)) if kind == "topk" else ActivationSpec("relu")
    perm = torch.randperm(F, generator=g)
    a = _sae(W_enc, b_enc, W_dec, b_dec, spec)
    b = _sae(W_enc[perm], b_enc[perm], W_dec[perm], b_dec, spec)
    x = torch.randn(30, D, generator=g)
    seq = torch.arange(30) // 3
    xa, ca = a.reconstruct(x)
    xb, cb = b.reconstruct(x)
    ma, mb = sparsity_metrics(ca, seq, replicates=30), sparsity_metrics(cb, seq, replicates=30)
    for name in ma:
        assert ma[name].value == pytest.approx(mb[name].value, rel=1e-5, abs=1e-9)
        if ma[name].stderr is not None:
            assert ma[name].stderr == pytest.approx(mb[name].stderr, rel=1e-4, abs=1e-6)
    ra, rb = reconstruction_metrics(x, xa, seq), reconstruction_metrics(x, xb, seq)
    for name in ra:
        if ra[name].value is not None:
            assert ra[name].value == pytest.approx(rb[name].value, rel=1e-4, abs=1e-6)
    assert 0 <= ma["l0"].value <= F
    assert 0 <= ma["dead_fraction"].value <= 1 and 0 <= ma["dense_fraction"].value <= 1
    assert not any(m.value is not None and math.isnan(m.value) for m in ma.values())


# ---------------------------------------------------------------- the task on fixture checkpoints
def _context(hookpoint):
    from sae_bench.activations import ActivationSource
    from sae_bench.core.context import EvalContext
    from sae_bench.inputs.corpus import load_corpus
    from sae_bench.fixtures import EVAL_CORPUS_PATH, TINY_MODEL_DIR
    from sae_bench.models import ModelAdapter

    model = ModelAdapter.load(TINY_MODEL_DIR)
    corpus = load_corpus(EVAL_CORPUS_PATH, model.tokenizer, seq_len=64, max_documents=40)
    source = ActivationSource(model, hookpoint, corpus, show_progress=False)
    return EvalContext(model=model, hookpoint=hookpoint, corpus=corpus, activations=source, show_progress=False)


def test_task_on_fixture_topk_checkpoint_never_densifies(monkeypatch):
    from sae_bench import load_checkpoint
    from sae_bench.fixtures import SAES_DIR
    from sae_bench.tasks.sparsity import SparsityTask

    ctx = _context("layers.2")
    sae = load_checkpoint(SAES_DIR / "sparsify" / "tiny-gemma4-8x", hookpoint="layers.2")
    k = sae.activation.k

    def no_dense(_self):
        raise AssertionError("TopK codes were densified")

    monkeypatch.setattr(Codes, "to_dense", no_dense)
    out = SparsityTask(batch_tokens=100).run(sae, ctx)
    m = out.metrics
    assert out.counts["tokens"] == ctx.corpus.n_kept  # BOS/pad/EOS excluded by the source
    assert 0 < m["l0"].value <= k and m["l0"].stderr is not None
    assert m["l1"].value > 0
    hist = out.artifacts["firing_histogram"]
    assert sum(hist["counts"]) + hist["dead"] == sae.d_sae == out.counts["latents"]
    assert m["dead_fraction"].value == pytest.approx(hist["dead"] / sae.d_sae)
    assert m["dead_fraction"].stderr is not None and m["dense_fraction"].stderr is not None
    # same numbers whatever the batching and the same seed
    again = SparsityTask(batch_tokens=4096).run(sae, ctx).metrics
    for name in m:
        assert again[name].value == pytest.approx(m[name].value, rel=1e-9)
        assert again[name].stderr == pytest.approx(m[name].stderr, rel=1e-9)


def test_task_on_fixture_ernos_pooled_checkpoint():
    from sae_bench import load_checkpoint
    from sae_bench.fixtures import SAES_DIR
    from sae_bench.tasks.sparsity import SparsityTask

    ctx = _context("pooled_final_norm")
    sae = load_checkpoint(SAES_DIR / "ernos" / "tiny_sae.safetensors")
    out = SparsityTask().run(sae, ctx)
    assert out.counts["tokens"] == ctx.corpus.n_sequences  # one pooled vector per text
    assert 0 <= out.metrics["l0"].value <= sae.d_sae
    assert any("pooled" in note for note in out.notes)


def test_identity_sae_reconstructs_exactly():
    d = 6
    both = torch.cat([torch.eye(d), -torch.eye(d)])
    sae = _sae(both, torch.zeros(2 * d), both.clone(), torch.zeros(d), ActivationSpec("relu"))
    x = torch.randn(50, d, generator=torch.Generator().manual_seed(0))
    x_hat, codes = sae.reconstruct(x)
    assert reconstruction_metrics(x, x_hat)["fvu"].value == 0.0
    assert sparsity_metrics(codes)["l0"].value == d  # exactly one of ±x_i is positive per coordinate
