"""Reconstruction fidelity metrics: the definitions of DESIGN.md, streamed in float64.

Over kept tokens t (x the activation, x̂ the reconstruction, both in the SAE's input space, d
the width, T the number of kept tokens, μ the mean of x over all kept tokens):

    mse                           = (1/T) Σ_t ‖x_t − x̂_t‖² / d
    fvu                           = Σ_t ‖x_t − x̂_t‖² / Σ_t ‖x_t − μ‖²
    explained_variance            = 1 − fvu            (variance about the mean, never about 0)
    cossim                        = (1/T) Σ_t cos(x_t, x̂_t)
    l2_ratio                      = (1/T) Σ_t ‖x̂_t‖ / ‖x_t‖
    relative_reconstruction_bias  = Σ_t ‖x̂_t‖² / Σ_t x_t·x̂_t

Each is a ratio of per-sequence sums, so its standard error is the sequence-clustered one of
`sae_bench.metrics.stats`. Σ_t ‖x_t − μ‖² is obtained in one pass from per-sequence Σ‖x‖² and
Σx: Σ_i (Σ_t‖x_t‖² − 2 μ·Σ_t x_t + n_i ‖μ‖²). This module is pure: tensors in, numbers out.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sae_bench.metrics.stats import one_minus, per_unit_ratio, ratio_metrics, ratio_terms_json
from sae_bench.task_api import Metric

_EPS = 1e-12


class ReconstructionAccumulator:
    """Streams (x, x̂, sequence id) batches; `finalize` gives the metrics of the module docstring."""

    def __init__(self, n_sequences: int, d: int):
        self.n_sequences, self.d = n_sequences, d
        z = lambda *shape: torch.zeros(*shape, dtype=torch.float64)  # noqa: E731
        self.tokens = z(n_sequences)
        self.sq_err = z(n_sequences)
        self.sq_norm_x = z(n_sequences)
        self.sum_x = z(n_sequences, d)
        self.cos = z(n_sequences)
        self.norm_ratio = z(n_sequences)
        self.sq_norm_xhat = z(n_sequences)
        self.dot = z(n_sequences)

    def update(self, x: Tensor, x_hat: Tensor, sequence: Tensor) -> None:
        if x.device.type != "cpu":
            self._update_on_device(x, x_hat, sequence)
            return
        x = x.detach().to("cpu", torch.float64)
        x_hat = x_hat.detach().to("cpu", torch.float64)
        seq = sequence.to("cpu", torch.int64)
        norm_x = x.norm(dim=-1)
        norm_xhat = x_hat.norm(dim=-1)
        dot = (x * x_hat).sum(dim=-1)
        self.tokens.index_add_(0, seq, torch.ones_like(norm_x))
        self.sq_err.index_add_(0, seq, ((x - x_hat) ** 2).sum(dim=-1))
        self.sq_norm_x.index_add_(0, seq, norm_x**2)
        self.sum_x.index_add_(0, seq, x)
        self.cos.index_add_(0, seq, dot / (norm_x * norm_xhat).clamp_min(_EPS))
        self.norm_ratio.index_add_(0, seq, norm_xhat / norm_x.clamp_min(_EPS))
        self.sq_norm_xhat.index_add_(0, seq, norm_xhat**2)
        self.dot.index_add_(0, seq, dot)

    def _update_on_device(self, x: Tensor, x_hat: Tensor, sequence: Tensor) -> None:
        """The same sums for inputs on an accelerator: reduced there in float64 (per row, then per
        sequence), so only [n_sequences_in_batch, d + 7] values cross to the CPU, not [N, d] twice."""
        x = x.detach().to(torch.float64)
        x_hat = x_hat.detach().to(torch.float64)
        sequences, local = torch.unique(sequence.to(x.device, torch.int64), return_inverse=True)
        norm_x = x.norm(dim=-1)
        norm_xhat = x_hat.norm(dim=-1)
        dot = (x * x_hat).sum(dim=-1)
        rows = torch.stack([torch.ones_like(norm_x), ((x - x_hat) ** 2).sum(dim=-1), norm_x**2,
                            dot / (norm_x * norm_xhat).clamp_min(_EPS), norm_xhat / norm_x.clamp_min(_EPS),
                            norm_xhat**2, dot], dim=1)
        per_seq = torch.zeros(sequences.shape[0], rows.shape[1], dtype=torch.float64, device=x.device)
        per_seq = per_seq.index_add_(0, local, rows).cpu()
        sum_x = torch.zeros(sequences.shape[0], x.shape[1], dtype=torch.float64, device=x.device)
        sum_x = sum_x.index_add_(0, local, x).cpu()
        seq = sequences.cpu()
        for column, target in enumerate((self.tokens, self.sq_err, self.sq_norm_x, self.cos, self.norm_ratio,
                                         self.sq_norm_xhat, self.dot)):
            target.index_add_(0, seq, per_seq[:, column])
        self.sum_x.index_add_(0, seq, sum_x)

    def centred_sq_norm(self) -> Tensor:
        """Per-sequence Σ_t ‖x_t − μ‖² with μ the global mean over kept tokens."""
        total = self.tokens.sum()
        if total == 0:
            return torch.zeros_like(self.tokens)
        mu = self.sum_x.sum(dim=0) / total
        return self.sq_norm_x - 2 * self.sum_x @ mu + self.tokens * (mu @ mu)

    def ratio_terms(self) -> dict[str, tuple[Tensor, Tensor, str]]:
        """Per-sequence (numerator, denominator, reason if undefined) of every metric: each is Σa/Σb."""
        no_tokens = "no kept tokens"
        centred = self.centred_sq_norm()
        no_variance = "activations have zero variance about their mean: fvu is undefined"
        return {
            "mse": (self.sq_err / self.d, self.tokens, no_tokens),
            "fvu": (self.sq_err, centred, no_variance),
            "explained_variance": (centred - self.sq_err, centred, no_variance),  # = 1 − fvu
            "cossim": (self.cos, self.tokens, no_tokens),
            "l2_ratio": (self.norm_ratio, self.tokens, no_tokens),
            "relative_reconstruction_bias": (self.sq_norm_xhat, self.dot,
                                             "Σ x·x̂ is zero: the bias ratio is undefined"),
        }

    def finalize(self) -> dict[str, Metric]:
        metrics = ratio_metrics(self.ratio_terms())
        fvu = metrics["fvu"]  # explained_variance is exactly 1 − fvu (not a separately rounded ratio)
        metrics["explained_variance"] = one_minus(fvu)
        return metrics

    def per_sequence(self) -> dict[str, list[float | None]]:
        """Per-sequence values of the per-token averages (for the distribution plots)."""
        return {
            "mse": per_unit_ratio(self.sq_err / self.d, self.tokens),
            "cossim": per_unit_ratio(self.cos, self.tokens),
            "l2_ratio": per_unit_ratio(self.norm_ratio, self.tokens),
        }

    def per_sequence_terms(self) -> dict[str, dict[str, list[float]]]:
        """`ratio_terms` as JSON, for paired comparisons (`sae_bench.pairing`)."""
        return ratio_terms_json(self.ratio_terms())


def reconstruction_metrics(x: Tensor, x_hat: Tensor, sequence: Tensor | None = None) -> dict[str, Metric]:
    """One-shot metrics for x, x̂ [N, d]; `sequence` [N] groups tokens (default: each its own)."""
    if sequence is None:
        sequence = torch.arange(x.shape[0])
    n_sequences = int(sequence.max()) + 1 if sequence.numel() else 0
    acc = ReconstructionAccumulator(n_sequences, x.shape[-1])
    acc.update(x, x_hat, sequence)
    return acc.finalize()
