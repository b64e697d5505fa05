"""Checks on each checkpoint's first activation batch, before any task runs: problems that make
every later number meaningless although the widths fit.

- scale: the SAE explains less than nothing. Judged on the median token, so that one outlier
  token (a huge error on a rare position) cannot fire it on a sound run:
      robust EV = 1 − median_t ‖x_t − x̂_t‖² / median_t ‖x_t − m‖²     (m: the coordinate-wise median)
  negative means the activations are far from the scale the SAE was trained on (another model?).
- firing: every latent fires on every token (thresholds or biases below any pre-activation), or no
  latent fires on any token; the sparsity metrics would then describe the checkpoint's settings,
  not the activations.
Returns messages; the runner prints them, keeps them in the report and in the records' notes.
Never changes a metric.
"""

from __future__ import annotations

import sys

import torch

ROWS = 4096  # tokens of the first batch examined


def robust_explained_variance(target: torch.Tensor, reconstruction: torch.Tensor) -> float | None:
    """1 − median token error / median token deviation from the coordinate-wise median (see above)."""
    target, reconstruction = target.double(), reconstruction.double()
    error = (target - reconstruction).pow(2).sum(dim=-1)
    deviation = (target - target.median(dim=0).values).pow(2).sum(dim=-1)
    scale = float(deviation.median())
    if scale <= 0:
        return None
    return 1.0 - float(error.median()) / scale


def first_batch_problems(sae, ctx) -> list[str]:
    """What is wrong on the first batch at `ctx.hookpoint` (empty when nothing is)."""
    first = next(ctx.activations.batches(ROWS, device=sae.device), None)
    if first is None or first.x.shape[0] < 2:
        return []
    x_in, _ = sae.preprocess(first.x.to(sae.dtype))
    rows = sae.row_chunks(len(x_in))[0]
    with torch.no_grad():
        codes = sae.encode(x_in[rows])
        target = x_in[rows]
        if sae.is_transcoder:
            target = next(ctx.splice_activations.batches(ROWS, device=sae.device)).x.to(sae.dtype)[rows]
        reconstruction = sae.decode(codes, x_in[rows])
        active = codes.active_count()
    problems = []
    if not ctx.is_pooled:
        ev = robust_explained_variance(target, reconstruction)
        if ev is not None and ev < 0:
            problems.append(f"explained variance {ev:.4g} on the median token of the first batch at {ctx.hookpoint}: "
                            "d_in fits but the activations are far from the scale this SAE was trained on "
                            "(another model or site?)")
    n = active.numel()
    if n and bool((active == sae.d_sae).all()):
        problems.append(f"every latent fires on every token of the first batch at {ctx.hookpoint} (thresholds or "
                        "biases below every pre-activation?): l0 equals the width, sparsity metrics describe the "
                        "checkpoint's settings")
    elif n and bool((active == 0).all()):
        problems.append(f"no latent fires on any token of the first batch at {ctx.hookpoint} (thresholds or biases "
                        "above every pre-activation?): the reconstruction is the decoder bias alone")
    return problems


def scale_warnings(sae, ctx, checkpoint_id: str, warnings: list[str]) -> list[str]:
    """Warn (stderr, `warnings`, and the returned record notes) for what the first batch shows is
    wrong although the widths fit (`first_batch_problems`: the scale, latents that all fire or none)."""
    from sae_bench.run import distributed

    notes = []
    for message in first_batch_problems(sae, ctx):
        if distributed.is_writer():
            print(f"sae-bench: warning: {checkpoint_id}: {message}", file=sys.stderr)
        warnings.append(f"{checkpoint_id}: {message}")
        notes.append(f"WARNING: {message}")
    return notes
