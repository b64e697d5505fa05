"""ErnOS gemma4-sae checkpoints: one safetensors file, optional `sae_config.json` and `feature_map.json`.

Tensor names, either set (never both):
  card: encoder.weight [F, D], encoder.bias [F], decoder.weight [D, F] or [F, D], decoder.bias [D] (optional)
  code: W_enc [F, D], b_enc [F], W_dec [D, F] or [F, D], b_dec [D] (optional)
The decoder's orientation is decided by shape; when F == D it is ambiguous and must be given as
decoder_layout="DF" (feature per column, ErnOS's own) or "FD". A missing decoder bias is zeros.
ErnOS encodes x @ W_enc.T + b_enc without subtracting b_dec (subtract_decoder_bias=False default).

Settings, by precedence options > sidecar sae_config.json > defaults: activation (relu | jumprelu
with a scalar threshold | topk with k; default relu, what the ErnOS code does at inference),
normalise (default l2) and standardise (default batch; "fixed" needs mean and std), as ErnOS
trained; hookpoint (default pooled_final_norm), source_model, decoder_layout, subtract_decoder_bias.
The feature map (option feature_map=path, else a sibling feature_map.json) becomes sae.feature_map.

Must never: guess an ambiguous orientation; copy the decoder (transposing stays a view).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from sae_bench.core.errors import CheckpointError
from sae_bench.inputs.input_files import read_json
from sae_bench.checkpoints.sae import ActivationSpec, InputPreprocessing, SparseAutoencoder

from sae_bench.checkpoints.assemble import build_sae, check_options
from sae_bench.checkpoints.feature_map import load_feature_map
from sae_bench.checkpoints.safe_tensors import check_tensor, open_safetensors, read_header, single_safetensors
from sae_bench.checkpoints.formats import CheckpointFormat

SIDECAR_NAME, FEATURE_MAP_NAME = "sae_config.json", "feature_map.json"
DEFAULT_HOOKPOINT = "pooled_final_norm"
NAME_SETS = {
    "card": ("encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias"),
    "code": ("W_enc", "b_enc", "W_dec", "b_dec"),
}
SETTINGS = ("activation", "k", "threshold", "normalise", "standardise", "mean", "std", "hookpoint", "source_model",
            "decoder_layout", "subtract_decoder_bias")
OPTIONS = tuple(s for s in SETTINGS if s != "hookpoint") + ("feature_map",)
DEFAULTS: dict[str, Any] = {"activation": "relu", "k": None, "threshold": None, "normalise": "l2",
                            "standardise": "batch", "mean": None, "std": None, "hookpoint": DEFAULT_HOOKPOINT,
                            "source_model": None, "decoder_layout": None, "subtract_decoder_bias": False}


def _is_number(value) -> bool:
    return type(value) in (int, float) and value == value and abs(value) != float("inf")


def _check_setting(source, key: str, value) -> None:
    """Type/range check of one setting; `source` names where it came from (sidecar file or option)."""
    if value is None:
        return
    choices = {"activation": ("relu", "jumprelu", "topk"), "normalise": ("none", "l2"),
               "standardise": ("none", "batch", "fixed"), "decoder_layout": ("DF", "FD")}
    if key in choices and value not in choices[key]:
        raise CheckpointError(source, f"{key} must be one of {', '.join(choices[key])}, got {value!r}")
    if key == "k" and not (type(value) is int and value >= 1):
        raise CheckpointError(source, f"k must be a positive integer, got {value!r}")
    if key in ("threshold", "mean") and not _is_number(value):
        raise CheckpointError(source, f"{key} must be a finite number, got {value!r}")
    if key == "std" and not (_is_number(value) and value > 0):
        raise CheckpointError(source, f"std must be a positive number, got {value!r}")
    if key in ("hookpoint", "source_model") and not (isinstance(value, str) and value):
        raise CheckpointError(source, f"{key} must be a non-empty string, got {value!r}")
    if key == "subtract_decoder_bias" and type(value) is not bool:
        raise CheckpointError(source, f"subtract_decoder_bias must be true/false, got {value!r}")


def read_sidecar(path: Path) -> dict[str, Any]:
    data = read_json(path, CheckpointError)
    if not isinstance(data, dict):
        raise CheckpointError(path, "sae_config.json must be a JSON object")
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise CheckpointError(path, f"unknown key {unknown[0]!r} (valid keys: {', '.join(SETTINGS)})")
    for key, value in data.items():
        _check_setting(path, key, value)
    return data


def resolve_settings(weights: Path, hookpoint: str | None, options: dict[str, Any]) -> tuple[dict, dict]:
    """(settings, where each came from: "option" | "sidecar" | "default"); None values do not override."""
    sidecar_path = weights.parent / SIDECAR_NAME
    sidecar = read_sidecar(sidecar_path) if sidecar_path.is_file() else {}
    settings, origin = dict(DEFAULTS), {key: "default" for key in DEFAULTS}
    layers = [(sidecar, "sidecar"), ({k: v for k, v in options.items() if k != "feature_map"}, "option"),
              ({"hookpoint": hookpoint}, "option")]
    for values, name in layers:
        for key, value in values.items():
            if value is not None:
                if name == "option":
                    _check_setting(f"option {key}", key, value)
                settings[key], origin[key] = value, name
    kind = settings["activation"]
    where = f"{weights} ({origin['activation']} activation={kind!r})"
    if kind == "topk" and settings["k"] is None:
        raise CheckpointError(where, "topk needs k (option k= or 'k' in sae_config.json)")
    if kind == "jumprelu" and settings["threshold"] is None:
        raise CheckpointError(where, "jumprelu needs a threshold (option threshold= or 'threshold' in sae_config.json)")
    if settings["standardise"] == "fixed" and (settings["mean"] is None or settings["std"] is None):
        raise CheckpointError(weights, "standardise='fixed' needs mean and std")
    return settings, {key: origin[key] for key in settings}


def _find_tensors(weights: Path, present: dict) -> tuple[str, dict[str, str]]:
    """Which name set the file uses: ("card"|"code", {role: tensor name})."""
    matches = [s for s, names in NAME_SETS.items() if any(n in present for n in names)]
    if len(matches) != 1:
        why = "mixes both ErnOS name sets" if matches else "has no ErnOS tensor names"
        raise CheckpointError(weights, f"{why}: expected encoder.weight/encoder.bias/decoder.weight[/decoder.bias] or "
                                       f"W_enc/b_enc/W_dec[/b_dec], found {', '.join(sorted(present)) or 'nothing'}")
    names = dict(zip(("W_enc", "b_enc", "W_dec", "b_dec"), NAME_SETS[matches[0]]))
    missing = [n for role, n in names.items() if role != "b_dec" and n not in present]
    if missing:
        raise CheckpointError(weights, f"missing tensor(s) {', '.join(missing)} (holds: {', '.join(sorted(present))})")
    surplus = sorted(set(present) - set(names.values()))
    if surplus:
        raise CheckpointError(weights, f"unexpected tensor(s) {', '.join(surplus)}")
    if names["b_dec"] not in present:
        del names["b_dec"]
    return matches[0], names


def load_ernos(ref: Path, *, hookpoint: str | None, checkpoint_id: str, device="cpu", **options) -> SparseAutoencoder:
    weights = ref
    check_options(weights, "ernos", options, OPTIONS)
    settings, origin = resolve_settings(weights, hookpoint, options)
    present = read_header(weights)
    name_set, names = _find_tensors(weights, present)
    tensors = open_safetensors(weights, list(names.values()))
    W_enc = tensors[names["W_enc"]]
    if W_enc.dim() != 2:
        raise CheckpointError(weights, f"tensor {names['W_enc']!r} must be 2-D [F, D], has shape {tuple(W_enc.shape)}")
    F, D = W_enc.shape
    check_tensor(weights, names["W_enc"], W_enc, (F, D))
    b_enc = check_tensor(weights, names["b_enc"], tensors[names["b_enc"]], (F,))
    dec = tensors[names["W_dec"]]
    layout = settings["decoder_layout"]
    if layout is None:
        if tuple(dec.shape) == (D, F) and F != D:
            layout = "DF"
        elif tuple(dec.shape) == (F, D) and F != D:
            layout = "FD"
        elif tuple(dec.shape) == (F, D):
            raise CheckpointError(weights, f"decoder {names['W_dec']!r} is square [{F}, {D}], so its orientation is "
                                           "ambiguous: give decoder_layout='DF' (feature per column) or 'FD'")
        else:
            raise CheckpointError(weights, f"tensor {names['W_dec']!r} has shape {tuple(dec.shape)}, expected "
                                           f"[{D}, {F}] or [{F}, {D}] for an encoder of shape [{F}, {D}]")
    check_tensor(weights, names["W_dec"], dec, (D, F) if layout == "DF" else (F, D))
    W_dec = dec.T if layout == "DF" else dec  # a view either way
    if "b_dec" in names:
        b_dec = check_tensor(weights, names["b_dec"], tensors[names["b_dec"]], (D,))
    else:
        b_dec = torch.zeros(D, dtype=W_enc.dtype)
    kind = settings["activation"]
    if kind == "topk" and settings["k"] > F:
        raise CheckpointError(weights, f"topk k={settings['k']} ({origin['k']}) exceeds the {F} latents")
    activation = ActivationSpec(kind, k=settings["k"] if kind == "topk" else None,
                                threshold=float(settings["threshold"]) if kind == "jumprelu" else None)
    prep = InputPreprocessing(settings["normalise"], settings["standardise"],
                              None if settings["mean"] is None else float(settings["mean"]),
                              None if settings["std"] is None else float(settings["std"]))
    map_path = options.get("feature_map")
    if map_path is not None and not isinstance(map_path, (str, os.PathLike)):
        raise CheckpointError("option feature_map", f"must be a path, got {map_path!r}")
    if map_path is None and (weights.parent / FEATURE_MAP_NAME).is_file():
        map_path = weights.parent / FEATURE_MAP_NAME
    feature_map = load_feature_map(map_path, d_sae=F) if map_path is not None else None
    extras = {"tensor_names": name_set, "decoder_layout": layout, "decoder_bias": "b_dec" in names,
              "settings_origin": origin}
    if feature_map is not None:
        extras["feature_map_path"] = str(feature_map.path)
    return build_sae(
        weights_path=weights, fmt="ernos", checkpoint_id=checkpoint_id, W_enc=W_enc, b_enc=b_enc, W_dec=W_dec,
        b_dec=b_dec, activation=activation, preprocessing=prep, hookpoint=settings["hookpoint"],
        source_model=settings["source_model"], subtract_decoder_bias=settings["subtract_decoder_bias"],
        feature_map=feature_map, extras=extras, device=device)


FORMAT = CheckpointFormat("ernos", load_ernos, order=40, expects="one .safetensors file",
                          is_root=lambda path: single_safetensors(path) is not None,
                          is_file=lambda path: path.suffix.lower() == ".safetensors",
                          hub_files=("*.safetensors", "sae_config.json", "feature_map.json"))
