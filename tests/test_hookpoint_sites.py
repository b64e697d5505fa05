"""Layer sites (attn_out, mlp_in, mlp_out) and TransformerLens hook names resolve onto our hookpoints;
an unmappable name is one line listing the model's hookpoints."""

import pytest
import torch

import models_tiny
from sae_bench.core.errors import HookpointError
from sae_bench.models import Hookpoint
from sae_bench.models.hookpoints import translate_transformer_lens


@pytest.mark.parametrize("tl, ours", [
    ("blocks.2.hook_resid_post", "layers.2"), ("blocks.3.hook_resid_pre", "layers.2"),
    ("blocks.1.hook_mlp_out", "layers.1.mlp_out"), ("blocks.1.hook_attn_out", "layers.1.attn_out"),
    ("blocks.0.ln2.hook_normalized", "layers.0.mlp_in"), ("blocks.0.hook_mlp_in", "layers.0.mlp_in"),
    ("blocks.0.hook_resid_pre", None), ("blocks.1.attn.hook_z", None), ("layers.1", None)])
def test_transformer_lens_translation(tl, ours):
    assert translate_transformer_lens(tl) == ours


def test_gemma_sites_are_the_norm_modules_and_canonical(causal, conditional):
    for adapter, root in ((causal, "model.layers"), (conditional, "model.language_model.layers")):
        for name, module in (("attn_out", "post_attention_layernorm"), ("mlp_in", "pre_feedforward_layernorm"),
                             ("mlp_out", "post_feedforward_layernorm")):
            expected = Hookpoint(f"layers.1.{name}", f"{root}.1.{module}", 1)
            for spelling in (f"layers.1.{name}", f"layers.1.{module}", f"{root}.1.{module}",
                             f"language_model.layers.1.{name}"):
                assert adapter.resolve_hookpoint(spelling) == expected, spelling
    assert causal.resolve_hookpoint("blocks.2.hook_mlp_out").name == "layers.2.mlp_out"
    assert causal.resolve_hookpoint("blocks.2.hook_resid_post") == causal.resolve_hookpoint("layers.2")


def test_site_outputs_are_what_the_block_adds(causal):
    """mlp_out + the residual before the MLP = the layer output (Gemma 4 E2B-style per-layer input aside)."""
    ids = torch.tensor([[2, 40, 41, 42, 43]])
    mask = torch.ones_like(ids)
    with causal.capture("layers.1.mlp_in") as mlp_in, causal.capture("layers.1.mlp_out") as mlp_out, \
            causal.capture("layers.1.mlp") as mlp:
        causal.logits(ids, mask)
    layer = causal.model.model.layers[1]
    assert torch.allclose(layer.mlp(mlp_in.value), mlp.value)
    assert torch.allclose(layer.post_feedforward_layernorm(mlp.value), mlp_out.value)


def test_unmappable_names_list_the_hookpoints(causal):
    for bad in ("blocks.0.hook_resid_pre", "blocks.9.hook_mlp_out", "blocks.1.attn.hook_z", "layers.2.mlp_out2"):
        with pytest.raises(HookpointError) as info:
            causal.resolve_hookpoint(bad)
        message = str(info.value)
        assert "\n" not in message and message.startswith(bad + ":")
        assert "layers.0 ... layers.3" in message and "layers.N.mlp_out" in message


def test_other_architectures_alias_whole_modules():
    gpt2 = models_tiny.gpt2_adapter()
    assert gpt2.resolve_hookpoint("blocks.1.hook_mlp_out").module_path == "transformer.h.1.mlp"
    assert gpt2.resolve_hookpoint("layers.1.attn_out").module_path == "transformer.h.1.attn"
    with pytest.raises(HookpointError, match="hookpoints"):
        gpt2.resolve_hookpoint("blocks.1.ln2.hook_normalized")


def test_gemma3_has_the_same_sites():
    gemma3 = models_tiny.gemma3_adapter()
    root = gemma3.parts.layers_path
    for name, module in (("attn_out", "post_attention_layernorm"), ("mlp_in", "pre_feedforward_layernorm"),
                         ("mlp_out", "post_feedforward_layernorm")):
        assert gemma3.resolve_hookpoint(f"layers.1.{name}") == Hookpoint(f"layers.1.{name}", f"{root}.1.{module}", 1)
    assert gemma3.resolve_hookpoint("blocks.1.hook_mlp_out").name == "layers.1.mlp_out"
