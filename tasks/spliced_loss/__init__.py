"""Task `spliced_loss`: what the model loses when the SAE's reconstruction replaces its activations.

Metrics (definitions, which predictions count, and standard errors: `sae_bench.metrics.spliced_loss`):
ce_clean, ce_spliced, ce_zero, delta_ce, ce_loss_recovered, kl_spliced, kl_zero, kl_score, and
ce_mean with `mean_ablation=true` (off by default, as in SAELens/SAEBench: it costs one more
suffix forward and lm_head product per batch the first time a hookpoint is seen).
Artifacts: per-sequence delta CE and KL (`per_sequence`, drawn on the leaderboard) and every
metric's per-sequence numerator and denominator (`per_sequence_terms`, for paired comparisons).

How the runs are made. At the hookpoint only the kept positions (not BOS, pad or EOS) are replaced
— by sae.splice(x) (spliced), 0 (zero-ablated) or the mean kept activation
`ctx.activations.mean()` (mean-ablated); BOS/EOS keep their clean residual, exactly as the SAEs
were evaluated and (for gemma-loupe) trained. Option `ablate_positions="all"` makes the zero- and
mean-ablated runs replace BOS/EOS too (the peers' convention, README "Conventions"); the spliced run
is the same under both. Every run goes through the *suffix only*:
`model.final_hidden_from(hookpoint, resid, ids, mask)` runs the layers after the hookpoint from a
full [B, T, d] residual; the clean run uses the same path with the unmodified residual, so an
SAE whose splice returns x reproduces the clean run bit for bit.

The full residual is rebuilt, never recomputed per checkpoint: kept positions come from the shared
activation source (`ctx.activations`, which holds only kept positions, in corpus order — checked),
and the few non-kept attended positions (BOS, EOS) from the same extraction pass
(`fill_vectors` of the splice site's activation source); pad positions are zeros (the attention mask hides them).

The baseline (everything that does not depend on the checkpoint) is computed once per hookpoint
and, with an activation cache (`--cache-dir`), kept on disk beside the activations
(`sae_bench.activations.memo`: keyed by model + revision, corpus, hookpoint, dtype, batch size,
ablation convention and MEMO_VERSION; written atomically, checksummed, recomputed if damaged):
  * the BOS/EOS residuals and the clean final hidden states at the counted positions ([n, d]) —
    small, unlike clean log-probs ([n, V], V = 262,144): the clean log-probs of a chunk are
    recomputed from them with one lm_head product whenever checkpoints are scored;
  * the per-sequence clean, zero- (and mean-) ablated CE and zero-ablated KL sums;
  * for Gemma 4 KV-shared layers, the clean K/V of the store layers at or before the hookpoint
    that the suffix reads (`model.clean_kv`; they depend on the tokens only).

Shared lm_head work. The task runs in two steps (`prepare`, `finish`): `prepare` needs the SAE and
runs only its suffix forwards, keeping the final hidden states at the counted positions (small);
`finish` scores every prepared checkpoint of the hookpoint together (`RunScorer`): per chunk of
positions the clean log-probs are computed once and each checkpoint's logits are scored against
them, so k checkpoints cost k + 1 lm_head products per chunk. The first `finish` at a hookpoint
scores the zero- (and mean-) ablated runs in the same pass. The runner prepares every checkpoint
of a hookpoint before finishing them (bounded by `max_pending_bytes`); `run` does both for one.
Logits exist for at most three `chunk_positions` x V float32 buffers, reused throughout.

Transcoders replace the MLP's output: the baseline runs at `ctx.splice_hookpoint` (the output site)
with `ctx.splice_activations`, and the spliced values are sae.splice(inputs), the inputs being the
transcoder's own site (`ctx.activations`, kept positions in the same order).

Skipped for the pooled final-norm source (ErnOS): its vectors are one per text, not a residual
that later layers read, so there is nothing to splice. Writes only its baseline memo.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import Tensor
from sae_bench.core.progress import tqdm

from sae_bench.run import distributed
from sae_bench.activations.memo import load_memo, save_memo
from sae_bench.core.errors import DataError
from sae_bench.metrics.spliced_loss import (RunScorer, SplicedLossAccumulator, next_token_targets,
                                            prediction_mask)
from sae_bench.core.registry import register_task
from sae_bench.core.task_api import MetricSpec, Task, TaskConfig, TaskOutput
from sae_bench.leaderboard_build.views import RowPlot

# 4: baseline on disk, mean ablation optional, scores of baseline and checkpoints in one pass
MEMO_VERSION = 4
ABLATE_POSITIONS = ("kept", "all")


@dataclass(frozen=True)
class SplicedLossConfig(TaskConfig):
    positive = ("chunk_positions",)
    # positions per lm_head call; None: from a memory budget (metrics.spliced_loss.chunk_for_budget).
    # Bounds memory; changes numbers only by the lm_head's float rounding.
    chunk_positions: int | None = None
    mean_ablation: bool = False  # also run the mean-ablated model and report ce_mean
    # Which positions the zero- (and mean-) ablated runs replace: "kept" = exactly the positions the
    # SAE replaces (BOS/EOS keep their clean residual); "all" = every position, BOS included, as
    # SAELens's and SAEBench's zero-ablation hooks do. Changes ce_zero, ce_mean, ce_loss_recovered,
    # kl_zero and kl_score, not the clean or spliced runs; part of the config hash, so the two
    # conventions are never ranked together (README "Conventions").
    ablate_positions: str = "kept"

    def problems(self) -> list[str]:
        found = super().problems()
        if self.ablate_positions not in ABLATE_POSITIONS:
            found.append(f"ablate_positions={self.ablate_positions!r} must be one of {', '.join(ABLATE_POSITIONS)}")
        return found


class _Batch:
    """One corpus batch with everything the runs need."""

    def __init__(self, rows: slice, ids: Tensor, mask: Tensor, keep: Tensor, kept_x: Tensor | None = None):
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
    resid = torch.zeros(B, T, fill.shape[-1], dtype=dtype, device=device)
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


@dataclass
class _BatchMemo:
    fill: Tensor  # [n_fill, d] clean residual at BOS/EOS (CPU)
    clean_h: Tensor  # [n_pred, d] clean final hidden states at the counted positions (model dtype, CPU)
    clean_kv: dict  # Gemma 4 clean K/V the suffix reads ({} otherwise), CPU
    ablated: dict[str, Tensor] = field(default_factory=dict)  # "zero"/"mean" final hidden states, until scored


@dataclass
class _Baseline:
    """The per-hookpoint memo: this rank's batches, and the baseline sums once they are scored."""

    per_batch: dict[int, _BatchMemo]
    acc: SplicedLossAccumulator | None = None  # None until the ablated runs have been scored
    path: Any = None  # where it is kept on disk (None: no activation cache)
    key: dict = field(default_factory=dict)
    from_disk: bool = False


@dataclass
class PreparedCheckpoint:
    """One checkpoint's part of the work: its final hidden states at the counted positions per batch."""

    hidden: dict[int, Tensor]
    notes: list[str]

    @property
    def nbytes(self) -> int:
        return sum(h.numel() * h.element_size() for h in self.hidden.values())


def _runs(cfg: SplicedLossConfig) -> tuple[str, ...]:
    return ("clean", "spliced", "zero", "mean") if cfg.mean_ablation else ("clean", "spliced", "zero")


def _memo_key(ctx, cfg: SplicedLossConfig) -> dict:
    """Everything the baseline depends on beyond what the activation cache's folder already hashes
    (model id + revision, corpus hash, tokenizer, hookpoint, seq_len, dtype)."""
    return {"memo": "spliced_loss/baseline", "version": MEMO_VERSION, "batch_size": ctx.batch_size,
            "ablation": f"{cfg.ablate_positions} positions", "mean_ablation": cfg.mean_ablation,
            "device": ctx.model.device.type, "world_size": distributed.world_size(), "rank": distributed.rank(),
            "model": ctx.model.model_id, "revision": ctx.model.revision, "corpus": ctx.corpus.corpus_hash,
            "hookpoint": ctx.splice_hookpoint, "dtype": str(ctx.model.dtype)}


def _to_tensors(base: _Baseline) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for index, memo in base.per_batch.items():
        out[f"batch.{index}.fill"] = memo.fill
        out[f"batch.{index}.clean_h"] = memo.clean_h
        for kind, tensors in memo.clean_kv.items():
            for j, t in enumerate(tensors):
                out[f"batch.{index}.kv.{kind}.{j}"] = t
    out["sums.count"] = base.acc.count
    for run, values in base.acc.ce.items():
        if run != "spliced":
            out[f"sums.ce.{run}"] = values
    out["sums.kl.zero"] = base.acc.kl["zero"]
    return out


def _from_tensors(tensors: dict[str, Tensor], n_sequences: int, runs: tuple[str, ...]) -> _Baseline:
    per_batch: dict[int, dict] = {}
    for name, t in tensors.items():
        parts = name.split(".")
        if parts[0] != "batch":
            continue
        entry = per_batch.setdefault(int(parts[1]), {"kv": {}})
        if parts[2] == "kv":
            entry["kv"].setdefault(parts[3], {})[int(parts[4])] = t
        else:
            entry[parts[2]] = t
    memos = {index: _BatchMemo(e["fill"], e["clean_h"], {k: tuple(v[j] for j in sorted(v)) for k, v in e["kv"].items()})
             for index, e in sorted(per_batch.items())}
    acc = SplicedLossAccumulator(n_sequences, runs)
    acc.count = tensors["sums.count"]
    for run in runs:
        if run != "spliced":
            acc.ce[run] = tensors[f"sums.ce.{run}"]
    acc.kl["zero"] = tensors["sums.kl.zero"]
    return _Baseline(memos, acc, from_disk=True)


def _fill(ctx, batch: _Batch) -> Tensor:
    """The clean residual at the batch's BOS/EOS positions: from the activation source's extraction
    pass when it keeps them (no forward here), else a forward stopped after the hookpoint."""
    source = ctx.splice_activations
    if hasattr(source, "fill_vectors"):
        return source.fill_vectors(batch.rows).to(ctx.model.dtype)
    device = ctx.model.device
    with torch.no_grad():
        full = ctx.model.residual(ctx.splice_hookpoint, batch.ids.to(device), batch.mask.to(device))
    return full[batch.fill_mask.to(full.device)].cpu()


def _baseline_forwards(ctx, cfg: SplicedLossConfig) -> dict[int, _BatchMemo]:
    """The clean and ablated suffix forwards of this rank's batches (see the module docstring).

    With `ablate_positions="all"` the ablated runs also replace the attended non-kept positions
    (BOS, EOS); pad positions are masked out of attention either way."""
    model, device = ctx.model, ctx.model.device
    everywhere = cfg.ablate_positions == "all"
    dtype = model.dtype
    site = ctx.splice_hookpoint  # the hookpoint, or for transcoders the MLP output they replace
    mean = ctx.splice_activations.mean().to(torch.float32) if cfg.mean_ablation else None
    clean_final = getattr(ctx.splice_activations, "clean_final", None)  # from a multi-site pass: shared
    per_batch: dict[int, _BatchMemo] = {}
    batches = distributed.shard(iter_kept_by_batch(ctx.splice_activations, ctx.corpus, ctx.batch_size))
    total = len(range(distributed.rank(), -(-ctx.corpus.n_sequences // ctx.batch_size), distributed.world_size()))
    for index, (rows, ids, mask, keep, kept_x) in tqdm(batches, total=total,
                                                       desc=f"spliced_loss baseline @ {site}",
                                                       unit="batch", disable=not ctx.show_progress, leave=False):
        batch = _Batch(rows, ids, mask, keep, kept_x)
        fill = _fill(ctx, batch)
        if clean_final is not None and index in clean_final:  # the clean run does not depend on the site
            clean_h = clean_final[index][batch.pred[batch.keep]]
        else:
            clean_h = _final_hidden(model, site, batch, _residual(batch, kept_x, fill, dtype, device))
        clean_kv = _kv_to(model.clean_kv(site, ids.to(device), mask.to(device)), "cpu")
        ablated = {"zero": (torch.zeros_like(kept_x), torch.zeros_like(fill) if everywhere else fill)}
        if mean is not None:
            ablated["mean"] = (mean.expand_as(kept_x), mean.expand_as(fill) if everywhere else fill)
        hidden = {run: _final_hidden(model, site, batch, _residual(batch, values, run_fill, dtype, device),
                                     clean_kv=_kv_to(clean_kv, device))
                  for run, (values, run_fill) in ablated.items()}
        per_batch[index] = _BatchMemo(fill, clean_h.cpu(), clean_kv, hidden)
    return per_batch


def _load_or_start_baseline(ctx, cfg: SplicedLossConfig) -> _Baseline:
    key = _memo_key(ctx, cfg)
    memo_path = getattr(ctx.splice_activations, "memo_path", None)
    path = memo_path("spliced_loss-baseline", key) if memo_path is not None else None
    if path is not None:
        tensors = load_memo(path, key)
        if tensors is not None:
            try:
                base = _from_tensors(tensors, ctx.corpus.n_sequences, _runs(cfg))
            except (KeyError, ValueError, IndexError):
                base = None  # a memo of another layout under the same key: recompute
            if base is not None:
                base.path, base.key = path, key
                return base
    return _Baseline(_baseline_forwards(ctx, cfg), path=path, key=key)


def _same_clean(a: _Baseline, b: _Baseline) -> bool:
    """Whether two sites' baselines hold the same clean final states (then one clean pass scores both)."""
    if a.per_batch.keys() != b.per_batch.keys():
        return False
    return all(a.per_batch[i].clean_h is b.per_batch[i].clean_h or torch.equal(a.per_batch[i].clean_h,
                                                                               b.per_batch[i].clean_h)
               for i in a.per_batch)


@register_task
class SplicedLossTask(Task):
    name = "spliced_loss"
    row_plots = (RowPlot(20, "per_sequence", "per-sequence", "Per-sequence spliced loss: how much CE rises and how "
                         "far the predictions move (KL) when the SAE's reconstruction replaces the activations, one "
                         "value per sequence.", "sae_bench.tasks.spliced_loss.plots:draw_per_sequence"),)
    needs_clean_final = True
    runs_suffix = True
    version = "1"
    Config = SplicedLossConfig
    description = "next-token CE/KL with the SAE spliced in, vs clean and zero-ablated (optionally mean-ablated) runs"
    metrics = (
        MetricSpec("ce_loss_recovered", "higher", "(CE_zero − CE_spliced) / (CE_zero − CE_clean)", "fraction", 0.01,
                   headline=30, ranking=1, frontier=2, depth=2),
        MetricSpec("kl_score", "higher", "(KL_zero − KL_spliced) / KL_zero", "fraction", 0.01, headline=31, frontier=3,
                   depth=3),
        MetricSpec("delta_ce", "lower", "CE_spliced − CE_clean over counted predictions", "nats", 0.01),
        MetricSpec("ce_spliced", "lower", "next-token cross-entropy with the SAE's reconstruction spliced in",
                   "nats", 0.01),
        MetricSpec("kl_spliced", "lower", "KL(p_clean ‖ p_spliced) per counted prediction", "nats", 0.01),
        MetricSpec("ce_clean", "none", "next-token cross-entropy of the unmodified model (a property of the model)",
                   "nats"),
        MetricSpec("ce_zero", "none", "cross-entropy with the hookpoint's activations zero-ablated", "nats"),
        MetricSpec("ce_mean", "none", "cross-entropy with the activations replaced by their corpus mean "
                                      "(with spliced_loss.mean_ablation)", "nats"),
        MetricSpec("kl_zero", "none", "KL(p_clean ‖ p_zero-ablated) per counted prediction", "nats"),
    )
    shares_work = True  # prepare per checkpoint, finish together (see Task and the module docstring)
    max_pending_bytes = 1 << 30  # prepared final hidden states held before the runner finishes them

    def skip_reason(self, sae, ctx) -> str | None:
        if ctx.is_pooled:
            return ("spliced loss is undefined for the pooled final-norm source: its vectors (one per text) "
                    "are not a residual the model's later layers read")
        return None

    def _baseline(self, ctx) -> _Baseline:
        # the same description of what the baseline depends on as its on-disk memo (_memo_key)
        key = "spliced_loss/baseline/" + json.dumps(_memo_key(ctx, self.config), sort_keys=True)
        return ctx.memo(key, lambda: _load_or_start_baseline(ctx, self.config))

    def prepare(self, sae, ctx) -> PreparedCheckpoint:
        """The checkpoint's suffix forwards: final hidden states at the counted positions, per batch."""
        model, device = ctx.model, ctx.model.device
        base = self._baseline(ctx)
        hidden: dict[int, Tensor] = {}
        batches = distributed.shard(iter_kept_by_batch(ctx.activations, ctx.corpus, ctx.batch_size))
        for index, (rows, ids, mask, keep, kept_x) in tqdm(batches, total=len(base.per_batch),
                                                           desc="spliced_loss", unit="batch",
                                                           disable=not ctx.show_progress, leave=False):
            memo = base.per_batch[index]
            batch = _Batch(rows, ids, mask, keep, kept_x)
            # kept_x: the SAE's (or transcoder's) inputs; the result replaces the splice site's values
            spliced = sae.splice(kept_x.to(sae.device, sae.dtype)) if kept_x.shape[0] else kept_x
            hidden[index] = _final_hidden(model, ctx.splice_hookpoint, batch,
                                          _residual(batch, spliced, memo.fill, model.dtype, device),
                                          clean_kv=_kv_to(memo.clean_kv, device))
        notes = []
        if sae.is_transcoder:
            notes.append(f"transcoder: its output replaces the MLP output at {ctx.splice_hookpoint} (the zero "
                         "ablation ablates that site)")
        if sae.metadata.preprocessing.standardise == "batch":
            notes.append(f"batch-standardised preprocessing: statistics over the kept tokens of {ctx.batch_size} sequences")
        return PreparedCheckpoint(hidden, notes)

    def finish(self, prepared: list[PreparedCheckpoint], ctx) -> list[TaskOutput]:
        """Score every prepared checkpoint (and, the first time, the ablated runs) in one pass."""
        return self.finish_sites([(ctx, prepared)])[0]

    def finish_sites(self, work: list[tuple[Any, list[PreparedCheckpoint]]]) -> list[list[TaskOutput]]:
        """`finish` for several sites of one run at once: sites whose clean final states are the same
        (a multi-site pass shares them) are scored in one pass, so each chunk's clean log-probs are
        computed once for all of them; outputs per site, in the order given."""
        bases = [self._baseline(ctx) for ctx, _ in work]
        passes: list[list[int]] = []
        for g, base in enumerate(bases):
            for members in passes:
                if _same_clean(bases[members[0]], base):
                    members.append(g)
                    break
            else:
                passes.append([g])
        gathered: dict[int, list] = {}
        for members in passes:
            gathered.update(self._score_pass([(work[g][0], bases[g], work[g][1]) for g in members], members))
        return [self._outputs(ctx, bases[g], prepared, gathered[g]) for g, (ctx, prepared) in enumerate(work)]

    def _score_pass(self, items: list, ids: list[int]) -> dict[int, list]:
        """One scoring pass over the corpus for sites sharing their clean final states:
        {site id: [(sequence, ce_clean, {run: (ce, kl)}) per batch in corpus order]}."""
        cfg = self.config
        ctx0, base0 = items[0][0], items[0][1]
        model, device = ctx0.model, ctx0.model.device
        score_baseline = [base.acc is None for _, base, _ in items]
        scorer = RunScorer(model.logits_from_hidden, model.vocab_size, chunk=cfg.chunk_positions, device=device)
        local: dict[int, list] = {g: [] for g in ids}
        batches = distributed.shard(ctx0.corpus.batches(ctx0.batch_size))
        where = f" ({len(items)} sites)" if len(items) > 1 else ""
        for index, (rows, tok, mask, keep) in tqdm(batches, total=len(base0.per_batch),
                                                   desc=f"spliced_loss scores{where}", unit="batch",
                                                   disable=not ctx0.show_progress, leave=False):
            batch = _Batch(rows, tok, mask, keep)
            runs: dict[tuple[int, Any], Tensor] = {}
            for g, (_, base, prepared), first in zip(ids, items, score_baseline):
                memo = base.per_batch[index]
                if first:
                    runs.update({(g, name): h for name, h in memo.ablated.items()})
                runs.update({(g, j): p.hidden[index] for j, p in enumerate(prepared)})
            ce_only = {(g, "mean") for g in ids}  # ce_mean is reported, KL to the mean-ablated run is not
            ce_clean, scored = scorer.score(base0.per_batch[index].clean_h, batch.targets, runs, ce_only=ce_only)
            for g in ids:
                mine = {name: value for (owner, name), value in scored.items() if owner == g}
                local[g].append((index, (batch.pred_sequence, ce_clean, mine)))
        scorer.release()
        out = {}
        for g, (ctx, base, _), first in zip(ids, items, score_baseline):
            out[g] = distributed.gather_ordered(local[g])  # corpus order on every rank
            if first:
                self._store_baseline(ctx, base, out[g])
        return out

    def _store_baseline(self, ctx, base: _Baseline, gathered: list) -> None:
        cfg = self.config
        acc = SplicedLossAccumulator(ctx.corpus.n_sequences, _runs(cfg))
        for sequence, ce_clean, scored in gathered:
            acc.add_count(sequence)
            acc.add("clean", sequence, ce_clean)
            acc.add("zero", sequence, *scored["zero"])
            if cfg.mean_ablation:
                acc.add("mean", sequence, scored["mean"][0])
        base.acc = acc
        for memo in base.per_batch.values():
            memo.ablated = {}
        if base.path is not None:
            save_memo(base.path, _to_tensors(base), base.key)

    def _outputs(self, ctx, base: _Baseline, prepared: list[PreparedCheckpoint], gathered: list) -> list[TaskOutput]:
        cfg = self.config
        outputs = []
        for j, p in enumerate(prepared):
            acc = SplicedLossAccumulator(ctx.corpus.n_sequences, _runs(cfg))
            acc.count = base.acc.count.clone()
            for run in acc.ce:
                if run != "spliced":
                    acc.ce[run] = base.acc.ce[run].clone()
            acc.kl["zero"] = base.acc.kl["zero"].clone()
            for sequence, _ce_clean, scored in gathered:
                acc.add("spliced", sequence, *scored[j])
            notes = ["predictions counted: position t with t and t+1 both kept (not BOS/pad/EOS); "
                     "the SAE replaces only kept positions",
                     "zero/mean ablation replaces only kept positions (BOS/EOS keep their clean residual)"
                     if cfg.ablate_positions == "kept" else
                     "zero/mean ablation replaces every position, BOS/EOS included (SAELens/SAEBench convention)",
                     "mean ablation on (ce_mean)" if cfg.mean_ablation else
                     "mean ablation off (spliced_loss.mean_ablation=true adds ce_mean)", *p.notes]
            outputs.append(TaskOutput(
                metrics=acc.finalize(),
                counts={"tokens": acc.n_predictions, "sequences": int((acc.count > 0).sum())},
                artifacts={"per_sequence": acc.per_sequence(), "per_sequence_terms": acc.per_sequence_terms()},
                notes=notes,
            ))
        return outputs

    def run(self, sae, ctx) -> TaskOutput:
        return self.finish([self.prepare(sae, ctx)], ctx)[0]
