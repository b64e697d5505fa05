"""Preflight: every checkpoint checked against the model before any work (hookpoints resolve, widths
fit, it was trained on this model unless allowed, no two share a results folder), so bad input fails
before the first record is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from sae_bench.activations.source import POOLED_HOOKPOINT
from sae_bench.core.errors import CheckpointError, InputError
from sae_bench.records.results import checkpoint_folder

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from sae_bench.run.config import CheckpointSpec


def _eval_hookpoint(spec: CheckpointSpec, sae) -> str:
    """Where the checkpoint reads: what its loader says (a SAELens hook_name, a Gemma Scope folder's layer,
    a sparsify folder), else the spec's hookpoint. A spec hookpoint may be only the subfolder to load."""
    hookpoint = sae.metadata.hookpoint or spec.hookpoint
    if not hookpoint:
        raise CheckpointError(spec.ref, "no hookpoint given and the checkpoint does not name one")
    # A sparsify hookpoint may carry its run folder ("sae-run/language_model.layers.3").
    return hookpoint.rsplit("/", 1)[-1]


def _canonical(model, hookpoint: str) -> str:
    return hookpoint if hookpoint == POOLED_HOOKPOINT else model.resolve_hookpoint(hookpoint).name


def checked_checkpoint(model, spec: CheckpointSpec, device: str, dtype: torch.dtype | None = None):
    """Load `spec`'s SAE and check it against the model: (sae, canonical hookpoint). Raises
    CheckpointError when no hookpoint is known, a hookpoint does not resolve (a transcoder's output
    site too) or the SAE's width does not fit the model's."""
    sae = spec.load(device, dtype)
    hookpoint = _canonical(model, _eval_hookpoint(spec, sae))
    if sae.metadata.output_hookpoint:
        _canonical(model, sae.metadata.output_hookpoint)
    if sae.d_in != model.d_model:
        raise CheckpointError(sae.metadata.weights_path or spec.ref,
                              f"SAE d_in={sae.d_in} does not match the model's hidden size {model.d_model} at {hookpoint}")
    return sae, hookpoint


class Checked(NamedTuple):
    """A checkpoint that passed preflight: where it reads (and, for transcoders, what it predicts)."""

    spec: CheckpointSpec
    hookpoint: str
    output_hookpoint: str | None
    sha256: str
    mismatch: dict[str, str] | None  # {"trained_on", "evaluated", "problem"} when allowed to differ


def model_mismatch(spec: CheckpointSpec, sae, evaluated: str, allow: bool,
                   identity: dict[str, Any] | None = None) -> dict[str, str] | None:
    """The model-mismatch guard: a checkpoint that names the model it was trained on (registry, SAELens
    model_name, sparsify run config, ErnOS source_model) must be evaluated on that model; otherwise a
    one-line InputError, or with `allow` the facts for the record's note. `identity`: what the evaluated
    model is besides its name (`evaluated_identity`; see `sae_bench.models.identity.identify`)."""
    from sae_bench.models.identity import identify

    trained_on = spec.trained_on or sae.metadata.source_model
    problem = identify(trained_on, evaluated, **(identity or {})) if trained_on else None
    if problem is None:
        return None
    if not allow:
        raise CheckpointError(spec.display_id, f"{problem}; evaluate it on {trained_on}, or pass "
                                               "--allow-model-mismatch to evaluate it anyway (the records say so)")
    return {"trained_on": trained_on, "evaluated": evaluated, "problem": problem}


def preflight(model, specs: list[CheckpointSpec], device: str, evaluated_model: str | None = None,
              allow_model_mismatch: bool = False, identity: dict[str, Any] | None = None) -> list[Checked]:
    """Check every checkpoint against the model before any work: hookpoints resolve, widths fit, and
    it was trained on this model (`evaluated_model`, default the adapter's id) unless allowed."""
    checked = []
    for spec in specs:
        sae, hookpoint = checked_checkpoint(model, spec, device)
        if spec.label is None and spec.hookpoint and \
                spec.hookpoint.rsplit("/", 1)[-1] != (sae.metadata.hookpoint or "").rsplit("/", 1)[-1]:
            # the spec's hookpoint only named a folder (a SAELens sae_id, a Gemma Scope width/l0 folder):
            # it is part of the checkpoint's identity, so two folders of one repo never share records
            spec.label = f"{spec.ref}@{spec.hookpoint}"
        output = sae.metadata.output_hookpoint
        output = _canonical(model, output) if output else None
        mismatch = model_mismatch(spec, sae, evaluated_model or model.model_id, allow_model_mismatch, identity)
        checked.append(Checked(spec, hookpoint, output, sae.metadata.weights_sha256 or "", mismatch))
        del sae
    return checked


def refuse_shared_folders(checked: list[Checked]) -> None:
    """Two checkpoints whose records would land in one results folder (the same id twice at one
    hookpoint, or ids whose folder names collide) are refused before any record is written."""
    seen: dict[tuple[str, str], str] = {}
    for spec, hookpoint in ((c.spec, c.hookpoint) for c in checked):
        where = (checkpoint_folder(spec.display_id), hookpoint)
        if where in seen:
            same = "is listed twice" if seen[where] == spec.display_id else f"shares a results folder with {seen[where]!r}"
            raise InputError(spec.display_id, f"{same} at {hookpoint} ({where[0]}/): give each checkpoint "
                                              "a distinct label")
        seen[where] = spec.display_id
