"""Hookpoint names -> modules of the model, by exact name only.

Accepted spellings of a decoder layer's output, for Gemma4ForCausalLM, Gemma4ForConditionalGeneration
and other causal LMs alike: "layers.N" (canonical), "language_model.layers.N" (sparsify names
relative to `base_model` of the multimodal class), "model.layers.N", "model.language_model.layers.N",
and the full module path as `named_modules()` spells it (e.g. GPT-2's "transformer.h.N" or "h.N").
Other modules are accepted the same way ("layers.3.mlp", "norm", full paths).

Sites inside a decoder layer (Gemma 3 and 4, whose blocks norm both sides of attention and MLP):
"layers.N.attn_out" (post_attention_layernorm's output, what attention adds to the residual),
"layers.N.mlp_in" (pre_feedforward_layernorm's output, the MLP's input) and "layers.N.mlp_out"
(post_feedforward_layernorm's output, what the MLP adds to the residual); these site names are the
canonical names of those modules. TransformerLens hook names map onto them:
blocks.N.hook_resid_post -> layers.N, blocks.N.hook_resid_pre -> layers.N-1 (N >= 1),
blocks.N.hook_attn_out -> attn_out, blocks.N.hook_mlp_out -> mlp_out, blocks.N.ln2.hook_normalized
and blocks.N.hook_mlp_in -> mlp_in. On other architectures attn_out/mlp_out alias the self_attn/mlp
modules and mlp_in does not exist.

Never pattern-match (fnmatch "layers.*" also matches every submodule): a name that is not an exact
alias raises HookpointError listing close matches. This module never runs the model.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from torch import nn

from sae_bench.core.errors import HookpointError
from sae_bench.models.structure import ModelParts

POOLED_HOOKPOINT = "pooled_final_norm"  # the pooled final-norm source (not a module): one definition

# Layer sites of Gemma-style blocks: site name -> the layer's submodule whose output it is.
GEMMA_SITES = {"attn_out": "post_attention_layernorm", "mlp_in": "pre_feedforward_layernorm",
               "mlp_out": "post_feedforward_layernorm"}
# The same sites on blocks without those norms (Llama, GPT-2 style): aliases of whole submodules.
PLAIN_SITES = {"attn_out": ("self_attn", "attn"), "mlp_out": ("mlp",)}
_TL_HOOK = re.compile(r"^blocks\.(\d+)\.(hook_resid_post|hook_resid_pre|hook_attn_out|hook_mlp_out|hook_mlp_in|"
                      r"ln2\.hook_normalized)$")
_TL_SITE = {"hook_resid_post": "", "hook_attn_out": ".attn_out", "hook_mlp_out": ".mlp_out", "hook_mlp_in": ".mlp_in",
            "ln2.hook_normalized": ".mlp_in"}


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
    _add_sites(aliases, canonical_names, parts.n_layers)
    return aliases, canonical_names


def _add_sites(aliases: dict[str, Hookpoint], canonical_names: list[str], n_layers: int) -> None:
    """layers.N.{attn_out,mlp_in,mlp_out}: canonical site names for Gemma-style blocks, aliases elsewhere."""
    for n in range(n_layers):
        prefix = f"layers.{n}"
        layer_hook = aliases.get(prefix)
        spellings = [k for k, v in aliases.items() if v is layer_hook] if layer_hook is not None else [prefix]
        if all(f"{prefix}.{module}" in aliases for module in GEMMA_SITES.values()):
            for site, module in GEMMA_SITES.items():
                old = aliases[f"{prefix}.{module}"]
                hook = Hookpoint(name=f"{prefix}.{site}", module_path=old.module_path, layer=n)
                for key, value in list(aliases.items()):
                    if value is old:
                        aliases[key] = hook
                for spelling in spellings:
                    aliases[f"{spelling}.{site}"] = hook
                canonical_names[canonical_names.index(old.name)] = hook.name
            continue
        for site, modules in PLAIN_SITES.items():
            found = next((aliases[f"{prefix}.{m}"] for m in modules if f"{prefix}.{m}" in aliases), None)
            if found is not None:
                for spelling in spellings:
                    aliases.setdefault(f"{spelling}.{site}", found)


def translate_transformer_lens(name: str) -> str | None:
    """Our spelling of a TransformerLens hook name (blocks.N.hook_*), None if it is not one we map."""
    match = _TL_HOOK.match(name)
    if match is None:
        return None
    layer, hook = int(match.group(1)), match.group(2)
    if hook == "hook_resid_pre":
        return f"layers.{layer - 1}" if layer > 0 else None
    return f"layers.{layer}{_TL_SITE[hook]}"


def describe_hookpoints(canonical_names: list[str], n_layers: int) -> str:
    """The model's hookpoints in one line: residual layers, the sites present, the pooled source."""
    if n_layers == 0:
        return POOLED_HOOKPOINT
    sites = [s for s in ("attn_out", "mlp_in", "mlp_out") if f"layers.0.{s}" in canonical_names]
    parts = [f"layers.0 ... layers.{n_layers - 1} (residual after each block)"]
    if sites:
        parts.append(", ".join(f"layers.N.{s}" for s in sites))
    parts.append("any submodule as layers.N.<path>")
    parts.append(POOLED_HOOKPOINT)
    return "; ".join(parts)


def resolve(name: str, aliases: dict[str, Hookpoint], canonical_names: list[str], model_name: str) -> Hookpoint:
    if name == POOLED_HOOKPOINT:
        raise HookpointError(name, "the pooled final-norm source is not a module; use pooled_final_norm()")
    hook = aliases.get(name)
    if hook is not None:
        return hook
    translated = translate_transformer_lens(name)
    if translated is not None and translated in aliases:
        return aliases[translated]
    n_layers = sum(1 for c in canonical_names if re.fullmatch(r"layers\.\d+", c))
    listing = f"its hookpoints: {describe_hookpoints(canonical_names, n_layers)}"
    if _TL_HOOK.match(name) or name.startswith("blocks."):
        raise HookpointError(name, f"this TransformerLens hook name has no module in {model_name}; {listing}")
    close = difflib.get_close_matches(name, canonical_names, n=5, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(name, list(aliases), n=5, cutoff=0.6)
    hint = f"close matches: {', '.join(close)}" if close else "decoder layers are named layers.N"
    raise HookpointError(name, f"no such module in {model_name}; {hint}; {listing}")
