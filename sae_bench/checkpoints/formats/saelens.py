"""SAELens checkpoints: a folder with `cfg.json` + `sae_weights.safetensors`.

Tensors: W_enc [D, F] (input-major, unlike sparsify), b_enc [F], W_dec [F, D], b_dec [D], and
threshold [F] (or log_threshold [F]) for jumprelu. Architectures: standard (relu, or topk through
the pre-6 activation_fn_str="topk" + activation_fn_kwargs {"k"}), topk (6.x: top-level "k"),
jumprelu. Both the flat pre-6.0 cfg and the 6.x cfg (hook_name/model_name possibly nested under
"metadata") are read. apply_b_dec_to_input decides whether b_dec is subtracted before encoding.
JumpReLU follows SAELens exactly: codes = relu(pre) * (pre > threshold), which equals
pre * (pre > max(threshold, 0)), so negative thresholds are clamped to 0.

Must never: copy W_enc (it becomes a transposed view); accept a normalisation, reshape or
scaling it cannot reproduce (expected_average_only_in's scale factor is not in the checkpoint).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sae_bench.core.errors import CheckpointError
from sae_bench.inputs.input_files import read_json
from sae_bench.checkpoints.sae import ActivationSpec, SparseAutoencoder

from sae_bench.checkpoints.assemble import build_sae, check_options, checkpoint_folder
from sae_bench.checkpoints.safe_tensors import load_exact_tensors, read_header
from sae_bench.checkpoints.formats import CheckpointFormat

CFG_NAME, WEIGHTS_NAME = "cfg.json", "sae_weights.safetensors"
ARCHITECTURES = ("standard", "topk", "jumprelu")
OPTIONS: tuple[str, ...] = ()


def is_saelens_folder(folder: Path) -> bool:
    return (folder / CFG_NAME).is_file() and (folder / WEIGHTS_NAME).is_file()


def _get(cfg: dict, path: Path, key: str, kind, default=..., nested: bool = False):
    """cfg[key] (or cfg["metadata"|"meta"][key] when nested), type-checked; `default` when absent."""
    value = cfg.get(key, ...)
    if value is ... and nested:
        for holder in ("metadata", "meta"):
            if isinstance(cfg.get(holder), dict) and key in cfg[holder]:
                value = cfg[holder][key]
                break
    if value is ...:
        if default is ...:
            raise CheckpointError(path, f"cfg.json has no {key!r}")
        return default
    ok = (type(value) is int) if kind is int else (type(value) is bool) if kind is bool else isinstance(value, kind)
    if not ok and not (default is None and value is None):
        raise CheckpointError(path, f"cfg.json {key!r} has the wrong type: {value!r}")
    return value


def parse_config(path: Path) -> dict[str, Any]:
    """Normalised SAELens settings: architecture, d_in, d_sae, activation (ActivationSpec),
    apply_b_dec_to_input, hook_name, model_name."""
    cfg = read_json(path, CheckpointError)
    if not isinstance(cfg, dict):
        raise CheckpointError(path, "cfg.json must be a JSON object")
    arch = _get(cfg, path, "architecture", str, "standard")
    if arch not in ARCHITECTURES:
        raise CheckpointError(path, f"SAELens architecture {arch!r} is not supported (supported: {', '.join(ARCHITECTURES)})")
    d_in, d_sae = _get(cfg, path, "d_in", int), _get(cfg, path, "d_sae", int)
    if d_in < 1 or d_sae < 1:
        raise CheckpointError(path, f"cfg.json d_in and d_sae must be positive, got {d_in} and {d_sae}")
    norm = _get(cfg, path, "normalize_activations", str, None)
    if norm not in (None, "none"):
        raise CheckpointError(path, f"normalize_activations={norm!r} is not supported (the scale it needs is not "
                                    "stored with the weights); only 'none' is")
    reshape = _get(cfg, path, "reshape_activations", str, None)
    if reshape not in (None, "none"):
        raise CheckpointError(path, f"reshape_activations={reshape!r} is not supported; only 'none' is")
    for flag in ("finetuning_scaling_factor", "rescale_acts_by_decoder_norm"):
        if _get(cfg, path, flag, bool, False):
            raise CheckpointError(path, f"{flag}=true is not supported")
    fn = _get(cfg, path, "activation_fn_str", str, None, nested=False)
    if fn is None:
        fn = _get(cfg, path, "activation_fn", str, None)
    fn_kwargs = _get(cfg, path, "activation_fn_kwargs", dict, None) or {}
    k = _get(cfg, path, "k", int, None)
    if k is None and "k" in fn_kwargs:
        k = fn_kwargs["k"]
        if type(k) is not int:
            raise CheckpointError(path, f"cfg.json activation_fn_kwargs.k must be an integer, got {k!r}")
    if arch == "topk" or (arch == "standard" and fn == "topk"):
        if k is None:
            raise CheckpointError(path, "a topk SAE needs k (top-level 'k' or activation_fn_kwargs.k)")
        if not 1 <= k <= d_sae:
            raise CheckpointError(path, f"topk k={k} must be between 1 and d_sae={d_sae}")
        activation = ActivationSpec("topk", k=k)
    elif arch == "jumprelu":
        activation = ActivationSpec("jumprelu")
    elif fn in (None, "relu"):
        activation = ActivationSpec("relu")
    else:
        raise CheckpointError(path, f"activation function {fn!r} is not supported (relu or topk)")
    return {"architecture": arch, "d_in": d_in, "d_sae": d_sae, "activation": activation,
            "apply_b_dec_to_input": _get(cfg, path, "apply_b_dec_to_input", bool, True),
            "hook_name": _get(cfg, path, "hook_name", str, None, nested=True),
            "model_name": _get(cfg, path, "model_name", str, None, nested=True)}


def resolve_folder(ref: Path, hookpoint: str | None) -> Path:
    return checkpoint_folder(ref, hookpoint, is_saelens_folder, f"not a SAELens checkpoint: no {CFG_NAME} + {WEIGHTS_NAME}")


def _hookpoint(ref: Path, folder: Path, given: str | None, hook_name: str | None) -> str | None:
    """Where the SAE reads: the cfg's hook_name when `given` only named the subfolder (a hub sae_id such
    as "gemma-4-e2b/btk-mat-layer-17-k-100"), else the explicitly given hookpoint."""
    if given is None or folder != ref:
        return hook_name
    return given.rsplit("/", 1)[-1]


def load_saelens(ref: Path, *, hookpoint: str | None, checkpoint_id: str, device="cpu",
                 **options) -> SparseAutoencoder:
    folder = resolve_folder(ref, hookpoint)
    check_options(folder, "saelens", options, OPTIONS)
    cfg = parse_config(folder / CFG_NAME)
    weights = folder / WEIGHTS_NAME
    F, D = cfg["d_sae"], cfg["d_in"]
    expected = {"W_enc": (D, F), "b_enc": (F,), "W_dec": (F, D), "b_dec": (D,)}
    present = read_header(weights)
    if cfg["architecture"] == "jumprelu":
        name = "threshold" if "threshold" in present else "log_threshold" if "log_threshold" in present else None
        if name is None:
            raise CheckpointError(weights, "a jumprelu SAE needs a 'threshold' (or 'log_threshold') tensor")
        expected[name] = (F,)
    tensors = load_exact_tensors(weights, expected, f"for architecture {cfg['architecture']!r}")
    threshold = None
    extras: dict[str, Any] = {"saelens_architecture": cfg["architecture"], "hook_name": cfg["hook_name"],
                              "folder": str(folder)}
    if "threshold" in tensors:
        threshold = tensors["threshold"]
    elif "log_threshold" in tensors:
        threshold = torch.exp(tensors["log_threshold"])
    if threshold is not None and bool((threshold < 0).any()):
        extras["negative_thresholds_clamped"] = int((threshold < 0).sum())
        threshold = threshold.clamp_min(0)
    return build_sae(
        weights_path=weights, fmt="saelens", checkpoint_id=checkpoint_id, W_enc=tensors["W_enc"].T,
        b_enc=tensors["b_enc"], W_dec=tensors["W_dec"], b_dec=tensors["b_dec"], activation=cfg["activation"],
        hookpoint=_hookpoint(ref, folder, hookpoint, cfg["hook_name"]), source_model=cfg["model_name"],
        subtract_decoder_bias=cfg["apply_b_dec_to_input"], threshold=threshold, extras=extras, device=device)


FORMAT = CheckpointFormat("saelens", load_saelens, order=20, expects=f"{CFG_NAME} + {WEIGHTS_NAME}",
                          is_folder=is_saelens_folder)
