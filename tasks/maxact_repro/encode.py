"""Activations of chosen SAE features at given residual vectors, without a dense [n, d_sae] matrix.

Shared by `build` and `repro` so both read a feature's activation the same way. Rows are encoded
in chunks of about 2^24 pre-activation values (so a 49,152-latent SAE never holds more than
~64 MB of them at once). This module never runs the language model and never selects examples.
"""

from __future__ import annotations

import torch
from torch import Tensor

CHUNK_VALUES = 1 << 24


@torch.no_grad()
def _chunk(sae, x: Tensor, features: Tensor, lookup: Tensor | None) -> Tensor:
    x_in, _ = sae.preprocess(x.to(device=sae.device, dtype=sae.dtype))
    codes = sae.encode(x_in)
    if codes.indices is None:
        return codes.values[:, features.to(codes.values.device)].float().cpu()
    indices, values = codes.indices.cpu(), codes.values.float().cpu()
    column = lookup[indices]
    valid = column >= 0
    rows = torch.arange(x.shape[0])[:, None].expand_as(column)
    out = torch.zeros(x.shape[0], features.numel())
    out[rows[valid], column[valid]] = values[valid]
    return out


@torch.no_grad()
def feature_activations(sae, x: Tensor, features: Tensor) -> Tensor:
    """[n, m] float32 activations of `features` (m distinct latent indices) for raw activations x [n, d].

    x goes through the SAE's own preprocessing and activation (TopK codes stay sparse: only the
    chosen latents are scattered out). Per-row preprocessing only: a batch-standardised SAE would
    depend on the chunking, and the per-token hookpoints this serves never use one."""
    features = features.to(torch.int64).cpu()
    n, m = x.shape[0], features.numel()
    if n == 0:
        return torch.zeros(0, m)
    lookup = None
    if sae.activation.kind == "topk":
        lookup = torch.full((sae.d_sae,), -1, dtype=torch.int64)
        lookup[features] = torch.arange(m)
    step = max(1, CHUNK_VALUES // max(sae.d_sae, m))
    return torch.cat([_chunk(sae, x[i:i + step], features, lookup) for i in range(0, n, step)])
