"""Sparsity metrics of SAE codes: the definitions of DESIGN.md, streamed, never densifying TopK codes.

Over evaluated vectors t (kept tokens; for a pooled source, one vector per text), f_t the codes,
F = d_sae, T the number of vectors, c_j = #{t : f_tj ≠ 0} the firing count of latent j:

    l0              = (1/T) Σ_t #{j : f_tj ≠ 0}
    l1              = (1/T) Σ_t Σ_j |f_tj|
    dead_fraction   = (1/F) #{j : c_j = 0}                  (never fired on these T vectors)
    dense_fraction  = (1/F) #{j : c_j / T > threshold}      (threshold 0.1 by default)
    histogram       = counts of log10(c_j / T) over the alive latents, in fixed bins (the dead
                      ones, whose log10 frequency is −∞, are counted apart)

Standard errors:
  * l0, l1: ratios of per-sequence sums, so the sequence-clustered (delta-method) standard error
    of `sae_bench.metrics.stats`.
  * dead_fraction, dense_fraction: a **sequence bootstrap** (not a binomial SE over latents): the
    sequences are resampled with replacement `replicates` times with a caller-supplied seeded
    torch.Generator, each latent's firing count and the token count are recomputed from
    per-(sequence, latent) firing counts, and the standard error is the standard deviation of the
    replicate fractions. This measures how much the fraction would move on another sample of texts
    of the same size, which is what a gate comparing two runs needs; a binomial SE over latents
    would only measure the finiteness of F. With fewer than two sequences the SE is None.

Sparse-awareness: per-(sequence, latent) firing counts are gathered from `Codes.indices` when the
codes are TopK-style (values, indices); a dense [N, F] matrix is never built for them. Memory is
O(number of distinct (sequence, latent) pairs that fire).

This module is pure (codes in, numbers out): it never loads models or checkpoints. Which vectors
are evaluated is the caller's choice; the activation source already excludes BOS/pad/EOS.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

from sae_bench.metrics.device_sums import SegmentSums
from sae_bench.metrics.stats import per_unit_ratio, ratio_metrics, ratio_terms_json
from sae_bench.checkpoints.sae import Codes
from sae_bench.core.task_api import Metric

DEFAULT_DENSE_THRESHOLD = 0.1
DENSE_BOOTSTRAP_LIMIT = 1 << 25  # latents x sequences up to which the bootstrap uses a dense product


def log10_histogram(fire_counts: Tensor, n_vectors: int, bins_per_decade: int = 4) -> dict:
    """Histogram of log10 firing frequency of the alive latents.

    Bin edges run from floor(log10(1/T)) to 0 in steps of 1/bins_per_decade; the last bin is
    closed on the right, so frequency 1 (fires on every vector) is counted. Dead latents are
    reported as `dead`, never as a bin."""
    counts = fire_counts.to(torch.float64)
    alive = counts[counts > 0]
    if n_vectors <= 0:
        return {"log10_bin_edges": [], "counts": [], "dead": int((counts == 0).sum()), "alive": 0, "tokens": 0}
    low = math.floor(math.log10(1.0 / n_vectors))
    n_bins = max(1, -low * bins_per_decade)
    edges = torch.linspace(float(low), 0.0, n_bins + 1, dtype=torch.float64)
    logf = torch.log10(alive / n_vectors)
    index = torch.bucketize(logf, edges, right=True) - 1  # bin i holds edges[i] <= v < edges[i+1]
    index = index.clamp(0, n_bins - 1)  # v == 0 goes to the last (closed) bin
    hist = torch.bincount(index, minlength=n_bins)
    return {"log10_bin_edges": [round(float(e), 6) for e in edges], "counts": [int(c) for c in hist],
            "dead": int((counts == 0).sum()), "alive": int(alive.numel()), "tokens": int(n_vectors)}


class SparsityAccumulator:
    """Streams (codes, sequence id) batches; `finalize` gives the metrics of the module docstring.

    Everything stays on the device of the codes until `finalize` (per-sequence sums in
    `SegmentSums`, firing counts, the distinct (sequence, latent) pairs, the bootstrap product), so
    an accelerator never waits for the host between batches; `tokens`, `l0`, `l1` and
    `fire_counts` read back as CPU tensors. `compensated=True` forces the float32 path (tests)."""

    def __init__(self, n_sequences: int, d_sae: int, *, dense_threshold: float = DEFAULT_DENSE_THRESHOLD,
                 compensated: bool | None = None):
        if not 0.0 <= dense_threshold <= 1.0:
            raise ValueError(f"dense_threshold must lie in [0, 1], got {dense_threshold}")
        self.n_sequences, self.d_sae, self.dense_threshold = n_sequences, d_sae, dense_threshold
        self._compensated = compensated
        self._sums: dict[str, SegmentSums] | None = None
        self._fire_counts: Tensor | None = None
        self._pair_keys: list[Tensor] = []  # sequence * d_sae + latent, one entry per firing
        self._pair_counts: list[Tensor] = []

    def _on(self, device: torch.device) -> dict[str, SegmentSums]:
        if self._sums is None:
            self._sums = {name: SegmentSums(self.n_sequences, device=device, compensated=self._compensated)
                          for name in ("tokens", "l0", "l1")}
            self._fire_counts = torch.zeros(self.d_sae, dtype=torch.int64, device=device)
        return self._sums

    @property
    def device(self) -> torch.device:
        return self._sums["tokens"].device if self._sums is not None else torch.device("cpu")

    def _total(self, name: str) -> Tensor:
        return self._sums[name].total() if self._sums is not None else torch.zeros(self.n_sequences, dtype=torch.float64)

    tokens = property(lambda self: self._total("tokens"))
    l0 = property(lambda self: self._total("l0"))
    l1 = property(lambda self: self._total("l1"))

    @property
    def fire_counts(self) -> Tensor:
        return self._fire_counts.cpu() if self._fire_counts is not None else torch.zeros(self.d_sae, dtype=torch.int64)

    def update(self, codes: Codes, sequence: Tensor) -> None:
        if codes.d_sae != self.d_sae:
            raise ValueError(f"codes have d_sae={codes.d_sae}, accumulator expects {self.d_sae}")
        device = codes.values.device
        sums = self._on(device)
        seq = sequence.to(device, torch.int64)
        dtype = sums["tokens"].dtype
        sums["tokens"].add(seq, torch.ones(seq.shape[0], dtype=dtype, device=device))
        sums["l0"].add(seq, codes.active_count(dtype))
        sums["l1"].add(seq, codes.abs_sum(dtype))
        self._fire_counts += codes.fire_counts().to(device)
        # (sequence, latent) firing pairs, counted and kept where the codes live
        if codes.indices is None:  # dense codes: row blocks of at most 2^24 values (nonzero's scratch is O(block))
            step = max(1, (1 << 24) // max(codes.values.shape[-1], 1))
            found = [(part != 0).nonzero(as_tuple=True) for part in codes.values.split(step)]
            rows = torch.cat([r + i * step for i, (r, _) in enumerate(found)]) if found else \
                torch.zeros(0, dtype=torch.int64, device=device)
            latents = torch.cat([c for _, c in found]) if found else rows
        else:
            nonzero = codes.values != 0
            rows = torch.arange(codes.values.shape[0], device=device)
            rows, latents = rows[:, None].expand_as(nonzero)[nonzero], codes.indices[nonzero]
        keys, counts = torch.unique(seq[rows] * self.d_sae + latents.to(torch.int64), return_counts=True)
        self._pair_keys.append(keys)
        self._pair_counts.append(counts)

    @property
    def n_vectors(self) -> int:
        return int(self.tokens.sum())

    def _coalesced_pairs(self) -> tuple[Tensor, Tensor]:
        """(distinct keys, firing counts) on the accumulator's device."""
        if not self._pair_keys:
            empty = torch.zeros(0, dtype=torch.int64, device=self.device)
            return empty, empty
        keys, inverse = torch.unique(torch.cat(self._pair_keys), return_inverse=True)
        counts = torch.zeros(keys.shape[0], dtype=torch.int64, device=keys.device).index_add_(
            0, inverse, torch.cat(self._pair_counts))
        self._pair_keys, self._pair_counts = [keys], [counts]
        return keys, counts

    def sequence_latent_counts(self) -> tuple[Tensor, Tensor, Tensor]:
        """Coalesced (sequence, latent, firing count) triples (CPU)."""
        keys, counts = self._coalesced_pairs()
        keys, counts = keys.cpu(), counts.cpu()
        return keys // self.d_sae, keys % self.d_sae, counts

    def _fractions(self, fire_counts: Tensor, n_vectors: float) -> tuple[float, float]:
        dead = float((fire_counts == 0).to(torch.float64).mean())
        dense = float((fire_counts.to(torch.float64) > self.dense_threshold * n_vectors).to(torch.float64).mean())
        return dead, dense

    def bootstrap(self, replicates: int, generator: torch.Generator) -> tuple[float | None, float | None]:
        """Sequence-bootstrap standard errors of (dead_fraction, dense_fraction), computed on the
        accumulator's device (the replicate weights are drawn on the CPU from `generator`, so every
        device draws the same resamples)."""
        tokens_all = self.tokens
        present = torch.nonzero(tokens_all > 0).flatten()
        n = present.numel()
        if replicates < 2 or n < 2:
            return None, None
        device = self.device
        dtype = self._sums["tokens"].dtype  # float64, or float32 where the device has no float64
        keys, counts = self._coalesced_pairs()
        # Re-index sequences to 0..n-1 over those with vectors.
        position = torch.full((self.n_sequences,), -1, dtype=torch.int64)
        position[present] = torch.arange(n)
        seqs, latents = position.to(device)[keys // self.d_sae], keys % self.d_sae
        tokens = tokens_all[present]
        # Every replicate's firing counts at once: fire[j, r] = Σ_pairs counts * weights[seq, r], one
        # (latent x sequence) by (sequence x replicate) product. All terms are integers (below 2^53 in
        # float64, below 2^24 tokens in float32), so the sums are exact whatever their order: the same
        # numbers as adding replicate by replicate, on any device.
        weights = torch.stack([torch.bincount(torch.randint(0, n, (n,), generator=generator), minlength=n)
                               for _ in range(replicates)], dim=1).to(torch.float64)  # [n, R], CPU
        n_vectors = (weights * tokens[:, None]).sum(dim=0)  # [R]: tokens in each replicate (exact)
        # fire > threshold * n  <=>  fire > floor(threshold * n) for integer counts: an exact test in float32 too
        limits = torch.floor(self.dense_threshold * n_vectors).to(device, dtype)
        weights = weights.to(device, dtype)
        if self.d_sae * n <= DENSE_BOOTSTRAP_LIMIT:  # a dense (latent x sequence) matrix: one GEMM
            pairs = torch.zeros(self.d_sae, n, dtype=dtype, device=device)
            pairs[latents, seqs] = counts.to(dtype)
            product = torch.mm
        else:
            with warnings.catch_warnings():  # "sparse invariant checks are implicitly disabled"
                warnings.simplefilter("ignore", UserWarning)
                pairs = torch.sparse_coo_tensor(torch.stack([latents, seqs]), counts.to(dtype),
                                                (self.d_sae, n), check_invariants=False).coalesce()
            product = torch.sparse.mm
        dead, dense = [], []
        step = max(1, (1 << 25) // max(self.d_sae, 1))  # replicates per product: at most 2^25 counts at once
        for start in range(0, replicates, step):
            fire = product(pairs, weights[:, start:start + step]).T  # [r, F]
            dead.append((fire == 0).sum(dim=1))
            dense.append((fire > limits[start:start + step, None]).sum(dim=1))
        # one transfer of 2R integers; fraction = count / F exactly as the mean of 0/1 values
        dead_f = torch.cat(dead).cpu().to(torch.float64) / self.d_sae
        dense_f = torch.cat(dense).cpu().to(torch.float64) / self.d_sae
        return float(dead_f.std(unbiased=True)), float(dense_f.std(unbiased=True))

    def finalize(self, *, replicates: int = 200, generator: torch.Generator | None = None) -> dict[str, Metric]:
        if self.n_vectors == 0:
            none = Metric.null("no evaluated tokens")
            return {"l0": none, "l1": none, "dead_fraction": none, "dense_fraction": none}
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        dead, dense = self._fractions(self.fire_counts, float(self.n_vectors))
        dead_se, dense_se = self.bootstrap(replicates, generator)
        return {
            **ratio_metrics(self.ratio_terms()),
            "dead_fraction": Metric(dead, dead_se),
            "dense_fraction": Metric(dense, dense_se),
        }

    def histogram(self, bins_per_decade: int = 4) -> dict:
        return log10_histogram(self.fire_counts, self.n_vectors, bins_per_decade)

    def ratio_terms(self) -> dict[str, tuple[Tensor, Tensor, str]]:
        """Per-sequence (numerator, denominator, reason) of l0 and l1 (dead/dense fractions are not
        sums over sequences: they have no such terms)."""
        return {"l0": (self.l0, self.tokens, "no evaluated tokens"), "l1": (self.l1, self.tokens, "no evaluated tokens")}

    def per_sequence_terms(self) -> dict[str, dict[str, list[float]]]:
        """`ratio_terms` as JSON, for paired comparisons."""
        return ratio_terms_json(self.ratio_terms())

    def per_sequence(self) -> dict[str, list[float | None]]:
        """Per-sequence l0 and l1."""
        return {"l0": per_unit_ratio(self.l0, self.tokens), "l1": per_unit_ratio(self.l1, self.tokens)}


def sparsity_metrics(codes: Codes, sequence: Tensor | None = None, *, dense_threshold: float = DEFAULT_DENSE_THRESHOLD,
                     replicates: int = 200, seed: int = 0) -> dict[str, Metric]:
    """One-shot metrics for codes of N vectors; `sequence` [N] groups them (default: each its own)."""
    n = codes.values.shape[0]
    if sequence is None:
        sequence = torch.arange(n)
    acc = SparsityAccumulator(int(sequence.max()) + 1 if n else 0, codes.d_sae, dense_threshold=dense_threshold)
    acc.update(codes, sequence)
    return acc.finalize(replicates=replicates, generator=torch.Generator().manual_seed(seed))
