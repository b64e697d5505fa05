"""Gemma Scope 2 checkpoints: a folder holding `params.safetensors` and no config.

Layout (google/gemma-scope-2-<size>-<pt|it>): `<site>/layer_<L>_width_<W>_l0_<bucket>/params.safetensors`,
site one of resid_post, attn_out, mlp_out (SAEs) or transcoder; W like 16k, 65k, 262k, 1m;
bucket small | medium | big. Tensors: w_enc [D, F] (input-major), b_enc [F], threshold [F],
w_dec [F, D], b_dec [D] and, for transcoders, affine_skip_connection [D, D].
Semantics (the release's own tutorial): codes = relu(pre) * (pre > threshold), pre = x @ w_enc + b_enc
(no b_dec subtraction); x_hat = codes @ w_dec + b_dec (+ x @ affine_skip_connection). SAELens's
loader applies the skip matrix the same way (it stores the transpose as W_skip and multiplies by
W_skip.T). Negative thresholds are clamped to 0, which is what relu(pre) * (pre > threshold) computes.

Width, l0 and layer are read from the folder name (and the site from the folder or its parent), or
given as options: layer, site, width, l0, source_model. A folder's `config.json`, where the release
has one, is read and checked against the name and the tensors (`read_config`): its architecture
must be jump_relu, its hook point must name the folder's layer and site, its affine flag must match
the skip tensor; its model name (normalised as SAELens does: `google/` prefix, `-v3` -> `-3`, the
270m base without `-pt`) is the source model the model-mismatch guard checks. Hookpoints: resid_post -> layers.L, attn_out -> layers.L.attn_out, mlp_out ->
layers.L.mlp_out; a transcoder reads layers.L.mlp_in (the pre-MLP norm's output, what the MLP
reads) and predicts layers.L.mlp_out (the post-MLP norm's output, what the MLP adds).

Must never: guess a layer the name does not carry; copy w_enc (it becomes a transposed view).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from sae_bench.core.errors import CheckpointError
from sae_bench.checkpoints.sae import ActivationSpec, SparseAutoencoder

from sae_bench.checkpoints.assemble import build_sae, check_options, checkpoint_folder
from sae_bench.checkpoints.safe_tensors import load_exact_tensors, read_header
from sae_bench.checkpoints.formats import CheckpointFormat

WEIGHTS_NAME = "params.safetensors"
SITES = ("resid_post", "attn_out", "mlp_out", "transcoder")
OPTIONS = ("layer", "site", "width", "l0", "source_model")
L0_BUCKETS = ("small", "medium", "big")
_WIDTH_UNITS = {"k": 1000, "m": 1000 * 1000}


def is_gemma_scope_folder(folder: Path) -> bool:
    return (folder / WEIGHTS_NAME).is_file()


def parse_width(text: str) -> int | None:
    """'16k' -> 16384, '65k' -> 65536, '262k' -> 262144, '1m' -> 1048576 (the release rounds powers of
    two to k/m), '512' -> 512; None if it is not a width."""
    match = re.fullmatch(r"(\d+)([km]?)", text.lower())
    if not match or int(match.group(1)) == 0:
        return None
    if not match.group(2):
        return int(match.group(1))
    return 2 ** round(math.log2(int(match.group(1)) * _WIDTH_UNITS[match.group(2)]))


def parse_folder_name(folder: Path) -> dict[str, Any]:
    """What the names say: {"layer", "width", "l0", "site"} (absent keys: not in the names)."""
    name = folder.name
    found: dict[str, Any] = {}
    if match := re.search(r"(?:^|_)layer_(\d+)(?:_|$)", name):
        found["layer"] = int(match.group(1))
    if (match := re.search(r"(?:^|_)width_([0-9]+[kKmM]?)(?:_|$)", name)) and parse_width(match.group(1)):
        found["width"] = parse_width(match.group(1))
    if match := re.search(r"(?:^|_)l0_([A-Za-z0-9]+)(?:_|$)", name):
        found["l0"] = int(match.group(1)) if match.group(1).isdigit() else match.group(1)
    for part in (name, folder.parent.name):
        site = next((s for s in SITES if part == s or part.startswith(s + "_")), None)
        if site is not None:
            found["site"] = site
            break
    return found


CONFIG_NAME = "config.json"
# hf_hook_point_in of a config -> (layer, site); the transcoder reads the pre-MLP norm's output
_HOOK_SITES = ((r"\.output$", "resid_post"), (r"\.self_attn\.o_proj\.input$", "attn_out"),
               (r"\.pre_feedforward_layernorm\.output$", "transcoder"),
               (r"\.post_feedforward_layernorm\.output$", "mlp_out"))


def source_model_name(name: str) -> str:
    """A config's model name as the hub names the model (SAELens's normalisation)."""
    name = name if "/" in name else "google/" + name
    name = name.replace("-v3", "-3")
    return name.replace("-pt", "") if "270m" in name else name


def read_config(folder: Path) -> dict[str, Any]:
    """What the folder's config.json says, checked: {"layer", "site", "affine", "source_model"} (keys
    only for what it states); {} when there is no config.json."""
    from sae_bench.inputs.input_files import read_json

    path = folder / CONFIG_NAME
    if not path.is_file():
        return {}
    raw = read_json(path, CheckpointError, "Gemma Scope config")
    if not isinstance(raw, dict):
        raise CheckpointError(path, "a Gemma Scope config.json must be a JSON object")
    found: dict[str, Any] = {}
    if raw.get("architecture", "jump_relu") != "jump_relu":
        raise CheckpointError(path, f"architecture {raw.get('architecture')!r}: a Gemma Scope 2 SAE is jump_relu")
    hook = raw.get("hf_hook_point_in")
    if hook is not None:
        match = re.search(r"layers\.(\d+)(\..*)$", str(hook))
        site = next((s for pattern, s in _HOOK_SITES if match and re.search(pattern, match.group(2))), None)
        if match is None or site is None:
            raise CheckpointError(path, f"hf_hook_point_in {hook!r} names no layer output, attention output or "
                                        "MLP norm of a Gemma 3 layer")
        found["layer"], found["site"] = int(match.group(1)), site
    if "affine_connection" in raw:
        if not isinstance(raw["affine_connection"], bool):
            raise CheckpointError(path, f"affine_connection must be true or false, got {raw['affine_connection']!r}")
        found["affine"] = raw["affine_connection"]
    if isinstance(raw.get("model_name"), str) and raw["model_name"]:
        found["source_model"] = source_model_name(raw["model_name"])
    return found


def _check_config(folder: Path, config: dict[str, Any], settings: dict[str, Any]) -> None:
    """The config's layer and site agree with the folder name's (or the options')."""
    where = folder / CONFIG_NAME
    for key in ("layer", "site"):
        if key in config and settings.get(key) is not None and config[key] != settings[key]:
            raise CheckpointError(where, f"says {key} {config[key]!r} but the folder name (or option) says "
                                         f"{settings[key]!r}")


def _settings(folder: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Folder-name values overridden by explicit options, each checked."""
    settings = parse_folder_name(folder)
    for key, value in options.items():
        if value is not None:
            settings[key] = value
    where = f"{folder} (folder name {folder.name!r})"
    layer = settings.get("layer")
    if layer is None:
        raise CheckpointError(where, "the layer is not in the folder name (layer_<L>); give it as option layer=")
    if type(layer) is not int or layer < 0:
        raise CheckpointError(where, f"layer must be a non-negative integer, got {layer!r}")
    site = settings.get("site", "resid_post")
    if site not in SITES:
        raise CheckpointError(where, f"site must be one of {', '.join(SITES)}, got {site!r}")
    settings["site"] = site
    width = settings.get("width")
    if isinstance(width, str):
        width = parse_width(width)
    if width is not None and (type(width) is not int or width < 1):
        raise CheckpointError(where, f"width must be a positive integer (or like '16k'), got {settings['width']!r}")
    settings["width"] = width
    l0 = settings.get("l0")
    if l0 is not None and not (l0 in L0_BUCKETS or (type(l0) is int and l0 > 0)):
        raise CheckpointError(where, f"l0 must be one of {', '.join(L0_BUCKETS)} or a positive integer, got {l0!r}")
    return settings


def hookpoints_for(site: str, layer: int) -> tuple[str, str | None]:
    """(input hookpoint, output hookpoint or None) of a Gemma Scope 2 site at a layer."""
    if site == "transcoder":
        return f"layers.{layer}.mlp_in", f"layers.{layer}.mlp_out"
    return (f"layers.{layer}" if site == "resid_post" else f"layers.{layer}.{site}"), None


def resolve_folder(ref: Path, hookpoint: str | None) -> Path:
    return checkpoint_folder(ref, hookpoint, is_gemma_scope_folder, f"not a Gemma Scope 2 checkpoint: no {WEIGHTS_NAME}")


def load_gemma_scope(ref: Path, *, hookpoint: str | None, checkpoint_id: str, device="cpu",
                     **options) -> SparseAutoencoder:
    folder = resolve_folder(ref, hookpoint)
    check_options(folder, "gemma_scope", options, OPTIONS)
    config = read_config(folder)
    named = parse_folder_name(folder)
    _check_config(folder, config, {**named, **{k: v for k, v in options.items() if v is not None}})
    defaults = {k: config[k] for k in ("layer", "site", "source_model") if k in config and k not in named}
    settings = _settings(folder, {**defaults, **options})
    weights = folder / WEIGHTS_NAME
    present = read_header(weights)
    if "w_enc" not in present or len(present["w_enc"].shape) != 2:
        raise CheckpointError(weights, f"a Gemma Scope 2 file needs a 2-D 'w_enc' [d_in, d_sae] (holds: "
                                       f"{', '.join(sorted(present)) or 'nothing'})")
    D, F = present["w_enc"].shape
    if settings["width"] is not None and settings["width"] != F:
        raise CheckpointError(weights, f"the folder name says width {settings['width']} but w_enc has {F} latents")
    transcoder = settings["site"] == "transcoder"
    expected = {"w_enc": (D, F), "b_enc": (F,), "threshold": (F,), "w_dec": (F, D), "b_dec": (D,)}
    if transcoder and "affine_skip_connection" in present:
        expected["affine_skip_connection"] = (D, D)
    layout = f"for site {settings['site']!r}" + ("" if transcoder else " (only transcoders carry a skip connection)")
    if config.get("affine") is not None and transcoder and config["affine"] != ("affine_skip_connection" in present):
        raise CheckpointError(folder / CONFIG_NAME, f"affine_connection is {str(config['affine']).lower()} but "
                                                    f"{WEIGHTS_NAME} {'lacks' if config['affine'] else 'holds'} "
                                                    "affine_skip_connection")
    tensors = load_exact_tensors(weights, expected, layout)
    threshold = tensors["threshold"]
    extras: dict[str, Any] = {"gemma_scope_site": settings["site"], "layer": settings["layer"], "l0": settings.get("l0"),
                              "folder": str(folder)}
    if bool((threshold < 0).any()):
        extras["negative_thresholds_clamped"] = int((threshold < 0).sum())
        threshold = threshold.clamp_min(0)
    skip = tensors.get("affine_skip_connection")
    if skip is not None:
        extras["skip_connection"] = "x @ affine_skip_connection (the release's tutorial)"
    hook_in, hook_out = hookpoints_for(settings["site"], settings["layer"])
    return build_sae(
        weights_path=weights, fmt="gemma_scope", checkpoint_id=checkpoint_id, W_enc=tensors["w_enc"].T,
        b_enc=tensors["b_enc"], W_dec=tensors["w_dec"], b_dec=tensors["b_dec"], activation=ActivationSpec("jumprelu"),
        hookpoint=hook_in, output_hookpoint=hook_out, source_model=settings.get("source_model"),
        subtract_decoder_bias=False, threshold=threshold, W_skip=None if skip is None else skip.T, extras=extras,
        device=device)


FORMAT = CheckpointFormat("gemma_scope", load_gemma_scope, order=30, expects=WEIGHTS_NAME,
                          is_folder=is_gemma_scope_folder)
