"""Load any supported SAE checkpoint into the one `SparseAutoencoder` interface.

`load_checkpoint(ref, hookpoint=None, format=None, revision=None, device="cpu", **options)`:
`ref` is a local file/folder or a hub id "owner/name"; `format` one of sparsify | saelens |
gemma_scope | ernos or None to detect it from the file names. For hub ids only the hookpoint's subfolder is
downloaded (`format="ernos"` fetches the repo's top-level .safetensors and JSON files instead).

Modules, one job each: safe_tensors (safe reading, hashing), hub (ids, downloads), detect
(format detection), sparsify / saelens / gemma_scope / ernos (one format each), feature_map (ErnOS labels),
assemble (metadata + the SAE object).

Must never: unpickle anything (torch.load, pickle); copy weight matrices; let a bad input
escape as anything other than a sae_bench.core.errors.InputError.
"""

from __future__ import annotations

import os
from pathlib import Path

from sae_bench.core.errors import CheckpointError
from sae_bench.inputs.input_files import refuse_special
from sae_bench.checkpoints.sae import SparseAutoencoder

from .detect import check_format, detect_format, format_named, format_names
from .feature_map import FeatureLabel, FeatureMap, load_feature_map
from .formats import never
from .safe_tensors import single_safetensors
from .hub import check_hub_id, check_relative_path, download, looks_like_hub_id

__all__ = ["FORMATS", "FeatureLabel", "FeatureMap", "load_checkpoint", "load_feature_map", "detect_format"]

FORMATS = format_names()  # the known formats' names, in detection order


def _fetch(repo_id: str, hookpoint: str | None, fmt: str | None, revision: str | None, cache_dir) -> Path:
    """Local snapshot for a hub id, downloading only what the format + hookpoint need."""
    check_hub_id(repo_id)
    if fmt is not None and format_named(fmt).hub_files:
        return download(repo_id, allow_patterns=list(format_named(fmt).hub_files), revision=revision,
                        cache_dir=cache_dir)
    if hookpoint is None:
        single = [f"format={f.name!r}" for f in map(format_named, FORMATS) if f.hub_files]
        raise CheckpointError(repo_id, "a hub checkpoint needs hookpoint= (the subfolder to download), or "
                                       f"{' or '.join(single)} for a single-file repo")
    snapshot = download(repo_id, allow_patterns=[f"{hookpoint}/*"], revision=revision, cache_dir=cache_dir)
    if not (snapshot / hookpoint).is_dir():
        raise CheckpointError(f"{repo_id}@{revision or 'main'}", f"has no files under {hookpoint}/")
    return snapshot


def load_checkpoint(ref: str | os.PathLike, *, hookpoint: str | None = None, format: str | None = None,
                    revision: str | None = None, device: str = "cpu", dtype=None, **options) -> SparseAutoencoder:
    """Load an SAE checkpoint (local path or hub id) as a SparseAutoencoder.

    hookpoint: the sparsify/saelens/gemma_scope subfolder (it may carry the run folder, "run/layers.3", or
    a hub sae_id, "gemma-4-e2b/btk-mat-layer-17-k-100"), or for ErnOS the activation site to record
    (default pooled_final_norm). options: format-specific (Gemma Scope 2: layer, site, width, l0,
    source_model; ErnOS: activation, k, threshold, normalise, standardise, mean, std, source_model,
    decoder_layout, subtract_decoder_bias, feature_map); `cache_dir` for hub downloads. dtype: a
    torch dtype to cast the weights to; they are then memory-mapped on CPU first and cast while
    moving, so the file-dtype copy never sits on the device beside the cast one.
    """
    source = os.fspath(ref) if isinstance(ref, (str, os.PathLike)) else repr(ref)
    if not isinstance(ref, (str, os.PathLike)) or not source:
        raise CheckpointError(source, "a checkpoint reference must be a path or a hub id")
    check_format(format, source)
    if hookpoint is not None:
        check_relative_path(hookpoint, "hookpoint", source)
    cache_dir = options.pop("cache_dir", None)
    path = Path(source).expanduser()
    refuse_special(path, CheckpointError)
    if path.exists():
        checkpoint_id = source
    elif isinstance(ref, str) and looks_like_hub_id(ref):
        checkpoint_id = ref if revision is None else f"{ref}@{revision}"
        path = _fetch(ref, hookpoint, format, revision, cache_dir)
    elif isinstance(ref, str) and "/" in ref and not ref.startswith(("/", "~")):
        check_hub_id(ref)  # not a local path; as a hub id it has forbidden parts: this raises and says why
        raise CheckpointError(source, "not a valid hub id")  # pragma: no cover - check_hub_id raised already
    else:
        raise CheckpointError(source, "no such file or folder (and not a hub id 'owner/name')")
    fmt = format or detect_format(path, hookpoint)
    if format_named(fmt).is_file is not never and path.is_dir():  # a single-file format given its folder
        single = single_safetensors(path)
        if single is None:
            raise CheckpointError(path, f"format {fmt!r} needs one .safetensors file; this folder has "
                                        f"{len(list(path.glob('*.safetensors')))}")
        path = single
    sae = format_named(fmt).load(path, hookpoint=hookpoint, checkpoint_id=checkpoint_id,
                       device=device if dtype is None else "cpu", **options)
    if revision is not None:
        sae.metadata.extras["revision"] = revision
    return sae if dtype is None else sae.to(device=device, dtype=dtype)
