"""Suffix-only forwards equal the full forward with the residual spliced in (KV sharing, sliding masks, PLE)."""

import pytest
import torch

import models_tiny
from sae_bench.models import suffix as suffix_mod


@pytest.fixture(scope="module")
def batch():
    return models_tiny.padded_batch(seq_len=40)


def _spliced_reference(adapter, layer, resid, ids, mask):
    with adapter.splice(f"layers.{layer}", lambda _h: resid):
        return adapter.model(input_ids=ids, attention_mask=mask, use_cache=False,
                             output_hidden_states=True).hidden_states[-1]


def _perturbed(adapter, layer, ids, mask, seed):
    clean = adapter.residual(f"layers.{layer}", ids, mask)
    gen = torch.Generator().manual_seed(seed)
    return clean + clean.std() * torch.randn(clean.shape, generator=gen)


def test_needed_clean_kv_table(causal):
    config = causal.model.config
    assert config.kv_sharing_modes == ["store", "store", "reuse", "reuse"]
    assert suffix_mod.needed_clean_kv(config, 0) == {"sliding_attention": 0}
    assert suffix_mod.needed_clean_kv(config, 1) == {"sliding_attention": 0, "full_attention": 1}
    assert suffix_mod.needed_clean_kv(config, 2) == {"full_attention": 1}
    assert suffix_mod.needed_clean_kv(config, 3) == {}


@pytest.mark.parametrize("warm", [False, True], ids=["cold-cache", "warm-cache"])
@pytest.mark.parametrize("which", ["causal", "conditional"])
def test_suffix_equals_spliced_full_forward_at_every_layer(which, warm, request, batch):
    adapter = request.getfixturevalue(which)
    ids, mask = batch
    assert ids.shape[1] > adapter.model.config.get_text_config().sliding_window
    for layer in range(adapter.n_layers):
        resid = _perturbed(adapter, layer, ids, mask, seed=layer)
        expected = _spliced_reference(adapter, layer, resid, ids, mask)
        adapter.clear_cache()
        if warm:
            adapter.final_hidden(ids, mask)
        got = adapter.final_hidden_from(f"layers.{layer}", resid, ids, mask)
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-5, rtol=0), (layer, (got - expected).abs().max())
        # measured: bit-identical on CPU float32
        assert torch.equal(got, expected), (layer, (got - expected).abs().max())
        clean = adapter.residual(f"layers.{layer}", ids, mask)
        assert torch.equal(adapter.final_hidden_from(f"layers.{layer}", clean, ids, mask),
                           adapter.final_hidden(ids, mask))


def test_logits_from_suffix_hidden_match_spliced_logits(causal, batch):
    ids, mask = batch
    resid = _perturbed(causal, 1, ids, mask, seed=5)
    with causal.splice("layers.1", lambda _h: resid):
        expected = causal.model(input_ids=ids, attention_mask=mask, use_cache=False).logits
    got = causal.logits_from_hidden(causal.final_hidden_from("layers.1", resid, ids, mask))
    assert torch.allclose(got, expected, atol=1e-5, rtol=0)


def test_warm_cache_runs_only_the_suffix_and_cold_cache_only_the_needed_prefix(causal, batch):
    ids, mask = batch
    calls = []
    handles = [layer.register_forward_hook(lambda *a, i=i: calls.append(i))
               for i, layer in enumerate(causal.model.model.layers)]
    try:
        resid = _perturbed(causal, 2, ids, mask, seed=1)
        causal.clear_cache()
        calls.clear()
        causal.final_hidden_from("layers.2", resid, ids, mask)
        assert calls == [0, 1, 3]  # clean prefix up to layer 1 (full-attention K/V store), then the suffix
        calls.clear()
        causal.final_hidden_from("layers.2", resid, ids, mask)
        assert calls == [3]  # clean K/V reused: only the suffix
        calls.clear()
        causal.clear_cache()
        resid0 = _perturbed(causal, 0, ids, mask, seed=2)  # fills the sliding store (layer 0) only
        calls.clear()
        causal.final_hidden_from("layers.0", resid0, ids, mask)
        assert calls == [1, 2, 3]
    finally:
        for h in handles:
            h.remove()


def test_cache_is_keyed_by_token_content(causal, batch):
    ids, mask = batch
    other_ids, other_mask = models_tiny.padded_batch(seq_len=40, seed=7)
    causal.clear_cache()
    causal.final_hidden(ids, mask)  # clean K/V of the first batch
    resid = _perturbed(causal, 2, other_ids, other_mask, seed=3)
    expected = _spliced_reference(causal, 2, resid, other_ids, other_mask)
    assert torch.allclose(causal.final_hidden_from("layers.2", resid, other_ids, other_mask), expected, atol=1e-5)
    # same ids, different mask: a different key too
    short_mask = mask.clone()
    short_mask[0, 35:] = 0
    expected = _spliced_reference(causal, 2, resid[:, :, :].clone(), ids, short_mask)
    assert torch.allclose(causal.final_hidden_from("layers.2", resid, ids, short_mask), expected, atol=1e-5)


def test_spliced_runs_never_fill_the_clean_cache(causal, batch):
    ids, mask = batch
    causal.clear_cache()
    with causal.splice("layers.0", lambda h: h * 3):
        causal.final_hidden(ids, mask)
    resid = _perturbed(causal, 2, ids, mask, seed=4)
    assert torch.allclose(causal.final_hidden_from("layers.2", resid, ids, mask),
                          _spliced_reference(causal, 2, resid, ids, mask), atol=1e-5)


def test_the_check_can_fail_without_clean_kv_or_sliding_masks(causal, batch, monkeypatch):
    """Negative controls: K/V from the perturbed run, or full masks on sliding layers, give other results."""
    ids, mask = batch
    resid = _perturbed(causal, 1, ids, mask, seed=6)
    expected = _spliced_reference(causal, 1, resid, ids, mask)
    from transformers.cache_utils import KVSharingDict

    # K/V of store layers <= L depend only on the clean prefix (a splice at L's output cannot reach
    # them), so the ones that matter are the clean prefix's: K/V of other tokens must give another result
    wrong = KVSharingDict()
    other_ids, _ = models_tiny.padded_batch(seq_len=40, seed=11)
    causal.model(input_ids=other_ids, attention_mask=mask, use_cache=False, shared_kv_states=wrong)
    text = causal.model.model
    got = suffix_mod.gemma4_suffix(causal.model, text, 1, resid, ids, mask, dict(wrong))
    assert not torch.allclose(got, expected, atol=1e-3)
    right = suffix_mod.gemma4_suffix(causal.model, text, 1, resid, ids, mask,
                                     causal._clean_kv.get(ids, mask, ["sliding_attention", "full_attention"]))
    assert torch.equal(right, expected)

    import transformers.masking_utils as mu

    causal.clear_cache()
    resid0 = _perturbed(causal, 0, ids, mask, seed=8)
    expected0 = _spliced_reference(causal, 0, resid0, ids, mask)
    monkeypatch.setattr(mu, "create_sliding_window_causal_mask", mu.create_causal_mask)
    got0 = causal.final_hidden_from("layers.0", resid0, ids, mask)
    assert not torch.allclose(got0, expected0, atol=1e-3)


def test_fallbacks_are_spliced_full_forwards(causal, batch):
    ids, mask = batch
    resid = _perturbed(causal, 1, ids, mask, seed=9)
    # an active splice elsewhere: full forward with both splices
    with causal.splice("layers.0", lambda h: h * 0.5):
        expected = _spliced_reference(causal, 1, resid, ids, mask)
        got = causal.final_hidden_from("layers.1", resid, ids, mask)
    assert torch.equal(got, expected)
    # a hookpoint inside a layer
    mlp_out = causal.residual("layers.1.mlp", ids, mask) * 2
    with causal.splice("layers.1.mlp", lambda _h: mlp_out):
        expected = causal.final_hidden(ids, mask)
    assert torch.equal(causal.final_hidden_from("layers.1.mlp", mlp_out, ids, mask), expected)
    with pytest.raises(ValueError, match="shape"):
        causal.final_hidden_from("layers.1", resid[:, :5], ids, mask)


@pytest.mark.parametrize("make", [models_tiny.llama_adapter, models_tiny.gpt2_adapter])
def test_generic_causal_lm_final_hidden_from(make, batch):
    adapter = make()
    ids, mask = batch
    clean = adapter.residual("layers.1", ids, mask)
    resid = clean + torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    expected = _spliced_reference(adapter, 1, resid, ids, mask)
    assert torch.allclose(adapter.final_hidden_from("layers.1", resid, ids, mask), expected, atol=1e-5, rtol=0)


def test_bfloat16_suffix_matches_bfloat16_splice(batch):
    from sae_bench.fixtures import TINY_MODEL_DIR
    from sae_bench.models import ModelAdapter

    adapter = ModelAdapter.load(TINY_MODEL_DIR, dtype=torch.bfloat16)
    ids, mask = batch
    for layer in range(adapter.n_layers):
        resid = _perturbed(adapter, layer, ids, mask, seed=layer).to(torch.bfloat16)
        expected = _spliced_reference(adapter, layer, resid, ids, mask)
        got = adapter.final_hidden_from(f"layers.{layer}", resid.float(), ids, mask)  # upcast input is accepted
        assert got.dtype == torch.bfloat16
        assert torch.equal(got, expected), (layer, (got.float() - expected.float()).abs().max())


def test_gemma3_suffix_equals_spliced_full_forward_at_every_layer(batch):
    import models_tiny

    adapter = models_tiny.gemma3_adapter()
    assert adapter._suffix_applies(adapter.resolve_hookpoint("layers.1"))
    ids, mask = batch
    for layer in range(adapter.n_layers):
        resid = _perturbed(adapter, layer, ids, mask, seed=layer)
        expected = _spliced_reference(adapter, layer, resid, ids, mask)
        got = adapter.final_hidden_from(f"layers.{layer}", resid, ids, mask)
        assert torch.equal(got, expected), (layer, (got - expected).abs().max())
        clean = adapter.residual(f"layers.{layer}", ids, mask)
        assert torch.equal(adapter.final_hidden_from(f"layers.{layer}", clean, ids, mask),
                           adapter.final_hidden(ids, mask))


@pytest.mark.parametrize("softcap", [None, 30.0])
def test_logits_into_a_buffer_equal_fresh_logits(softcap):
    import models_tiny

    adapter = models_tiny.gemma3_adapter(softcap=softcap)
    hidden = torch.randn(7, adapter.d_model, generator=torch.Generator().manual_seed(1))
    buffer = torch.full((10, adapter.vocab_size), float("nan"))
    got = adapter.logits_from_hidden(hidden, out=buffer)
    assert got.data_ptr() == buffer.data_ptr() and got.shape == (7, adapter.vocab_size)
    assert torch.equal(got, adapter.logits_from_hidden(hidden))
