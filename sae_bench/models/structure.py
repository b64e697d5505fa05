"""Where the parts of a causal language model live: decoder layers, final norm, lm_head, text config.

One place that knows how transformers lays out Gemma4ForCausalLM (`model.layers`),
Gemma4ForConditionalGeneration (`model.language_model.layers`) and other causal LMs (the
ModuleList of `num_hidden_layers` decoder blocks under `base_model`). It only inspects the module
tree; it never runs the model and never changes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

_NORM_NAMES = ("norm", "ln_f", "final_layernorm", "final_layer_norm", "final_norm")


@dataclass(frozen=True)
class ModelParts:
    """Paths are full module paths from the top model (as `named_modules()` spells them)."""

    base_prefix: str  # path of model.base_model ("model", "transformer", "" for a bare base model)
    text_path: str  # path of the text/decoder stack (Gemma4TextModel, LlamaModel, GPT2Model ...)
    layers_path: str  # path of the ModuleList of decoder layers
    norm_path: str  # path of the final norm
    text_config: object = field(repr=False, compare=False)
    n_layers: int

    def layer_path(self, index: int) -> str:
        return f"{self.layers_path}.{index}"


def _text_config(model: nn.Module):
    config = model.config
    getter = getattr(config, "get_text_config", None)
    return getter() if callable(getter) else config


def _path_of(model: nn.Module, target: nn.Module) -> str:
    for name, module in model.named_modules():
        if module is target:
            return name
    raise ValueError("module not found in model")


def find_parts(model: nn.Module) -> ModelParts:
    """Locate the decoder stack of `model`; raises ValueError when the model has none."""
    text_config = _text_config(model)
    n_layers = int(getattr(text_config, "num_hidden_layers", 0) or getattr(text_config, "n_layer", 0) or 0)
    base = getattr(model, "base_model", model)
    base_prefix = "" if base is model else _path_of(model, base)
    text = getattr(base, "language_model", None)
    text = text if isinstance(text, nn.Module) else base
    text_path = _path_of(model, text)

    layers = getattr(text, "layers", None)
    if not (isinstance(layers, nn.ModuleList) and len(layers) == n_layers):
        candidates = [(name, m) for name, m in text.named_modules()
                      if isinstance(m, nn.ModuleList) and len(m) == n_layers and n_layers > 0]
        if not candidates:
            raise ValueError(f"no list of {n_layers} decoder layers in {type(model).__name__}")
        name, layers = min(candidates, key=lambda c: c[0].count("."))
    layers_path = _path_of(model, layers)

    norm = next((getattr(text, n) for n in _NORM_NAMES if isinstance(getattr(text, n, None), nn.Module)), None)
    if norm is None:
        raise ValueError(f"no final norm found in {type(text).__name__} (looked for {', '.join(_NORM_NAMES)})")
    return ModelParts(base_prefix=base_prefix, text_path=text_path, layers_path=layers_path,
                      norm_path=_path_of(model, norm), text_config=text_config, n_layers=n_layers)


def execution_device(module: nn.Module) -> torch.device:
    """Where `module` computes: accelerate's execution device when `device_map` placed it (an
    offloaded module's weights sit on `meta` until it runs), else the device of its weights."""
    hook = getattr(module, "_hf_hook", None)
    hooks = getattr(hook, "hooks", None) or [hook]  # a SequentialHook holds several
    device = next((h.execution_device for h in hooks if getattr(h, "execution_device", None) is not None), None)
    if device is not None:
        return torch.device(f"cuda:{device}" if isinstance(device, int) else device)
    return next(module.parameters()).device


def first_device(model: nn.Module) -> torch.device:
    """Device of the input embeddings (where input ids must go), also under device_map="auto"."""
    return execution_device(model.get_input_embeddings())
