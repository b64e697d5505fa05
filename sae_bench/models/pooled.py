"""The pooled final-norm embedding: one vector per text, as ErnOS trained its SAE on.

    pooled(b) = m_b / ||m_b||_2,   m_b = sum_t a[b,t] * n[b,t] / sum_t a[b,t]

n the output of the model's final norm module (hooked, never `hidden_states[-1]` by assumption),
a the attention mask (1 = real token; BOS included, padding excluded). Computed in float32.
Standardisation is the SAE's preprocessing, never done here. This module never runs the model.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sae_bench.core.errors import DataError


def pool_normed(final_norm: Tensor, attention_mask: Tensor) -> Tensor:
    """[B, T, d] final-norm output and [B, T] mask -> [B, d] float32 unit vectors."""
    mask = attention_mask.to(device=final_norm.device, dtype=torch.float32)
    counts = mask.sum(dim=1)
    if bool((counts == 0).any()):
        row = int((counts == 0).nonzero()[0, 0])
        raise DataError("attention_mask", f"sequence {row} has no attended token to pool")
    mean = (final_norm.float() * mask.unsqueeze(-1)).sum(dim=1) / counts.unsqueeze(-1)
    return torch.nn.functional.normalize(mean, dim=-1)
