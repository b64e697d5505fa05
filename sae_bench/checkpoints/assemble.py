"""Turn a loader's checked tensors into the one `SparseAutoencoder`, with full metadata.

For: the last step shared by every format loader: dtype agreement, the weights file's sha256,
`SaeMetadata`, and the move to the requested device. Loaders check names, shapes and finiteness
before calling `build_sae`.

Must never: copy a weight matrix on CPU (only small vectors are cast to the matrices' dtype);
know about any file format's layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sae_bench.core.errors import CheckpointError
from sae_bench.checkpoints.sae import ActivationSpec, InputPreprocessing, SaeMetadata, SparseAutoencoder

from .safe_tensors import sha256_file, torch_dtype_name


def check_options(source: str | Path, fmt: str, options: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """Unknown loader options are an error naming the valid ones for this format."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        valid = ", ".join(allowed) if allowed else "none"
        raise CheckpointError(source, f"unknown option {unknown[0]!r} for format {fmt!r} (valid options: {valid})")


def build_sae(*, weights_path: Path, fmt: str, checkpoint_id: str, W_enc: Tensor, b_enc: Tensor, W_dec: Tensor,
              b_dec: Tensor, activation: ActivationSpec, preprocessing: InputPreprocessing | None = None,
              hookpoint: str | None = None, output_hookpoint: str | None = None, source_model: str | None = None,
              subtract_decoder_bias: bool = True,
              threshold: Tensor | None = None, W_skip: Tensor | None = None, feature_map: Any = None,
              extras: dict[str, Any] | None = None, device: str | torch.device = "cpu") -> SparseAutoencoder:
    """A SparseAutoencoder sharing the given tensors; vectors are cast to the matrices' dtype."""
    if W_enc.dtype != W_dec.dtype:
        raise CheckpointError(weights_path, f"encoder is {torch_dtype_name(W_enc.dtype)} but decoder is "
                                            f"{torch_dtype_name(W_dec.dtype)}; mixed-precision checkpoints are not supported")
    dtype = W_enc.dtype
    b_enc, b_dec = b_enc.to(dtype), b_dec.to(dtype)
    threshold = None if threshold is None else threshold.to(dtype)
    W_skip = None if W_skip is None else W_skip.to(dtype)
    d_sae, d_in = W_enc.shape
    if activation.kind == "topk" and activation.k > d_sae:
        raise CheckpointError(weights_path, f"topk k={activation.k} exceeds the {d_sae} latents")
    metadata = SaeMetadata(
        checkpoint_id=checkpoint_id, format=fmt, d_in=int(d_in), d_sae=int(d_sae), activation=activation,
        preprocessing=preprocessing or InputPreprocessing(), hookpoint=hookpoint,
        output_hookpoint=output_hookpoint, source_model=source_model,
        weights_sha256=sha256_file(weights_path), weights_path=str(Path(weights_path).resolve()),
        dtype=torch_dtype_name(dtype), extras=dict(extras or {}))
    sae = SparseAutoencoder(W_enc, b_enc, W_dec, b_dec, metadata, subtract_decoder_bias=subtract_decoder_bias,
                            threshold=threshold, W_skip=W_skip, feature_map=feature_map)
    if torch.device(device) != torch.device("cpu"):
        sae.to(device)
    return sae


def checkpoint_folder(ref: Path, hookpoint: str | None, is_folder, missing: str) -> Path:
    """The folder holding one checkpoint: `ref/hookpoint` when that is one (`is_folder`), else `ref`
    itself; CheckpointError saying `missing` (what such a folder has) otherwise."""
    if hookpoint is not None and is_folder(ref / hookpoint):
        return ref / hookpoint
    if is_folder(ref):
        return ref
    raise CheckpointError(ref, f"{missing} here" + (f" or in {hookpoint}/" if hookpoint else ""))

