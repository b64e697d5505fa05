"""Activations of chosen SAE features at given residual vectors, without a dense [n, d_sae] matrix.

Shared by `build` and `repro` so both read a feature's activation the same way. This module never
runs the language model and never selects examples.
"""

from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def feature_activations(sae, x: Tensor, features: Tensor) -> Tensor:
    """[n, m] float32 activations of `features` (m distinct latent indices) for raw activations x [n, d].

    x goes through the SAE's own preprocessing and activation (TopK codes stay sparse: only the
    chosen latents are scattered out)."""
    features = features.to(torch.int64).cpu()
    n, m = x.shape[0], features.numel()
    if n == 0:
        return torch.zeros(0, m)
    x_in, _ = sae.preprocess(x.to(device=sae.device, dtype=sae.dtype))
    codes = sae.encode(x_in)
    if codes.indices is None:
        return codes.values[:, features.to(codes.values.device)].float().cpu()
    lookup = torch.full((sae.d_sae,), -1, dtype=torch.int64)
    lookup[features] = torch.arange(m)
    indices, values = codes.indices.cpu(), codes.values.float().cpu()
    column = lookup[indices]
    valid = column >= 0
    rows = torch.arange(n)[:, None].expand_as(column)
    out = torch.zeros(n, m)
    out[rows[valid], column[valid]] = values[valid]
    return out
