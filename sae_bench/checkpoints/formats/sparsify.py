"""EleutherAI sparsify checkpoints: `<run>/<hookpoint>/cfg.json` + `sae.safetensors`.

Layout (as `SparseCoder.save_to_disk` writes it): cfg.json holds SparseCoderConfig's fields plus
d_in (activation, expansion_factor, normalize_decoder, num_latents (0 = d_in x expansion_factor),
k, multi_topk, skip_connection, transcode); tensors encoder.weight [F, D], encoder.bias [F],
W_dec [F, D], b_dec [D] and W_skip [D, D] with skip_connection.
Semantics: pre = relu((x - b_dec) @ W_enc.T + b_enc); TopK; x_hat = sum acts * W_dec[idx] + b_dec
(+ x @ W_skip.T). With multi_topk the SparseCoder's forward() returns the 4k output: evaluation
uses encode/decode (k latents), which is what this SAE does.
Transcoders (transcode=true) encode the hooked module's input without subtracting b_dec and predict
its output; they are supported at MLP hookpoints (`layers.N.mlp`): input site layers.N.mlp_in (what
the MLP reads), output site layers.N.mlp (what it returns).
The model a run was trained on is read from the run folder's `config.json` ("model"), if present.

The cfg is parsed here with the same field names, defaults and drop-extra-fields behaviour as
`sparsify.SparseCoderConfig` (importing sparsify costs seconds and prints to stdout; the tests
cross-check this parser and our encode/decode against sparsify's own).
Must never: import sparsify at load time; accept groupmax silently.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


from sae_bench.core.errors import CheckpointError
from sae_bench.inputs.input_files import read_json
from sae_bench.checkpoints.sae import ActivationSpec, SparseAutoencoder

from sae_bench.checkpoints.assemble import build_sae, check_options
from sae_bench.checkpoints.safe_tensors import load_exact_tensors
from sae_bench.checkpoints.formats import CheckpointFormat

CFG_NAME, WEIGHTS_NAME = "cfg.json", "sae.safetensors"
OPTIONS: tuple[str, ...] = ()


@dataclass(frozen=True)
class SparsifyConfig:
    """sparsify's SparseCoderConfig fields (same defaults) plus d_in, type-checked."""

    d_in: int
    activation: str = "topk"
    expansion_factor: int = 32
    normalize_decoder: bool = True
    num_latents: int = 0
    k: int = 32
    multi_topk: bool = False
    skip_connection: bool = False
    transcode: bool = False

    @property
    def d_sae(self) -> int:
        return self.num_latents or self.d_in * self.expansion_factor


def parse_config(path: Path) -> tuple[SparsifyConfig, dict[str, Any]]:
    """(config, extra keys sparsify would drop) from a cfg.json; any defect is a CheckpointError."""
    raw = read_json(path, CheckpointError)
    if not isinstance(raw, dict):
        raise CheckpointError(path, "cfg.json must be a JSON object")
    if "d_in" not in raw:
        raise CheckpointError(path, "cfg.json has no d_in")
    known = {f.name: f for f in fields(SparsifyConfig)}
    values, extras = {}, {}
    for key, value in raw.items():
        if key not in known:
            extras[key] = value
            continue
        expected = known[key].type
        if expected == "bool" and type(value) is not bool:
            raise CheckpointError(path, f"cfg.json {key} must be true/false, got {value!r}")
        if expected == "int" and type(value) is not int:
            raise CheckpointError(path, f"cfg.json {key} must be an integer, got {value!r}")
        if expected == "str" and not isinstance(value, str):
            raise CheckpointError(path, f"cfg.json {key} must be a string, got {value!r}")
        values[key] = value
    cfg = SparsifyConfig(**values)
    if cfg.d_in < 1:
        raise CheckpointError(path, f"cfg.json d_in must be positive, got {cfg.d_in}")
    if cfg.num_latents < 0 or cfg.expansion_factor < 1 and cfg.num_latents == 0:
        raise CheckpointError(path, "cfg.json needs num_latents > 0 or expansion_factor >= 1")
    if cfg.activation == "groupmax":
        raise CheckpointError(path, "activation 'groupmax' is not supported (only 'topk' sparsify checkpoints are)")
    if cfg.activation != "topk":
        raise CheckpointError(path, f"unknown activation {cfg.activation!r} (sparsify knows 'topk' and 'groupmax')")
    if not 1 <= cfg.k <= cfg.d_sae:
        raise CheckpointError(path, f"k={cfg.k} must be between 1 and the {cfg.d_sae} latents")
    return cfg, extras


def _is_hookpoint_folder(folder: Path) -> bool:
    return (folder / CFG_NAME).is_file() and (folder / WEIGHTS_NAME).is_file()


def hookpoint_folders(run: Path) -> list[str]:
    """Hookpoint subfolder names of a run folder (one level, sorted)."""
    if not run.is_dir():
        return []
    return sorted(p.name for p in run.iterdir() if p.is_dir() and _is_hookpoint_folder(p))


def _same_hookpoint(a: str, b: str) -> bool:
    """'layers.3' names the same place as 'language_model.layers.3' (names are relative to base_model)."""
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def resolve_folder(ref: Path, hookpoint: str | None) -> tuple[Path, str]:
    """(hookpoint folder, hookpoint name) for a run folder + hookpoint or a hookpoint folder itself."""
    if hookpoint is not None and _is_hookpoint_folder(ref / hookpoint):
        return ref / hookpoint, hookpoint.rsplit("/", 1)[-1]
    if _is_hookpoint_folder(ref):
        name = ref.name
        if hookpoint is not None and not _same_hookpoint(name, hookpoint.rsplit("/", 1)[-1]):
            raise CheckpointError(ref, f"is the sparsify folder of hookpoint {name!r}, not of the requested {hookpoint!r}")
        return ref, name
    found = hookpoint_folders(ref)
    if hookpoint is not None:
        listing = ", ".join(found[:10]) + (" ..." if len(found) > 10 else "") if found else "none"
        raise CheckpointError(ref, f"no sparsify hookpoint folder {hookpoint!r} with {CFG_NAME} + {WEIGHTS_NAME} "
                                   f"(hookpoints here: {listing})")
    if len(found) == 1:
        return ref / found[0], found[0]
    if found:
        raise CheckpointError(ref, f"is a sparsify run with {len(found)} hookpoints; pass hookpoint= one of "
                                   f"{', '.join(found[:10])}{' ...' if len(found) > 10 else ''}")
    raise CheckpointError(ref, f"not a sparsify checkpoint: no {CFG_NAME} + {WEIGHTS_NAME} here or in a subfolder")


def run_model_name(folder: Path) -> str | None:
    """The "model" of the sparsify run config (`config.json` in the run folder above the hookpoint folder)."""
    run_config = folder.parent / "config.json"
    if not run_config.is_file():
        return None
    data = read_json(run_config, CheckpointError)
    model = data.get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) and model else None


def transcoder_sites(folder: Path, name: str) -> tuple[str, str]:
    """(input hookpoint, output hookpoint) of a sparsify transcoder trained at module `name`."""
    if not name.rsplit(".", 1)[-1] == "mlp":
        raise CheckpointError(folder / CFG_NAME, f"transcode=true at hookpoint {name!r}: transcoders are supported "
                                                 "at MLP hookpoints (layers.N.mlp), where the input site is layers.N.mlp_in")
    return f"{name}_in", name


def load_sparsify(ref: Path, *, hookpoint: str | None, checkpoint_id: str, device="cpu",
                  **options) -> SparseAutoencoder:
    folder, name = resolve_folder(ref, hookpoint)
    check_options(folder, "sparsify", options, OPTIONS)
    cfg, unknown = parse_config(folder / CFG_NAME)
    weights = folder / WEIGHTS_NAME
    F, D = cfg.d_sae, cfg.d_in
    expected = {"encoder.weight": (F, D), "encoder.bias": (F,), "W_dec": (F, D), "b_dec": (D,)}
    if cfg.skip_connection:
        expected["W_skip"] = (D, D)
    tensors = load_exact_tensors(weights, expected,
                                 f"for this cfg.json (skip_connection={cfg.skip_connection})")
    extras = {"sparsify_cfg": {f.name: getattr(cfg, f.name) for f in fields(cfg)}, "folder": str(folder)}
    if unknown:
        extras["ignored_cfg_keys"] = sorted(unknown)
    if cfg.multi_topk:
        extras["note"] = "multi_topk: evaluated with encode/decode at k, not forward()'s 4k output"
    hook_in, hook_out = transcoder_sites(folder, name) if cfg.transcode else (name, None)
    return build_sae(
        weights_path=weights, fmt="sparsify", checkpoint_id=checkpoint_id, W_enc=tensors["encoder.weight"],
        b_enc=tensors["encoder.bias"], W_dec=tensors["W_dec"], b_dec=tensors["b_dec"],
        activation=ActivationSpec("topk", k=cfg.k), hookpoint=hook_in, output_hookpoint=hook_out,
        source_model=run_model_name(folder), subtract_decoder_bias=not cfg.transcode,
        W_skip=tensors.get("W_skip"), extras=extras, device=device)


FORMAT = CheckpointFormat("sparsify", load_sparsify, order=10, expects=f"{CFG_NAME} + {WEIGHTS_NAME}",
                          is_folder=_is_hookpoint_folder, is_root=lambda path: bool(hookpoint_folders(path)))
