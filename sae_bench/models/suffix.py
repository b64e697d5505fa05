"""Suffix-only forwards for Gemma 4 and Gemma 3: run only the decoder layers after a hookpoint, from a given residual.

Equal to the full forward with that residual spliced in at layer L, because it rebuilds exactly
what `Gemma4TextModel.forward` hands each later layer:
- the per-layer input embeddings (`get_per_layer_inputs` + `project_per_layer_inputs`, computed
  from the token ids alone; multimodal placeholder ids are replaced by pad as Gemma4Model does),
- the rotary position embeddings of each layer type (`rotary_emb(x, position_ids, layer_type)`),
- the causal and sliding-window masks (the same mask functions the model's own forward calls),
- KV sharing: the last `num_kv_shared_layers` layers ("reuse") attend with the keys/values of the
  last earlier layer of the same type ("store"). A store layer after L is recomputed in the suffix
  from the new residual; a store layer at or before L saw only the clean prefix, so its K/V come
  from a clean forward of the same ids. Clean K/V are collected for free from any clean forward of
  the adapter (the model's own `shared_kv_states` dict is passed in and kept, see `CleanKV`), so a
  task that runs the clean model first pays only for the suffix; otherwise a clean prefix forward
  that stops right after the last needed store layer computes them. No clean K/V are needed at all
  when every store layer a suffix layer reads from lies after L.

Measured: bit-identical (torch.equal) to the spliced full forward for every layer of the tiny
fixture (float32 and bfloat16, CPU, padded batch longer than the sliding window) and for an
E2B-shaped random model (35 layers, 20 KV-shared) in bfloat16 on an H100, where the suffix from
layer 20 took 62 ms against 144 ms for the full forward (B=8, T=1024, clean K/V cached).

Gemma 3 (`Gemma3TextModel`, e.g. Gemma 3 270M) needs less: no per-layer inputs and no KV sharing,
only the rotary embeddings and the causal / sliding-window masks of its forward
(`gemma3_suffix`); tested bit-identical to the spliced full forward at every layer.

Other architectures (and hookpoints inside a layer, or while another splice is active) fall back to
a full forward with the residual spliced in, which is correct but not cheaper. This module never
changes weights and never keeps anything but clean (unspliced) K/V.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn


def is_gemma4_text(text_model: nn.Module) -> bool:
    config = getattr(text_model, "config", None)
    return (type(text_model).__name__ == "Gemma4TextModel" and hasattr(config, "kv_sharing_modes")
            and getattr(config, "use_bidirectional_attention", None) != "all")


def is_gemma3_text(text_model: nn.Module) -> bool:
    config = getattr(text_model, "config", None)
    return (type(text_model).__name__ == "Gemma3TextModel" and hasattr(config, "layer_types")
            and not getattr(config, "use_bidirectional_attention", False))


def kv_store_layers(config) -> dict[str, int]:
    """{layer_type: index of the layer that stores the K/V its "reuse" layers read}."""
    return {config.layer_types[i]: i for i, mode in enumerate(config.kv_sharing_modes) if mode == "store"}


def needed_clean_kv(config, layer: int) -> dict[str, int]:
    """Store layers at or before `layer` whose K/V a reuse layer after `layer` reads: {type: index}."""
    stores = kv_store_layers(config)
    needed = {}
    for j in range(layer + 1, config.num_hidden_layers):
        kind = config.layer_types[j]
        if config.kv_sharing_modes[j] == "reuse" and stores.get(kind, 1 << 30) <= layer:
            needed[kind] = stores[kind]
    return needed


@dataclass
class _Entry:
    input_ids: Tensor
    attention_mask: Tensor
    kv: dict = field(default_factory=dict)


class CleanKV:
    """The shared K/V dicts of the last few clean forwards, keyed by (input_ids, attention_mask) content."""

    def __init__(self, size: int = 2):
        self.size = size
        self._entries: list[_Entry] = []

    def clear(self) -> None:
        self._entries.clear()

    def new_sink(self):
        from transformers.cache_utils import KVSharingDict

        return KVSharingDict()

    def keep(self, input_ids: Tensor, attention_mask: Tensor, sink) -> None:
        if not sink:
            return
        entry = self._find(input_ids, attention_mask)
        if entry is None:
            entry = _Entry(input_ids.detach().clone(), attention_mask.detach().clone())
            self._entries.append(entry)
            del self._entries[:-self.size]
        entry.kv.update(dict(sink))

    def get(self, input_ids: Tensor, attention_mask: Tensor, kinds) -> dict | None:
        entry = self._find(input_ids, attention_mask)
        if entry is None or any(k not in entry.kv for k in kinds):
            return None
        return {k: entry.kv[k] for k in kinds}

    def _find(self, input_ids: Tensor, attention_mask: Tensor) -> _Entry | None:
        for entry in self._entries:
            if (entry.input_ids.shape == input_ids.shape and entry.input_ids.device == input_ids.device
                    and torch.equal(entry.input_ids, input_ids) and torch.equal(entry.attention_mask, attention_mask)):
                return entry
        return None


def _multimodal_ids(model: nn.Module, input_ids: Tensor, pad_id: int) -> Tensor:
    """Gemma4Model replaces image/video/audio placeholder ids by pad before embedding them."""
    config = model.config
    ids = input_ids
    if getattr(config, "text_config", None) is None:
        return ids
    for name in ("image_token_id", "video_token_id", "audio_token_id"):
        token = getattr(config, name, None)
        if token is not None:
            ids = torch.where(ids == token, pad_id, ids)
    return ids


def _cache_kwarg(fn) -> str:
    """The name `fn` takes its KV cache under: `cache` in transformers >= 5.2x (`past_key_values` is
    deprecated there and warns on every call), `past_key_values` before."""
    import inspect

    try:
        return "cache" if "cache" in inspect.signature(fn).parameters else "past_key_values"
    except (TypeError, ValueError):
        return "past_key_values"


def layer_inputs(model: nn.Module, text: nn.Module, input_ids: Tensor, attention_mask: Tensor):
    """(per_layer_inputs or None, {type: (cos, sin)}, {type: mask}, position_ids) as the model's forward builds them."""
    from transformers.masking_utils import (create_causal_mask, create_masks_for_generate,
                                            create_sliding_window_causal_mask)

    config = text.config
    multimodal = text is not getattr(model, "base_model", model)
    ids = _multimodal_ids(model, input_ids, config.pad_token_id) if multimodal else input_ids
    embeds = text.embed_tokens(ids)
    per_layer = None
    if text.hidden_size_per_layer_input:
        per_layer = text.project_per_layer_inputs(embeds, text.get_per_layer_inputs(ids, embeds))
    position_ids = torch.arange(embeds.shape[1], device=embeds.device).unsqueeze(0)
    mask_kwargs = {"config": config, "inputs_embeds": embeds, "attention_mask": attention_mask,
                   _cache_kwarg(create_causal_mask): None, "position_ids": position_ids}
    masks = create_masks_for_generate(**mask_kwargs) if multimodal else attention_mask
    if not isinstance(masks, dict):
        masks = {"full_attention": create_causal_mask(**mask_kwargs),
                 "sliding_attention": create_sliding_window_causal_mask(**mask_kwargs)}
    rope = {kind: text.rotary_emb(embeds, position_ids, kind) for kind in set(config.layer_types)}
    return per_layer, rope, masks, position_ids


def gemma4_suffix(model: nn.Module, text: nn.Module, layer: int, resid: Tensor, input_ids: Tensor,
                  attention_mask: Tensor, clean_kv: dict) -> Tensor:
    """Layers layer+1 .. N-1 and the final norm of a Gemma 4 text model, from `resid` at layer `layer`."""
    from transformers.cache_utils import KVSharingDict

    config = text.config
    per_layer, rope, masks, position_ids = layer_inputs(model, text, input_ids, attention_mask)
    shared = KVSharingDict(dict(clean_kv))  # a copy: store layers in the suffix write into it
    hidden = resid
    for i in range(layer + 1, config.num_hidden_layers):
        kind = config.layer_types[i]
        hidden = text.layers[i](
            hidden,
            per_layer[:, :, i, :] if per_layer is not None else None,
            shared_kv_states=shared,
            position_embeddings=rope[kind],
            attention_mask=masks[kind],
            position_ids=position_ids,
            **{_cache_kwarg(text.layers[i].forward): None},
        )
    return text.norm(hidden)


def _no_cache_name(mask_fn) -> str:
    """The mask functions' cache argument: `cache` in newer transformers, `past_key_values` before."""
    import inspect

    return "cache" if "cache" in inspect.signature(mask_fn).parameters else "past_key_values"


def gemma3_suffix(text: nn.Module, layer: int, resid: Tensor, attention_mask: Tensor) -> Tensor:
    """Layers layer+1 .. N-1 and the final norm of a Gemma 3 text model, from `resid` at layer `layer`.

    The masks and rotary embeddings are built as `Gemma3TextModel.forward` builds them; they read
    only the shape, dtype and device of the embeddings, which `resid` shares."""
    from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask

    config = text.config
    position_ids = torch.arange(resid.shape[1], device=resid.device).unsqueeze(0)
    mask_kwargs = {"config": config, "inputs_embeds": resid, "attention_mask": attention_mask,
                   "position_ids": position_ids, _no_cache_name(create_causal_mask): None}
    masks = {"full_attention": create_causal_mask(**mask_kwargs),
             "sliding_attention": create_sliding_window_causal_mask(**mask_kwargs)}
    rope = {kind: text.rotary_emb(resid, position_ids, kind) for kind in set(config.layer_types)}
    hidden = resid
    for i in range(layer + 1, config.num_hidden_layers):
        kind = config.layer_types[i]
        hidden = text.layers[i](hidden, attention_mask=masks[kind], position_embeddings=rope[kind],
                                position_ids=position_ids)
    return text.norm(hidden)
