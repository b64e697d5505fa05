"""Hookpoint names resolve exactly (no fnmatch) for both Gemma 4 classes and generic causal LMs."""

import pytest

import models_tiny
from sae_bench.core.errors import HookpointError
from sae_bench.models import POOLED_HOOKPOINT, Hookpoint


SPELLINGS = ["layers.{n}", "language_model.layers.{n}", "model.layers.{n}", "model.language_model.layers.{n}"]


@pytest.mark.parametrize("n", [0, 2, 3])
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_causal_lm_spellings(causal, spelling, n):
    hook = causal.resolve_hookpoint(spelling.format(n=n))
    assert hook == Hookpoint(name=f"layers.{n}", module_path=f"model.layers.{n}", layer=n)
    assert causal.module(hook) is causal.model.model.layers[n]


@pytest.mark.parametrize("n", [0, 3])
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_conditional_generation_spellings(conditional, spelling, n):
    hook = conditional.resolve_hookpoint(spelling.format(n=n))
    assert hook == Hookpoint(name=f"layers.{n}", module_path=f"model.language_model.layers.{n}", layer=n)
    assert conditional.module(hook) is conditional.model.model.language_model.layers[n]


def test_submodules_and_norm(causal, conditional):
    assert causal.resolve_hookpoint("layers.3.mlp") == Hookpoint("layers.3.mlp", "model.layers.3.mlp", 3)
    assert conditional.resolve_hookpoint("language_model.layers.1.self_attn").module_path == \
        "model.language_model.layers.1.self_attn"
    assert causal.resolve_hookpoint("norm").module_path == "model.norm"
    assert conditional.resolve_hookpoint("norm").module_path == "model.language_model.norm"
    assert causal.resolve_hookpoint("lm_head").module_path == "lm_head"


@pytest.mark.parametrize("bad", ["layers.*", "layers.9", "layers", "layers.1.", "Layers.1", " layers.1"])
def test_unknown_names_raise_one_line_with_close_matches(causal, bad):
    if bad == "layers":  # the ModuleList itself is a real module
        assert causal.resolve_hookpoint(bad).layer is None
        return
    with pytest.raises(HookpointError) as info:
        causal.resolve_hookpoint(bad)
    message = str(info.value)
    assert "\n" not in message and message.startswith(bad + ":")
    assert "close matches" in message


def test_fnmatch_pattern_is_not_a_glob(causal):
    with pytest.raises(HookpointError):
        causal.resolve_hookpoint("layers.?")


def test_pooled_name_is_not_a_module(causal):
    with pytest.raises(HookpointError, match="pooled"):
        causal.resolve_hookpoint(POOLED_HOOKPOINT)


def test_hookpoint_object_passes_through(causal):
    hook = causal.resolve_hookpoint("layers.1")
    assert causal.resolve_hookpoint(hook) is hook


def test_generic_causal_lms():
    gpt2 = models_tiny.gpt2_adapter()
    for name in ("layers.1", "h.1", "transformer.h.1"):
        assert gpt2.resolve_hookpoint(name) == Hookpoint("layers.1", "transformer.h.1", 1)
    assert gpt2.resolve_hookpoint("ln_f").module_path == "transformer.ln_f"
    assert (gpt2.n_layers, gpt2.d_model) == (3, 32)
    llama = models_tiny.llama_adapter()
    for name in ("layers.2", "model.layers.2", "language_model.layers.2"):
        assert llama.resolve_hookpoint(name) == Hookpoint("layers.2", "model.layers.2", 2)
