"""Task `spliced_loss`: what the model loses when the SAE's reconstruction replaces its activations.

Metrics (definitions, which predictions count, and standard errors: `sae_bench.metrics.spliced_loss`):
ce_clean, ce_spliced, ce_zero, ce_mean, delta_ce, ce_loss_recovered, kl_spliced, kl_zero, kl_score.
Artifacts: per-sequence delta CE and KL (`per_sequence`, drawn on the leaderboard) and every
metric's per-sequence numerator and denominator (`per_sequence_terms`, for paired comparisons).

How the runs are made. At the hookpoint only the kept positions (not BOS, pad or EOS) are replaced
— by sae.splice(x) (spliced), 0 (zero-ablated) or the mean kept activation
`ctx.activations.mean()` (mean-ablated); BOS/EOS keep their clean residual, exactly as the SAEs
were evaluated and (for gemma-loupe) trained. Every run goes through the *suffix only*:
`model.final_hidden_from(hookpoint, resid, ids, mask)` runs the layers after the hookpoint from a
full [B, T, d] residual; the clean run uses the same path with the unmodified residual, so an
SAE whose splice returns x reproduces the clean run bit for bit.

The full residual is rebuilt, never recomputed per checkpoint: kept positions come from the shared
activation source (`ctx.activations`, which holds only kept positions, in corpus order — checked),
and the few non-kept attended positions (BOS, EOS) are taken once from `model.residual` and kept in
the per-hookpoint memo; pad positions are zeros (the attention mask hides them). The rest of the
memo, computed once per hookpoint with `ctx.memo` and reused for every checkpoint:
  * the clean final hidden states at the counted prediction positions ([n, d], CPU) — chosen over
    storing clean log-probs, which would be [n, V] (V = 262,144 for Gemma 4): clean log-probs
    are recomputed per chunk with one extra lm_head product, the cheapest exact option;
  * the per-sequence clean CE, zero- and mean-ablated CE, and zero-ablated KL sums;
  * for Gemma 4 KV-shared layers, the clean K/V of the store layers at or before the hookpoint
    that the suffix reads (`model.clean_kv`, CPU; they depend on the tokens only), so no
    checkpoint ever pays for a clean prefix forward.
Per checkpoint the cost is one suffix forward per batch plus two lm_head products per chunk.
Logits exist for at most `chunk_positions` positions (two chunks for KL) at a time.

Skipped for the pooled final-norm source (ErnOS): its vectors are one per text, not a residual
that later layers read, so there is nothing to splice. Never writes files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor
from tqdm.auto import tqdm

from sae_bench import distributed
from sae_bench.errors import DataError
from sae_bench.metrics.spliced_loss import (SplicedLossAccumulator, chunked_ce_kl, next_token_targets,
                                            prediction_mask)
from sae_bench.registry import register_task
from sae_bench.task_api import Task, TaskConfig, TaskOutput

MEMO_VERSION = 3  # 3: per_batch keyed by batch index (a rank holds only its own batches)


@dataclass(frozen=True)
class SplicedLossConfig(TaskConfig):
    positive = ("chunk_positions",)
    chunk_positions: int = 512  # positions per lm_head call; bounds memory, does not change any number


class _Batch:
    """One corpus batch with everything the runs need."""

    def __init__(self, rows: slice, ids: Tensor, mask: Tensor, keep: Tensor, kept_x: Tensor):
        self.rows, self.ids, self.mask, self.keep, self.kept_x = rows, ids, mask, keep, kept_x
        self.pred = prediction_mask(keep)
        self.targets = next_token_targets(ids)[self.pred]
        row_ids = torch.arange(rows.start, rows.stop)[:, None].expand_as(keep)
        self.pred_sequence = row_ids[self.pred]
        self.fill_mask = mask.bool() & ~keep  # attended but not kept: BOS, EOS


def iter_kept_by_batch(source, corpus, batch_size: int) -> Iterator[tuple[slice, Tensor, Tensor, Tensor, Tensor]]:
    """(rows, ids, mask, keep, kept activations [n_kept, d]) per corpus batch, the activations
    taken from the shared source in order; raises DataError if the orders disagree."""
    stream = source.batches(65_536)
    pending = None
    for rows, ids, mask, keep in corpus.batches(batch_size):
        need = int(keep.sum())
        parts, got = [], 0
        while got < need:
            if pending is None:
                pending = next(stream, None)
                if pending is None:
                    raise DataError("activation source", f"ran out of kept vectors at sequences {rows.start}..{rows.stop}")
            take = min(need - got, pending.x.shape[0])
            parts.append((pending.x[:take], pending.sequence[:take], pending.position[:take]))
            pending = None if take == pending.x.shape[0] else type(pending)(
                pending.x[take:], pending.sequence[take:], pending.position[take:])
            got += take
        x = torch.cat([p[0] for p in parts]) if parts else torch.zeros(0, source.d)
        seq = torch.cat([p[1] for p in parts]) if parts else torch.zeros(0, dtype=torch.int64)
        pos = torch.cat([p[2] for p in parts]) if parts else torch.zeros(0, dtype=torch.int64)
        expected_seq = torch.arange(rows.start, rows.stop)[:, None].expand_as(keep)[keep]
        expected_pos = torch.arange(keep.shape[1]).expand_as(keep)[keep]
        if not (torch.equal(seq.cpu(), expected_seq) and torch.equal(pos.cpu(), expected_pos)):
            raise DataError("activation source", "kept vectors are not in corpus order (sequence, position)")
        yield rows, ids, mask, keep, x


def _residual(batch: _Batch, kept_values: Tensor, fill: Tensor, dtype: torch.dtype, device) -> Tensor:
    """Full [B, T, d] residual: kept positions <- kept_values, BOS/EOS <- fill, pad <- 0."""
    B, T = batch.keep.shape
    resid = torch.zeros(B, T, kept_values.shape[-1], dtype=dtype, device=device)
    resid[batch.keep.to(device)] = kept_values.to(device, dtype)
    resid[batch.fill_mask.to(device)] = fill.to(device, dtype)
    return resid


def _final_hidden(model, hookpoint: str, batch: _Batch, resid: Tensor, clean_kv: dict | None = None) -> Tensor:
    device = resid.device
    with torch.no_grad():
        h = model.final_hidden_from(hookpoint, resid, batch.ids.to(device), batch.mask.to(device), clean_kv=clean_kv)
    return h[batch.pred.to(h.device)]  # a model spread over devices ends on another device than it starts


def _kv_to(clean_kv: dict, device) -> dict:
    return {kind: tuple(t.to(device) for t in tensors) for kind, tensors in clean_kv.items()}


def _baseline(ctx, chunk: int) -> dict:
    """Everything that does not depend on the checkpoint (see the module docstring).

    Under torchrun each rank runs the forwards of its own batches (`distributed.shard`) and keeps
    their memo; the per-prediction numbers are gathered in batch order and summed exactly as in
    one process."""
    model, device = ctx.model, ctx.model.device
    dtype = model.dtype
    mean = ctx.activations.mean().to(torch.float32)
    per_batch: dict[int, dict] = {}  # batch index -> memo, for this rank's batches only
    local = []
    batches = distributed.shard(iter_kept_by_batch(ctx.activations, ctx.corpus, ctx.batch_size))
    total = len(range(distributed.rank(), -(-ctx.corpus.n_sequences // ctx.batch_size), distributed.world_size()))
    for index, (rows, ids, mask, keep, kept_x) in tqdm(batches, total=total,
                                                       desc=f"spliced_loss baseline @ {ctx.hookpoint}",
                                                       unit="batch", disable=not ctx.show_progress, leave=False):
        batch = _Batch(rows, ids, mask, keep, kept_x)
        with torch.no_grad():
            full = model.residual(ctx.hookpoint, ids.to(device), mask.to(device))
        fill = full[batch.fill_mask.to(full.device)].cpu()
        del full
        clean_h = _final_hidden(model, ctx.hookpoint, batch, _residual(batch, kept_x, fill, dtype, device))
        ce_clean, _ = chunked_ce_kl(clean_h, batch.targets.to(device), model.logits_from_hidden, chunk=chunk)
        zeros = torch.zeros_like(kept_x)
        h_zero = _final_hidden(model, ctx.hookpoint, batch, _residual(batch, zeros, fill, dtype, device))
        ce_zero, kl_zero = chunked_ce_kl(h_zero, batch.targets.to(device), model.logits_from_hidden,
                                         clean_hidden=clean_h, chunk=chunk)
        means = mean.expand_as(kept_x)
        h_mean = _final_hidden(model, ctx.hookpoint, batch, _residual(batch, means, fill, dtype, device))
        ce_mean, _ = chunked_ce_kl(h_mean, batch.targets.to(device), model.logits_from_hidden, chunk=chunk)
        clean_kv = _kv_to(model.clean_kv(ctx.hookpoint, ids.to(device), mask.to(device)), "cpu")
        per_batch[index] = {"fill": fill, "clean_h": clean_h.cpu(), "clean_kv": clean_kv}
        local.append((index, (batch.pred_sequence, ce_clean, ce_zero, kl_zero, ce_mean)))
    acc = SplicedLossAccumulator(ctx.corpus.n_sequences)
    for sequence, ce_clean, ce_zero, kl_zero, ce_mean in distributed.gather_ordered(local):
        acc.add_count(sequence)
        acc.add("clean", sequence, ce_clean)
        acc.add("zero", sequence, ce_zero, kl_zero)
        acc.add("mean", sequence, ce_mean)
    return {"acc": acc, "per_batch": per_batch}


@register_task
class SplicedLossTask(Task):
    name = "spliced_loss"
    version = "1"
    Config = SplicedLossConfig
    description = "next-token CE/KL with the SAE spliced in, vs clean, zero- and mean-ablated runs"

    def skip_reason(self, sae, ctx) -> str | None:
        if ctx.is_pooled:
            return ("spliced loss is undefined for the pooled final-norm source: its vectors (one per text) "
                    "are not a residual the model's later layers read")
        return None

    def run(self, sae, ctx) -> TaskOutput:
        chunk = self.config.chunk_positions
        model, device = ctx.model, ctx.model.device
        base = ctx.memo(f"spliced_loss/baseline/v{MEMO_VERSION}/bs{ctx.batch_size}", lambda: _baseline(ctx, chunk))
        acc = SplicedLossAccumulator(ctx.corpus.n_sequences)
        for run in ("clean", "zero", "mean"):
            acc.ce[run] = base["acc"].ce[run].clone()
        acc.kl["zero"] = base["acc"].kl["zero"].clone()
        acc.count = base["acc"].count.clone()
        batches = distributed.shard(iter_kept_by_batch(ctx.activations, ctx.corpus, ctx.batch_size))
        local = []  # (batch index, per-prediction numbers) for this rank's batches
        for index, (rows, ids, mask, keep, kept_x) in tqdm(batches, total=len(base["per_batch"]),
                                                           desc="spliced_loss", unit="batch",
                                                           disable=not ctx.show_progress, leave=False):
            memo = base["per_batch"][index]
            batch = _Batch(rows, ids, mask, keep, kept_x)
            spliced = sae.splice(kept_x.to(sae.device, sae.dtype)) if kept_x.shape[0] else kept_x
            h = _final_hidden(model, ctx.hookpoint, batch, _residual(batch, spliced, memo["fill"], model.dtype, device),
                              clean_kv=_kv_to(memo["clean_kv"], device))
            ce, kl = chunked_ce_kl(h, batch.targets.to(device), model.logits_from_hidden,
                                   clean_hidden=memo["clean_h"].to(device), chunk=chunk)
            local.append((index, (batch.pred_sequence, ce, kl)))
        for sequence, ce, kl in distributed.gather_ordered(local):  # corpus order on every rank
            acc.add("spliced", sequence, ce, kl)
        notes = ["predictions counted: position t with t and t+1 both kept (not BOS/pad/EOS); "
                 "only kept positions are replaced"]
        if sae.metadata.preprocessing.standardise == "batch":
            notes.append(f"batch-standardised preprocessing: statistics over the kept tokens of {ctx.batch_size} sequences")
        return TaskOutput(
            metrics=acc.finalize(),
            counts={"tokens": acc.n_predictions, "sequences": int((acc.count > 0).sum())},
            artifacts={"per_sequence": acc.per_sequence(), "per_sequence_terms": acc.per_sequence_terms()},
            notes=notes,
        )
