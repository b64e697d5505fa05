"""Hookpoint names -> modules of the model, by exact name only.

Accepted spellings of a decoder layer's output, for Gemma4ForCausalLM, Gemma4ForConditionalGeneration
and other causal LMs alike: "layers.N" (canonical), "language_model.layers.N" (sparsify names
relative to `base_model` of the multimodal class), "model.layers.N", "model.language_model.layers.N",
and the full module path as `named_modules()` spells it (e.g. GPT-2's "transformer.h.N" or "h.N").
Other modules are accepted the same way ("layers.3.mlp", "norm", full paths).

Never pattern-match (fnmatch "layers.*" also matches every submodule): a name that is not an exact
alias raises HookpointError listing close matches. This module never runs the model.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from torch import nn

from sae_bench.errors import HookpointError
from sae_bench.models.structure import ModelParts

POOLED_HOOKPOINT = "pooled_final_norm"  # the pooled final-norm source (not a module): one definition


@dataclass(frozen=True)
class Hookpoint:
    name: str  # canonical: "layers.N" for a decoder layer's output
    module_path: str  # full path in the HF module tree
    layer: int | None  # decoder layer index the module belongs to, None outside the layers


def _strip(path: str, prefix: str) -> str | None:
    if not prefix:
        return path
    if path == prefix:
        return ""
    return path[len(prefix) + 1:] if path.startswith(prefix + ".") else None


def build_aliases(model: nn.Module, parts: ModelParts) -> tuple[dict[str, Hookpoint], list[str]]:
    """({alias: Hookpoint}, canonical names in module order)."""
    layers_rel = _strip(parts.layers_path, parts.text_path)
    full_paths: dict[str, Hookpoint] = {}
    extra: dict[str, Hookpoint] = {}
    canonical_names: list[str] = []
    for path, _ in model.named_modules():
        if not path:
            continue
        in_text = _strip(path, parts.text_path)
        layer = None
        if in_text:
            canonical = in_text
            under_layers = _strip(in_text, layers_rel) if layers_rel else None
            if under_layers:
                canonical = "layers." + under_layers
                layer = int(under_layers.split(".", 1)[0])
            spellings = [canonical, in_text, "language_model." + canonical, "model." + canonical,
                         "model.language_model." + canonical]
        else:
            rel = _strip(path, parts.base_prefix)
            canonical = rel if rel else path
            spellings = [canonical]
        rel = _strip(path, parts.base_prefix)
        if rel:
            spellings.append(rel)
        hook = Hookpoint(name=canonical, module_path=path, layer=layer)
        full_paths[path] = hook
        canonical_names.append(canonical)
        for spelling in spellings:
            extra.setdefault(spelling, hook)
    aliases = dict(extra)
    aliases.update(full_paths)  # a real full path always wins over a derived spelling
    return aliases, canonical_names


def resolve(name: str, aliases: dict[str, Hookpoint], canonical_names: list[str], model_name: str) -> Hookpoint:
    if name == POOLED_HOOKPOINT:
        raise HookpointError(name, "the pooled final-norm source is not a module; use pooled_final_norm()")
    hook = aliases.get(name)
    if hook is not None:
        return hook
    close = difflib.get_close_matches(name, canonical_names, n=5, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(name, list(aliases), n=5, cutoff=0.6)
    hint = f"close matches: {', '.join(close)}" if close else "decoder layers are named layers.N"
    raise HookpointError(name, f"no such module in {model_name}; {hint}")
