"""The arithmetic a configuration must do, in multiply-adds, for the benchmarks' bounds.

A measured CPU ratio means little without the ratio of the work each side must do: this module
counts the multiply-adds of the decoder-layer forwards (q/k/v/o projections, gated MLP, attention
scores over the causal context), the lm_head products and the SAE's encode + decode, from the
model's config.json, for the independent reference (`tests/reference/peer_reference.py`: a forward
stopped after the site, then clean, spliced, zero- and mean-ablated full forwards with the lm_head
at every position, per checkpoint) and for the harness (one full forward per batch for the clean
run and the activations of every site, the ablated and spliced runs from their own site onwards,
the lm_head only at counted positions: clean once, per site zero and mean, per checkpoint spliced).
The SAE is counted once per checkpoint on both sides (the least either must do); norms, softmax
and elementwise work are not counted. Shares no code with `sae_bench`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Shape:
    layers: int
    layer_macs: float  # per token, one decoder layer (projections, MLP, attention scores)
    head_macs: float  # per token, lm_head
    d: int

    @classmethod
    def from_model(cls, model_dir: str | Path, seq_len: int) -> "Shape":
        cfg = json.loads((Path(model_dir) / "config.json").read_text())
        cfg = cfg.get("text_config", cfg)
        d, heads, kv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
        hd = cfg.get("head_dim") or d // heads
        context = min((seq_len + 1) / 2, cfg.get("sliding_window") or seq_len)  # mean causal context
        layer = d * heads * hd * 2 + d * kv * hd * 2 + 3 * d * cfg["intermediate_size"] + 2 * heads * hd * context
        return cls(cfg["num_hidden_layers"], float(layer), float(d * cfg["vocab_size"]), d)


def reference_macs(shape: Shape, layers_at: list[int], n_latents: int, tokens: int) -> float:
    """The reference run once per checkpoint at decoder layer `layers_at[i]` (0-based)."""
    total = 0.0
    for layer in layers_at:
        prefix = (layer + 1) * shape.layer_macs
        full = shape.layers * shape.layer_macs + shape.head_macs
        total += tokens * (prefix + 4 * full + 2 * shape.d * n_latents)
    return total


def harness_macs(shape: Shape, sites: dict[int, int], n_latents: int, tokens: int, counted: int, *,
                 cold: bool = True, mean_ablation: bool = True) -> float:
    """The harness on checkpoints {layer: how many}. cold: activations and baselines computed (one
    full forward per batch for every site, ablated suffixes per site); warm: both cached, only the
    spliced suffixes and the lm_head products (clean recomputed from the cached states) remain."""
    ablated = 2 if mean_ablation else 1
    suffix = {layer: (shape.layers - layer - 1) * shape.layer_macs for layer in sites}
    forwards = sum(n * suffix[layer] for layer, n in sites.items())
    heads = 1 + sum(sites.values())
    if cold:
        forwards += shape.layers * shape.layer_macs + sum(ablated * suffix[layer] for layer in sites)
        heads += ablated * len(sites)
    sae = sum(sites.values()) * 2 * shape.d * n_latents
    return tokens * (forwards + sae) + counted * heads * shape.head_macs
