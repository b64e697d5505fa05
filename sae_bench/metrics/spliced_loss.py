"""Spliced-loss metrics: next-token cross-entropy and KL with the SAE's reconstruction spliced in.

Which predictions count. For a sequence of tokens w_0 … w_{T−1} with keep mask k (True for real
tokens that are not BOS, pad or EOS), the logits at position t predict w_{t+1}. A prediction
counts iff k_t and k_{t+1}: its input position is one whose activation was replaced (so clean
and spliced runs can differ there) and its target is a kept token. The prediction made at BOS
(whose activation is never replaced, and whose output a causal model cannot change) and
predictions of EOS/pad are excluded. `prediction_mask` is that definition.

Per counted prediction t, with log-probabilities ℓ = log_softmax(logits) in float32,

    CE_run(t)   = −ℓ_run(t)[w_{t+1}]
    KL_run(t)   = Σ_v p_clean(t)[v] (ℓ_clean(t)[v] − ℓ_run(t)[v])       (KL(p_clean ‖ p_run) ≥ 0)

and over all counted predictions (N of them; sums per sequence i: C_i, S_i, Z_i, M_i for the
clean, spliced, zero-ablated and mean-ablated CE, K_i^s and K_i^z for the KLs, n_i counts; the
mean-ablated run is optional, and ce_mean is reported only when it was run):

    ce_clean, ce_spliced, ce_zero, ce_mean = Σ_i C_i / Σ_i n_i, …
    delta_ce           = Σ_i (S_i − C_i) / Σ_i n_i                 = ce_spliced − ce_clean
    ce_loss_recovered  = Σ_i (Z_i − S_i) / Σ_i (Z_i − C_i)         = (CE_zero − CE_spliced)/(CE_zero − CE_clean)
    kl_spliced, kl_zero = Σ_i K_i / Σ_i n_i
    kl_score           = Σ_i (K_i^z − K_i^s) / Σ_i K_i^z            = (KL_zero − KL_spliced)/KL_zero

Every metric is a ratio of per-sequence sums, so its standard error is the sequence-clustered
delta-method one of `sae_bench.metrics.stats`. A zero denominator (e.g. zero-ablation changes
nothing) gives `Metric.null(reason)`, never NaN. Logits are taken in chunks of positions through
a caller-supplied function, so [B, T, V] float32 logits are never materialised.

Pure: tensors and a logits function in, numbers out. Never loads models or checkpoints.
"""

from __future__ import annotations

from typing import Callable, Collection

import torch
from torch import Tensor

from sae_bench.metrics.stats import per_unit_ratio, ratio_metrics, ratio_terms_json
from sae_bench.core.task_api import Metric

RUNS = ("clean", "spliced", "zero", "mean")


def prediction_mask(keep_mask: Tensor) -> Tensor:
    """[B, T] bool: position t's prediction counts iff keep[t] and keep[t+1] (last column False)."""
    keep = keep_mask.bool()
    out = torch.zeros_like(keep)
    out[:, :-1] = keep[:, :-1] & keep[:, 1:]
    return out


def next_token_targets(input_ids: Tensor) -> Tensor:
    """[B, T] target ids: targets[:, t] = input_ids[:, t+1] (last column: a placeholder 0)."""
    out = torch.zeros_like(input_ids)
    out[:, :-1] = input_ids[:, 1:]
    return out


def token_ce_kl(logits: Tensor, targets: Tensor, clean_log_probs: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Per-row CE (−log p[target]) and, given clean log-probs, KL(p_clean ‖ p) — both float32 [n]."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    ce = -log_probs.gather(-1, targets[:, None].to(log_probs.device, torch.int64)).squeeze(-1)
    if clean_log_probs is None:
        return ce, None
    clean_log_probs = clean_log_probs.to(log_probs.device)
    kl = (clean_log_probs.exp() * (clean_log_probs - log_probs)).sum(dim=-1)
    return ce, kl.clamp_min(0.0)  # rounding can leave −1e-7; KL is ≥ 0 by definition


def chunked_ce_kl(hidden: Tensor, targets: Tensor, logits_fn: Callable[[Tensor], Tensor], *,
                  clean_hidden: Tensor | None = None, chunk: int = 512) -> tuple[Tensor, Tensor | None]:
    """CE (and KL against the run given by `clean_hidden`) for n final hidden states [n, d].

    Only `chunk` rows of logits exist at a time (two chunks when KL is asked for). Kept as the
    plain statement of the definition; tasks use `score_runs`, which gives the same numbers."""
    ces, kls = [], []
    for start in range(0, hidden.shape[0], chunk):
        part = slice(start, start + chunk)
        clean_lp = None
        if clean_hidden is not None:
            clean_lp = torch.log_softmax(logits_fn(clean_hidden[part]).float(), dim=-1)
        ce, kl = token_ce_kl(logits_fn(hidden[part]), targets[part], clean_lp)
        ces.append(ce.detach().cpu())
        if kl is not None:
            kls.append(kl.detach().cpu())
        del clean_lp
    empty = torch.zeros(0, dtype=torch.float32)
    ce_all = torch.cat(ces) if ces else empty
    return ce_all, ((torch.cat(kls) if kls else empty) if clean_hidden is not None else None)


# Rows per elementwise pass inside a chunk: the scratch of log-softmax and the KL product is
# [ROW_BLOCK, V] (16 MiB at V = 262,144), small enough to stay in cache-sized pieces.
ROW_BLOCK = 16
# Default bytes for the float32 full-vocabulary buffers of `score_runs` (three [chunk, V] buffers).
LOGITS_BUDGET_BYTES = 384 << 20


def chunk_for_budget(vocab_size: int, budget_bytes: int = LOGITS_BUDGET_BYTES, *, most: int = 4096) -> int:
    """Positions per chunk so that `score_runs`'s three [chunk, V] float32 buffers fit the budget
    (a multiple of ROW_BLOCK, at least ROW_BLOCK, at most `most`)."""
    rows = budget_bytes // (3 * 4 * max(int(vocab_size), 1))
    return int(min(most, max(ROW_BLOCK, rows - rows % ROW_BLOCK)))


def _log_softmax_(logits: Tensor, scratch: Tensor, in_place: bool | None = None) -> Tensor:
    """log_softmax over the last dim in place (bit-identical to torch.log_softmax).

    On the CPU the kernel writes its output in place (it reduces each row before writing it;
    measured 3.4x cheaper than writing elsewhere and copying back); on other devices ROW_BLOCK
    rows at a time into `scratch`, then copied back."""
    if in_place if in_place is not None else logits.device.type == "cpu":
        return torch.log_softmax(logits, dim=-1, out=logits)
    for start in range(0, logits.shape[0], ROW_BLOCK):
        rows = logits[start:start + ROW_BLOCK]
        out = scratch[:rows.shape[0]]
        torch.log_softmax(rows, dim=-1, out=out)
        rows.copy_(out)
    return logits


def _kl_rows(clean_lp: Tensor, clean_p: Tensor, run_lp: Tensor, scratch: Tensor) -> Tensor:
    """Σ_v p_clean (ℓ_clean − ℓ_run) per row, clamped at 0 — token_ce_kl's arithmetic, row block by row block.

    The difference is taken per element before weighting: Σ p_c ℓ_c − Σ p_c ℓ_run (one pass fewer)
    cancels two sums of the order of the entropy and loses 1e-4 relative when the KL is small
    (a good SAE), against the 1e-6 the metrics must keep."""
    out = torch.empty(clean_lp.shape[0], dtype=torch.float32, device=clean_lp.device)
    for start in range(0, clean_lp.shape[0], ROW_BLOCK):
        part = slice(start, start + ROW_BLOCK)
        diff = scratch[:clean_lp[part].shape[0]]
        torch.sub(clean_lp[part], run_lp[part], out=diff)
        diff.mul_(clean_p[part])
        torch.sum(diff, dim=-1, out=out[part])
    return out.clamp_min_(0.0)


class RunScorer:
    """CE of a clean run and (CE, KL(p_clean ‖ p_run)) of other runs, chunk by chunk, sharing the clean work.

    `logits_into(hidden, out)` writes float32 logits [rows, V] of final hidden states into `out`
    and returns them. Per chunk the clean log-probs and probabilities are computed once and every
    run is scored against them, so k runs cost k + 1 lm_head products per chunk, not 2k. Memory:
    three [chunk, V] float32 buffers, allocated on first use and reused by every call (no fresh
    full-vocabulary allocation, hence no page faults, per chunk), plus [ROW_BLOCK, V] scratch; no
    float64 over the vocabulary. Same arithmetic as `token_ce_kl`, hence the same numbers given the
    same logits (tested, with both against a float64 computation). `chunk`: positions per lm_head
    call (None: `chunk_for_budget`)."""

    def __init__(self, logits_into: Callable[[Tensor, Tensor], Tensor], vocab_size: int, *,
                 chunk: int | None = None, device: torch.device | str | None = None):
        self.logits_into, self.vocab_size = logits_into, int(vocab_size)
        self.chunk = int(chunk or chunk_for_budget(vocab_size))
        self.device = torch.device(device) if device is not None else None
        self._buffers: tuple[Tensor, Tensor, Tensor, Tensor] | None = None

    def _buffers_for(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if self._buffers is None or self._buffers[0].device != device:
            self._buffers = None
            shape = (self.chunk, self.vocab_size)
            self._buffers = (torch.empty(shape, device=device), torch.empty(shape, device=device),
                             torch.empty(shape, device=device),
                             torch.empty(min(ROW_BLOCK, self.chunk), self.vocab_size, device=device))
        return self._buffers

    def release(self) -> None:
        """Free the buffers (they are reallocated on the next call)."""
        self._buffers = None

    def score(self, clean_hidden: Tensor, targets: Tensor, runs: dict[str, Tensor],
              ce_only: Collection = ()) -> tuple[Tensor, dict[str, tuple[Tensor, Tensor | None]]]:
        """(CE of the clean run [n], {run: (CE [n], KL [n])}), float32 on the CPU; `clean_hidden` and
        every run are final hidden states [n, d] at the same n counted predictions. Runs named in
        `ce_only` get (CE, None): their KL is not computed."""
        n = clean_hidden.shape[0]
        device = self.device or clean_hidden.device
        # per-position results stay on the device until the end: one transfer per call, not per chunk
        ce_clean = torch.empty(n, dtype=torch.float32, device=device)
        out = {name: (torch.empty(n, dtype=torch.float32, device=device),
                      None if name in ce_only else torch.empty(n, dtype=torch.float32, device=device))
               for name in runs}
        on_cpu = lambda t: None if t is None else t.cpu()  # noqa: E731
        if n == 0:
            return ce_clean.cpu(), {name: (ce.cpu(), on_cpu(kl)) for name, (ce, kl) in out.items()}
        clean_lp, clean_p, run_lp, scratch = self._buffers_for(device)
        targets = targets.to(device=device, dtype=torch.int64)
        for start in range(0, n, self.chunk):
            part = slice(start, min(start + self.chunk, n))
            target = targets[part, None]
            lp_c = _log_softmax_(self.logits_into(clean_hidden[part], clean_lp), scratch)
            ce_clean[part] = lp_c.gather(-1, target).squeeze(-1).neg()
            p_c = None
            for name, hidden in runs.items():
                lp_r = _log_softmax_(self.logits_into(hidden[part], run_lp), scratch)
                out[name][0][part] = lp_r.gather(-1, target).squeeze(-1).neg()
                if out[name][1] is not None:
                    if p_c is None:  # once per clean chunk, only when some run needs its KL
                        p_c = torch.exp(lp_c, out=clean_p[:lp_c.shape[0]])
                    out[name][1][part] = _kl_rows(lp_c, p_c, lp_r, scratch)
        return ce_clean.cpu(), {name: (ce.cpu(), on_cpu(kl)) for name, (ce, kl) in out.items()}


def score_runs(clean_hidden: Tensor, targets: Tensor, runs: dict[str, Tensor],
               logits_into: Callable[[Tensor, Tensor], Tensor], vocab_size: int, *,
               chunk: int | None = None) -> tuple[Tensor, dict[str, tuple[Tensor, Tensor]]]:
    """One-shot `RunScorer(...).score(...)`."""
    return RunScorer(logits_into, vocab_size, chunk=chunk).score(clean_hidden, targets, runs)


class SplicedLossAccumulator:
    """Per-sequence sums of CE (per run) and KL (spliced, zero), and prediction counts.

    `runs`: the CE runs kept (RUNS, or RUNS without "mean" when mean ablation is off)."""

    def __init__(self, n_sequences: int, runs: tuple[str, ...] = RUNS):
        self.n_sequences = n_sequences
        z = lambda: torch.zeros(n_sequences, dtype=torch.float64)  # noqa: E731
        self.count = z()
        self.ce = {run: z() for run in RUNS if run in runs}
        self.kl = {"spliced": z(), "zero": z()}

    def add_count(self, sequence: Tensor) -> None:
        seq = sequence.to("cpu", torch.int64)
        self.count.index_add_(0, seq, torch.ones(seq.shape[0], dtype=torch.float64))

    def add(self, run: str, sequence: Tensor, ce: Tensor, kl: Tensor | None = None) -> None:
        seq = sequence.to("cpu", torch.int64)
        self.ce[run].index_add_(0, seq, ce.to("cpu", torch.float64))
        if kl is not None:
            self.kl[run].index_add_(0, seq, kl.to("cpu", torch.float64))

    @property
    def n_predictions(self) -> int:
        return int(self.count.sum())

    def finalize(self) -> dict[str, Metric]:
        return spliced_loss_metrics(self.ce, self.kl, self.count)

    def per_sequence_terms(self) -> dict[str, dict[str, list[float]]]:
        """Every metric's per-sequence (numerator, denominator), for paired comparisons."""
        return ratio_terms_json(spliced_loss_terms(self.ce, self.kl, self.count))

    def per_sequence(self) -> dict[str, list[float | None]]:
        """Per-sequence delta CE (and KL): their distributions are drawn on the checkpoint page."""
        return {"delta_ce": per_unit_ratio(self.ce["spliced"] - self.ce["clean"], self.count),
                "kl_spliced": per_unit_ratio(self.kl["spliced"], self.count)}


def spliced_loss_terms(ce: dict[str, Tensor], kl: dict[str, Tensor], count: Tensor) -> dict[str, tuple[Tensor, Tensor, str]]:
    """Per-sequence (numerator, denominator, reason if undefined) of every metric of the module
    docstring, from per-sequence sums (ce[run], kl[run], count) [n_seq]: each metric is Σa/Σb
    (ce_mean only when ce has a "mean" run)."""
    none = "no counted next-token predictions"
    out = {f"ce_{run}": (ce[run], count, none) for run in RUNS if run in ce}
    out["delta_ce"] = (ce["spliced"] - ce["clean"], count, none)
    out["ce_loss_recovered"] = (
        ce["zero"] - ce["spliced"], ce["zero"] - ce["clean"],
        "CE_zero equals CE_clean (zero-ablation changes nothing): ce_loss_recovered is undefined")
    out["kl_spliced"] = (kl["spliced"], count, none)
    out["kl_zero"] = (kl["zero"], count, none)
    out["kl_score"] = (
        kl["zero"] - kl["spliced"], kl["zero"],
        "KL_zero is zero (zero-ablation changes nothing): kl_score is undefined")
    return out


def spliced_loss_metrics(ce: dict[str, Tensor], kl: dict[str, Tensor], count: Tensor) -> dict[str, Metric]:
    """The module docstring's metrics from per-sequence sums (ce[run], kl[run], count) [n_seq]."""
    return ratio_metrics(spliced_loss_terms(ce, kl, count))
