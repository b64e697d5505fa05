"""ModelAdapter: loading, residual reads, capture/splice hooks, pooled final norm, final hidden, logits."""

import pytest
import torch

import models_tiny
from sae_bench.core.errors import InputError
from sae_bench.fixtures import TINY_MODEL_DIR
from sae_bench.fixtures import tiny_model
from sae_bench.models import ModelAdapter


@pytest.fixture(scope="module")
def batch():
    return models_tiny.padded_batch()


def _reference(adapter, ids, mask):
    with torch.no_grad():
        return adapter.model(input_ids=ids, attention_mask=mask, use_cache=False, output_hidden_states=True)


# ----------------------------------------------------------------------------- loading
def test_load_fixture_folder(causal):
    assert type(causal.model).__name__ == "Gemma4ForCausalLM"
    assert (causal.d_model, causal.n_layers, causal.vocab_size, causal.bos_token_id) == (64, 4, 512, 2)
    assert causal.dtype == torch.float32 and causal.device == torch.device("cpu")
    assert not causal.model.training
    assert not any(p.requires_grad for p in causal.model.parameters())
    assert causal.model_id == str(TINY_MODEL_DIR) and causal.revision is None


def test_load_conditional_generation_folder(tmp_path):
    models_tiny.conditional_model().save_pretrained(tmp_path)
    models_tiny.tokenizer().save_pretrained(tmp_path)
    adapter = ModelAdapter.load(tmp_path)
    assert type(adapter.model).__name__ == "Gemma4ForConditionalGeneration"
    assert adapter.resolve_hookpoint("language_model.layers.2").module_path == "model.language_model.layers.2"
    assert (adapter.d_model, adapter.n_layers, adapter.vocab_size) == (64, 4, 512)


@pytest.mark.parametrize("ref", ["/nonexistent/tiny-model", "./no-such-model-folder"])
def test_missing_folder_is_one_line_input_error(ref):
    with pytest.raises(InputError) as info:
        ModelAdapter.load(ref)
    assert str(info.value).startswith(ref) and "\n" not in str(info.value)


def test_offline_hub_id_not_cached_is_input_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError) as info:
        ModelAdapter.load("sae-bench-test/no-such-model-xyz")
    assert str(info.value).startswith("sae-bench-test/no-such-model-xyz:") and "\n" not in str(info.value)


def test_folder_without_model_is_input_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InputError, match=str(tmp_path)):
        ModelAdapter.load(tmp_path)


def test_a_plain_file_is_not_a_model():
    with pytest.raises(InputError, match="folder, a hub id or a .gguf file"):
        ModelAdapter.load(TINY_MODEL_DIR / "config.json")


def test_missing_gguf_file_is_input_error():
    with pytest.raises(InputError, match="GGUF"):
        ModelAdapter.load(TINY_MODEL_DIR, gguf_file="nope.gguf")


# ----------------------------------------------------------------------------- residual + final hidden
@pytest.mark.parametrize("which", ["causal", "conditional"])
def test_residual_final_hidden_and_logits_match_model(which, request, batch):
    adapter = request.getfixturevalue(which)
    ids, mask = batch
    ref = _reference(adapter, ids, mask)
    before = models_tiny.hook_count(adapter.model)  # transformers keeps its own output-recording hooks
    for layer in range(adapter.n_layers - 1):
        assert torch.equal(adapter.residual(f"layers.{layer}", ids, mask), ref.hidden_states[layer + 1])
    last = adapter.residual("layers.3", ids, mask)
    final = adapter.final_hidden(ids, mask)
    # hidden_states[-1] is already normed: it is the final norm output, not layer 3's output
    assert torch.equal(final, ref.hidden_states[-1])
    assert not torch.equal(last, ref.hidden_states[-1])
    assert torch.equal(adapter.model.model.norm(last) if which == "causal" else
                       adapter.model.model.language_model.norm(last), final)
    logits = adapter.logits(ids, mask)
    assert logits.dtype == torch.float32 and logits.shape == (3, ids.shape[1], 512)
    assert torch.equal(logits, ref.logits)
    assert logits.abs().max() < 30.0  # final_logit_softcapping
    assert torch.equal(adapter.logits_from_hidden(final[:, 5:9]), ref.logits[:, 5:9])
    assert models_tiny.hook_count(adapter.model) == before


def test_softcap_formula(causal):
    hidden = torch.randn(2, 64) * 50
    raw = causal.model.lm_head(hidden)
    assert torch.allclose(causal.logits_from_hidden(hidden), 30.0 * torch.tanh(raw / 30.0))


def test_residual_stops_after_the_hooked_layer(causal, batch):
    ids, mask = batch
    calls = []
    handles = [causal.model.model.layers[i].register_forward_hook(lambda *a, i=i: calls.append(i)) for i in range(4)]
    head = causal.model.lm_head.register_forward_hook(lambda *a: calls.append("lm_head"))
    try:
        causal.residual("layers.1", ids, mask)
        assert calls == [0, 1]
        calls.clear()
        causal.final_hidden(ids, mask)
        assert calls == [0, 1, 2, 3]  # the lm_head is not run either
    finally:
        for h in (*handles, head):
            h.remove()


def test_capture_records_the_output(causal, batch):
    ids, mask = batch
    before = models_tiny.hook_count(causal.model)
    with causal.capture("model.layers.2") as box:
        assert box.value is None
        causal.logits(ids, mask)
    assert torch.equal(box.value, causal.residual("layers.2", ids, mask))
    assert models_tiny.hook_count(causal.model) == before


# ----------------------------------------------------------------------------- splice
@pytest.mark.parametrize("which", ["causal", "conditional"])
def test_identity_splice_is_bit_identical(which, request, batch):
    adapter = request.getfixturevalue(which)
    ids, mask = batch
    clean = _reference(adapter, ids, mask).logits
    before = models_tiny.hook_count(adapter.model)
    for layer in range(adapter.n_layers):
        with adapter.splice(f"layers.{layer}", lambda h: h):
            spliced = adapter.model(input_ids=ids, attention_mask=mask, use_cache=False).logits
            assert torch.equal(adapter.logits(ids, mask), clean)
        assert torch.equal(spliced, clean)
        with adapter.splice(f"layers.{layer}", lambda h: h.clone()):
            assert torch.equal(adapter.logits(ids, mask), clean)
    assert models_tiny.hook_count(adapter.model) == before


def test_splice_changes_the_output_and_residual_sees_it(causal, batch):
    ids, mask = batch
    clean = causal.logits(ids, mask)
    with causal.splice("layers.1", lambda h: torch.zeros_like(h)):
        assert not torch.allclose(causal.logits(ids, mask), clean)
        assert torch.equal(causal.residual("layers.1", ids, mask), torch.zeros(3, ids.shape[1], 64))
    assert torch.equal(causal.logits(ids, mask), clean)


def test_hooks_removed_after_exceptions(causal, batch):
    ids, mask = batch
    before = models_tiny.hook_count(causal.model)
    with pytest.raises(KeyError):
        with causal.splice("layers.1", lambda h: h), causal.capture("layers.2"):
            raise KeyError("boom")
    assert models_tiny.hook_count(causal.model) == before

    def failing(_h):
        raise ZeroDivisionError("inside the forward")

    with pytest.raises(ZeroDivisionError):
        with causal.splice("layers.2", failing):
            causal.logits(ids, mask)
    assert models_tiny.hook_count(causal.model) == before
    with pytest.raises(ValueError, match="shape"):
        with causal.splice("layers.2", lambda h: h[:, :3]):
            causal.final_hidden(ids, mask)
    assert models_tiny.hook_count(causal.model) == before
    assert causal._active_splices == 0


# ----------------------------------------------------------------------------- pooled final norm
def test_pooled_final_norm_matches_fixture_formula(causal, batch):
    ids, mask = batch
    pooled = causal.pooled_final_norm(ids, mask)
    assert pooled.dtype == torch.float32 and pooled.shape == (3, 64)
    expected = torch.nn.functional.normalize(tiny_model.pooled_final_norm(causal.model, ids, mask), dim=-1)
    assert torch.allclose(pooled, expected, atol=1e-6)
    assert torch.allclose(pooled.norm(dim=-1), torch.ones(3))
    # padding is excluded: the padded row equals the same text alone, unpadded (BOS included)
    alone = causal.pooled_final_norm(ids[2:3, :20], mask[2:3, :20])
    assert torch.allclose(alone, pooled[2:3], atol=1e-6)
    manual = causal.final_hidden(ids[2:3, :20], mask[2:3, :20])[0].mean(0)
    assert torch.allclose(alone[0], manual / manual.norm(), atol=1e-6)


def test_pooled_rejects_empty_rows(causal, batch):
    ids, mask = batch
    mask = mask.clone()
    mask[1] = 0
    with pytest.raises(InputError, match="sequence 1"):
        causal.pooled_final_norm(ids, mask)


# ----------------------------------------------------------------------------- dtype and other models
def test_bfloat16_residual_stays_in_model_dtype(batch):
    ids, mask = batch
    adapter = ModelAdapter.load(TINY_MODEL_DIR, dtype=torch.bfloat16)
    assert adapter.dtype == torch.bfloat16
    assert adapter.residual("layers.1", ids, mask).dtype == torch.bfloat16
    assert adapter.logits(ids, mask).dtype == torch.float32
    assert adapter.pooled_final_norm(ids, mask).dtype == torch.float32


@pytest.mark.parametrize("make", [models_tiny.gpt2_adapter, models_tiny.llama_adapter])
def test_generic_causal_lm_identity_splice_and_residual(make, batch):
    adapter = make()
    ids, mask = batch
    ref = _reference(adapter, ids, mask)
    before = models_tiny.hook_count(adapter.model)
    assert torch.equal(adapter.residual("layers.0", ids, mask), ref.hidden_states[1])
    assert torch.equal(adapter.final_hidden(ids, mask), ref.hidden_states[-1])
    assert torch.equal(adapter.logits(ids, mask), ref.logits)
    with adapter.splice("layers.1", lambda h: h):
        assert torch.equal(adapter.logits(ids, mask), ref.logits)
    assert models_tiny.hook_count(adapter.model) == before
