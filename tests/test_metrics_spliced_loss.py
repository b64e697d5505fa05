"""Spliced-loss metrics against hand-computed CE/KL on tiny logits, plus the task on the fixture model."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sae_bench.metrics.spliced_loss import (ROW_BLOCK, RunScorer, SplicedLossAccumulator, chunk_for_budget,
                                            chunked_ce_kl, next_token_targets, prediction_mask, score_runs,
                                            spliced_loss_metrics, token_ce_kl)


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


# ---------------------------------------------------------------- the task on the fixture model
import functools  # noqa: E402

from sae_bench.checkpoints.sae import ActivationSpec, SaeMetadata, SparseAutoencoder  # noqa: E402


@functools.lru_cache(maxsize=None)
def _fixture_context(hookpoint: str = "layers.2", n_docs: int = 24):
    from sae_bench.activations import ActivationSource
    from sae_bench.core.context import EvalContext
    from sae_bench.inputs.corpus import load_corpus
    from sae_bench.fixtures import EVAL_CORPUS_PATH, TINY_MODEL_DIR
    from sae_bench.models import ModelAdapter

    model = ModelAdapter.load(TINY_MODEL_DIR)
    corpus = load_corpus(EVAL_CORPUS_PATH, model.tokenizer, seq_len=64, max_documents=n_docs)
    source = ActivationSource(model, hookpoint, corpus, batch_size=8, show_progress=False)
    return EvalContext(model=model, hookpoint=hookpoint, corpus=corpus, activations=source,
                       batch_size=8, show_progress=False)


def _test_sae(W_enc, W_dec, d):
    F = W_enc.shape[0]
    meta = SaeMetadata(checkpoint_id="test", format="test", d_in=d, d_sae=F, activation=ActivationSpec("relu"))
    return SparseAutoencoder(W_enc, torch.zeros(F), W_dec, torch.zeros(d), meta)


def identity_sae(d):
    """relu(x) − relu(−x) = x exactly: W_enc = W_dec = [I; −I], no biases."""
    eye = torch.eye(d)
    both = torch.cat([eye, -eye])
    return _test_sae(both, both.clone(), d)


def zero_sae(d):
    """Decodes everything to exactly 0."""
    return _test_sae(torch.eye(d), torch.zeros(d, d), d)


def _run(sae, ctx, **config):
    from sae_bench.tasks.spliced_loss import SplicedLossTask

    task = SplicedLossTask(**config)
    assert task.skip_reason(sae, ctx) is None
    return task.run(sae, ctx)


def test_task_identity_and_zero_sae_on_fixture_model():
    ctx = _fixture_context()
    d = ctx.model.d_model
    out = _run(identity_sae(d), ctx, chunk_positions=37)
    m = out.metrics
    assert m["ce_loss_recovered"].value == 1.0
    assert m["kl_spliced"].value == 0.0 and m["delta_ce"].value == 0.0
    assert m["kl_score"].value == 1.0
    assert m["ce_zero"].value > m["ce_clean"].value and m["kl_zero"].value > 0
    assert out.counts["tokens"] == int(prediction_mask(ctx.corpus.keep_mask).sum())
    assert out.artifacts["per_sequence"]["delta_ce"] == [0.0] * ctx.corpus.n_sequences
    # the memoised baseline is reused: zero SAE gives exactly the zero-ablation run
    zero = _run(zero_sae(d), ctx).metrics
    assert zero["ce_loss_recovered"].value == 0.0 and zero["kl_score"].value == 0.0
    assert zero["ce_spliced"].value == m["ce_zero"].value
    assert sum(k.startswith("spliced_loss/baseline") for k in ctx.shared) == 1


def test_task_clean_ce_matches_full_forward_logits():
    ctx = _fixture_context()
    corpus = ctx.corpus
    ids, mask = corpus.input_ids, corpus.attention_mask
    with torch.no_grad():
        logits = ctx.model.logits(ids, mask)
    pred = prediction_mask(corpus.keep_mask)
    ce, _ = token_ce_kl(logits[pred], next_token_targets(ids)[pred])
    m = _run(identity_sae(ctx.model.d_model), ctx, mean_ablation=True).metrics
    assert m["ce_clean"].value == pytest.approx(float(ce.double().mean()), rel=1e-5)
    # mean-ablation: replace kept positions by the mean kept activation, full forward with a splice
    mu = ctx.activations.mean().float()
    keep = corpus.keep_mask

    def to_mean(x):
        out = x.clone()
        out[keep] = mu.to(x.dtype)
        return out

    with ctx.model.splice(ctx.hookpoint, to_mean), torch.no_grad():
        logits_mean = ctx.model.logits(ids, mask)
    ce_mean, _ = token_ce_kl(logits_mean[pred], next_token_targets(ids)[pred])
    assert m["ce_mean"].value == pytest.approx(float(ce_mean.double().mean()), rel=1e-4)


@pytest.mark.parametrize("ablate", ["kept", "all"])
def test_ablate_positions_matches_a_full_forward_that_replaces_those_positions(ablate):
    """zero/mean ablation replace the kept positions ("kept") or every position, BOS included ("all");
    checked against a full forward with a splice that does exactly that; the spliced run is the same.
    At layers.0: layer 1 computes its K/V from that residual (layers 2-3 of the tiny model share layer
    0/1 K/V, so a later hookpoint could not show what BOS does)."""
    ctx = _fixture_context("layers.0")
    corpus = ctx.corpus
    ids, mask = corpus.input_ids, corpus.attention_mask
    pred = prediction_mask(corpus.keep_mask)
    region = corpus.keep_mask if ablate == "kept" else torch.ones_like(corpus.keep_mask)
    mu = ctx.activations.mean().float()
    expected = {}
    for run, value in (("zero", torch.zeros_like(mu)), ("mean", mu)):
        def replace(x, value=value):
            out = x.clone()
            out[region] = value.to(x.dtype)
            return out

        with ctx.model.splice(ctx.hookpoint, replace), torch.no_grad():
            logits = ctx.model.logits(ids, mask)
        ce, _ = token_ce_kl(logits[pred], next_token_targets(ids)[pred])
        expected[run] = float(ce.double().mean())
    d = ctx.model.d_model
    m = _run(zero_sae(d), ctx, ablate_positions=ablate, mean_ablation=True).metrics
    assert m["ce_zero"].value == pytest.approx(expected["zero"], rel=1e-5)
    assert m["ce_mean"].value == pytest.approx(expected["mean"], rel=1e-4)
    kept = _run(zero_sae(d), ctx, mean_ablation=True).metrics  # default "kept"; its own memoised baseline
    assert m["ce_spliced"].value == kept["ce_spliced"].value and m["ce_clean"].value == kept["ce_clean"].value
    if ablate == "all":  # zeroing BOS too changes the ablated run on this model
        assert m["ce_zero"].value != kept["ce_zero"].value
        assert m["ce_loss_recovered"].value != kept["ce_loss_recovered"].value


def test_ablate_positions_is_in_the_config_hash_and_checked():
    from sae_bench.tasks.spliced_loss import SplicedLossConfig

    assert SplicedLossConfig().ablate_positions == "kept"
    assert SplicedLossConfig(ablate_positions="all").config_hash() != SplicedLossConfig().config_hash()
    assert SplicedLossConfig(ablate_positions="all").problems() == []
    assert "ablate_positions" in " ".join(SplicedLossConfig(ablate_positions="bos").problems())


def test_task_skips_pooled_source():
    from sae_bench.tasks.spliced_loss import SplicedLossTask

    class _Pooled:
        pooled = True

    class _Ctx:
        activations = _Pooled()
        is_pooled = True

    assert "pooled" in SplicedLossTask().skip_reason(None, _Ctx())


def test_task_numbers_do_not_depend_on_batching():
    import dataclasses

    ctx = _fixture_context()
    other = dataclasses.replace(ctx, batch_size=5, shared={})  # corpus batches cut across source shards
    sae = zero_sae(ctx.model.d_model)
    a, b = _run(sae, ctx, chunk_positions=64).metrics, _run(sae, other, chunk_positions=7).metrics
    for name in a:
        assert a[name].value == pytest.approx(b[name].value, rel=1e-5, abs=1e-7)


def test_kept_vectors_out_of_order_are_an_error():
    from sae_bench.core.context import ActivationBatch
    from sae_bench.core.errors import DataError
    from sae_bench.tasks.spliced_loss import iter_kept_by_batch

    ctx = _fixture_context()
    full = ctx.activations.all()

    class _Shuffled:
        d = full.x.shape[1]

        def batches(self, _n):
            yield ActivationBatch(full.x.flip(0), full.sequence.flip(0), full.position.flip(0))

    with pytest.raises(DataError, match="corpus order"):
        list(iter_kept_by_batch(_Shuffled(), ctx.corpus, 8))


def test_task_on_fixture_checkpoints_trained_beats_untrained():
    from sae_bench import load_checkpoint
    from sae_bench.fixtures import SAES_DIR

    ctx = _fixture_context()
    trained = _run(load_checkpoint(SAES_DIR / "sparsify" / "tiny-gemma4-8x", hookpoint="layers.2"), ctx).metrics
    untrained = _run(load_checkpoint(SAES_DIR / "sparsify" / "untrained-8x", hookpoint="layers.2"), ctx).metrics
    for m in (trained, untrained):
        assert all(v.value is not None and math.isfinite(v.value) and v.stderr is not None for v in m.values())
        assert m["kl_spliced"].value >= 0
    assert trained["ce_loss_recovered"].value > untrained["ce_loss_recovered"].value
    assert trained["kl_spliced"].value < untrained["kl_spliced"].value
    assert trained["ce_clean"] == untrained["ce_clean"]  # one memoised baseline


def test_permuting_latents_changes_no_spliced_metric():
    from sae_bench import load_checkpoint
    from sae_bench.fixtures import SAES_DIR

    ctx = _fixture_context()
    sae = load_checkpoint(SAES_DIR / "sparsify" / "tiny-gemma4-8x", hookpoint="layers.2")
    perm = torch.randperm(sae.d_sae, generator=torch.Generator().manual_seed(5))
    permuted = SparseAutoencoder(sae.W_enc[perm], sae.b_enc[perm], sae.W_dec[perm], sae.b_dec, sae.metadata)
    a, b = _run(sae, ctx).metrics, _run(permuted, ctx).metrics
    for name in a:
        assert b[name].value == pytest.approx(a[name].value, rel=1e-4, abs=1e-6)


def _linear_head(vocab: int, d: int, seed: int = 0):
    weight = torch.randn(vocab, d, generator=torch.Generator().manual_seed(seed))

    def logits_into(hidden, out=None):
        return torch.mm(hidden, weight.t(), out=out[:hidden.shape[0]]) if out is not None else hidden @ weight.t()
    return logits_into


def _float64_ce_kl(logits: torch.Tensor, targets: torch.Tensor, clean_logits: torch.Tensor):
    """The definitions written out in float64, independent of the module: CE = logsumexp − logit[target],
    KL = Σ p_c (ℓ_c − ℓ_run)."""
    lp = logits.double() - logits.double().logsumexp(-1, keepdim=True)
    lp_c = clean_logits.double() - clean_logits.double().logsumexp(-1, keepdim=True)
    return -lp[torch.arange(len(targets)), targets], (lp_c.exp() * (lp_c - lp)).sum(-1)


@pytest.mark.parametrize("chunk", [None, 1, 2, 16, 17, 64, 500])
def test_shared_clean_scoring_equals_an_independent_float64_computation(chunk):
    """Every run scored against one clean chunk gives the float64 definitions to float32 rounding:
    CE per row to 1e-6 relative; KL per row to 5e-6 (1 + KL) absolute (a difference of float32
    log-probabilities of order 10-50: token_ce_kl's own error is as large); KL summed over the rows
    (what the metrics sum) to 1e-6 relative, as token_ce_kl's."""
    vocab, d, n = 3001, 24, 203
    logits = _linear_head(vocab, d)
    gen = torch.Generator().manual_seed(1)
    clean = torch.randn(n, d, generator=gen)
    runs = {"near": clean + 0.2 * torch.randn(n, d, generator=gen), "far": clean + 2 * torch.randn(n, d, generator=gen),
            "zero": torch.zeros(n, d), 7: clean.clone()}
    targets = torch.randint(0, vocab, (n,), generator=gen)
    ce_clean, scored = score_runs(clean, targets, runs, logits, vocab, chunk=chunk)
    want_clean, _ = _float64_ce_kl(logits(clean), targets, logits(clean))
    assert torch.allclose(ce_clean.double(), want_clean, rtol=1e-6, atol=0)
    for name, hidden in runs.items():
        want_ce, want_kl = _float64_ce_kl(logits(hidden), targets, logits(clean))
        ce, kl = scored[name]
        assert torch.allclose(ce.double(), want_ce, rtol=1e-6, atol=0), name
        assert ((kl.double() - want_kl).abs() <= 5e-6 * (1 + want_kl)).all(), name
        if name != 7:
            assert abs(kl.double().sum() / want_kl.sum() - 1) < 1e-6, name
            ce_def, kl_def = token_ce_kl(logits(hidden), targets, torch.log_softmax(logits(clean), -1))
            assert abs(kl_def.double().sum() / want_kl.sum() - 1) < 1e-6, name  # the plain definition
    assert torch.equal(scored[7][1], torch.zeros(n))  # the clean run against itself: KL exactly 0


def test_runs_scored_for_ce_only_get_no_kl_and_the_same_ce():
    vocab, d, n = 500, 8, 40
    logits = _linear_head(vocab, d)
    gen = torch.Generator().manual_seed(3)
    clean, run = torch.randn(n, d, generator=gen), torch.randn(n, d, generator=gen)
    targets = torch.randint(0, vocab, (n,), generator=gen)
    scorer = RunScorer(logits, vocab, chunk=16)
    _, both = scorer.score(clean, targets, {"a": run, "b": run}, ce_only={"b"})
    assert both["b"][1] is None and torch.equal(both["a"][0], both["b"][0])


@pytest.mark.parametrize("in_place", [True, False])
def test_log_softmax_in_place_and_blockwise_equal_torch(in_place):
    from sae_bench.metrics.spliced_loss import _log_softmax_

    logits = torch.randn(37, 1000, generator=torch.Generator().manual_seed(2)) * 4
    want = torch.log_softmax(logits, -1)
    got = _log_softmax_(logits.clone(), torch.empty(ROW_BLOCK, 1000), in_place=in_place)
    assert torch.equal(got, want)


def test_run_scorer_reuses_its_buffers_and_sizes_chunks_from_the_budget():
    vocab, d = 700, 8
    scorer = RunScorer(_linear_head(vocab, d), vocab, chunk=32)
    x = torch.randn(50, d)
    scorer.score(x, torch.zeros(50, dtype=torch.int64), {"a": x})
    first = [b.data_ptr() for b in scorer._buffers]
    scorer.score(x[:7], torch.zeros(7, dtype=torch.int64), {"a": x[:7], "b": x[:7]})
    assert [b.data_ptr() for b in scorer._buffers] == first
    assert chunk_for_budget(262_144, 384 << 20) == 128  # three [128, V] float32 buffers = 384 MiB
    assert chunk_for_budget(262_144, 1) == ROW_BLOCK and chunk_for_budget(10, 1 << 30) == 4096


def _sae_collection(d):
    """Identity, zero and a noisy reconstruction (three distinct SAEs)."""
    both = torch.cat([torch.eye(d), -torch.eye(d)])
    return {"identity": identity_sae(d), "zero": zero_sae(d), "biased": _test_sae(both, 0.9 * both, d)}


def test_checkpoints_finished_together_equal_each_finished_alone():
    """The shared pass (clean log-probs once for the baseline and every checkpoint) changes no number."""
    from sae_bench.tasks.spliced_loss import SplicedLossTask

    saes = _sae_collection(_fixture_context().model.d_model)
    alone = {name: _run(sae, _fixture_context()).metrics for name, sae in saes.items()}
    ctx = _fixture_context()
    task = SplicedLossTask()
    together = task.finish([task.prepare(sae, ctx) for sae in saes.values()], ctx)
    for name, out in zip(saes, together):
        assert out.metrics == alone[name], name
    assert "ce_mean" not in together[0].metrics  # mean ablation is opt-in


def test_baseline_on_disk_cold_equals_warm_and_damage_is_recomputed(tmp_path):
    import dataclasses

    from sae_bench.activations import ActivationSource
    from sae_bench.tasks.spliced_loss import SplicedLossTask

    def cached_context():
        ctx = _fixture_context()
        source = ActivationSource(ctx.model, ctx.hookpoint, ctx.corpus, cache_dir=tmp_path, batch_size=8,
                                  show_progress=False)
        return dataclasses.replace(ctx, activations=source, shared={})

    saes = _sae_collection(cached_context().model.d_model)
    cold = _run(saes["biased"], cached_context()).metrics
    memo_files = list(tmp_path.rglob("memo/spliced_loss-baseline-*.safetensors"))
    assert len(memo_files) == 1
    ctx = cached_context()
    task = SplicedLossTask()
    assert task._baseline(ctx).from_disk  # the warm process computes no baseline forward
    assert task.run(saes["biased"], ctx).metrics == cold
    assert task.run(saes["zero"], ctx).metrics["ce_zero"] == cold["ce_zero"]
    # a flipped byte in the stored tensors: detected, recomputed, same numbers
    blob = bytearray(memo_files[0].read_bytes())
    blob[-3] ^= 0xFF
    memo_files[0].write_bytes(bytes(blob))
    ctx = cached_context()
    assert not SplicedLossTask()._baseline(ctx).from_disk
    assert _run(saes["biased"], ctx).metrics == cold
    # a truncated file: the same
    memo_files[0].write_bytes(memo_files[0].read_bytes()[:100])
    ctx = cached_context()
    assert _run(saes["biased"], ctx).metrics == cold
    # mean ablation on is another memo (another key), not a reuse of this one
    with_mean = _run(saes["biased"], cached_context(), mean_ablation=True).metrics
    assert len(list(tmp_path.rglob("memo/spliced_loss-baseline-*.safetensors"))) == 2
    assert {k: v for k, v in with_mean.items() if k != "ce_mean"} == cold


def test_task_on_gemma3_suffix_path_matches_full_forward_ce():
    """Gemma 3 (Gemma 3 270M's architecture) runs the suffix-only path; its CE equals full forwards."""
    import models_tiny
    from sae_bench.activations import ActivationSource
    from sae_bench.core.context import EvalContext
    from sae_bench.inputs.corpus import load_corpus
    from sae_bench.fixtures import EVAL_CORPUS_PATH

    model = models_tiny.gemma3_adapter()
    corpus = load_corpus(EVAL_CORPUS_PATH, model.tokenizer, seq_len=48, max_documents=12)
    source = ActivationSource(model, "layers.1", corpus, batch_size=4, show_progress=False)
    ctx = EvalContext(model=model, hookpoint="layers.1", corpus=corpus, activations=source, batch_size=4,
                      show_progress=False)
    sae = _sae_collection(model.d_model)["biased"]
    m = _run(sae, ctx).metrics
    ids, mask, keep = corpus.input_ids, corpus.attention_mask, corpus.keep_mask
    pred = prediction_mask(keep)
    targets = next_token_targets(ids)[pred]

    def splice(x):
        out = x.clone()
        out[keep] = sae.splice(x[keep].float()).to(x.dtype)
        return out

    with torch.no_grad():
        clean_logits = model.logits(ids, mask)[pred]
        with model.splice("layers.1", splice):
            spliced_logits = model.logits(ids, mask)[pred]
    ce_clean, _ = token_ce_kl(clean_logits, targets)
    ce, kl = token_ce_kl(spliced_logits, targets, torch.log_softmax(clean_logits, -1))
    assert m["ce_clean"].value == pytest.approx(float(ce_clean.double().mean()), rel=1e-6)
    assert m["ce_spliced"].value == pytest.approx(float(ce.double().mean()), rel=1e-6)
    assert m["kl_spliced"].value == pytest.approx(float(kl.double().mean()), rel=1e-5)
