"""The dtype an SAE's weights are cast to for evaluation (the one dtype policy of a run)."""

from __future__ import annotations

import torch

from sae_bench.activations.source import POOLED_HOOKPOINT


def sae_compute_dtype(device: str, model_dtype: torch.dtype, hookpoint: str) -> torch.dtype | None:
    """The dtype the SAE's weights are cast to for evaluation, None to keep the file's.

    On CUDA with a bf16/fp16 model, residual-stream SAEs run in the model's dtype (their inputs
    are that dtype's activations, so nothing is lost on the way in, and the encoder matmul runs on
    the tensor cores); every metric still accumulates in float32/float64 (the accumulators upcast).
    Pooled-source SAEs (ErnOS) keep their own dtype: their inputs are float32 means."""
    if torch.device(device).type == "cuda" and model_dtype in (torch.bfloat16, torch.float16) \
            and hookpoint != POOLED_HOOKPOINT:
        return model_dtype
    return None
