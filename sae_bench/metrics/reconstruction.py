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

from sae_bench.metrics.device_sums import SegmentSums
from sae_bench.metrics.stats import one_minus, per_unit_ratio, ratio_metrics, ratio_terms_json
from sae_bench.core.task_api import Metric

_EPS = 1e-12


_SUMS = ("tokens", "sq_err", "sq_norm_x", "cos", "norm_ratio", "sq_norm_xhat", "dot")


class ReconstructionAccumulator:
    """Streams (x, x̂, sequence id) batches; `finalize` gives the metrics of the module docstring.

    The per-sequence sums live on the device of the first batch (`SegmentSums`: float64 where the
    device has it, compensated float32 otherwise), so an accelerator never waits for the host
    between batches; the attributes (`tokens`, `sq_err`, ..., `sum_x`) read them back as CPU float64.
    `compensated=True` forces the float32 path (for tests)."""

    def __init__(self, n_sequences: int, d: int, *, compensated: bool | None = None):
        self.n_sequences, self.d = n_sequences, d
        self._compensated = compensated
        self._sums: dict[str, SegmentSums] | None = None

    def _sums_on(self, device: torch.device) -> dict[str, SegmentSums]:
        if self._sums is None:
            self._sums = {name: SegmentSums(self.n_sequences, device=device, compensated=self._compensated)
                          for name in _SUMS}
            self._sums["sum_x"] = SegmentSums(self.n_sequences, self.d, device=device, compensated=self._compensated)
        return self._sums

    def update(self, x: Tensor, x_hat: Tensor, sequence: Tensor) -> None:
        sums = self._sums_on(x.device)
        dtype = sums["tokens"].dtype
        x = x.detach().to(sums["tokens"].device, dtype)
        x_hat = x_hat.detach().to(x.device, dtype)
        seq = sequence.to(x.device, torch.int64)
        norm_x = x.norm(dim=-1)
        norm_xhat = x_hat.norm(dim=-1)
        dot = (x * x_hat).sum(dim=-1)
        rows = {"tokens": torch.ones_like(norm_x), "sq_err": ((x - x_hat) ** 2).sum(dim=-1), "sq_norm_x": norm_x**2,
                "cos": dot / (norm_x * norm_xhat).clamp_min(_EPS), "norm_ratio": norm_xhat / norm_x.clamp_min(_EPS),
                "sq_norm_xhat": norm_xhat**2, "dot": dot, "sum_x": x}
        for name, values in rows.items():
            sums[name].add(seq, values)

    def _total(self, name: str) -> Tensor:
        if self._sums is None:
            shape = (self.n_sequences, self.d) if name == "sum_x" else (self.n_sequences,)
            return torch.zeros(shape, dtype=torch.float64)
        return self._sums[name].total()

    tokens = property(lambda self: self._total("tokens"))
    sq_err = property(lambda self: self._total("sq_err"))
    sq_norm_x = property(lambda self: self._total("sq_norm_x"))
    sum_x = property(lambda self: self._total("sum_x"))
    cos = property(lambda self: self._total("cos"))
    norm_ratio = property(lambda self: self._total("norm_ratio"))
    sq_norm_xhat = property(lambda self: self._total("sq_norm_xhat"))
    dot = property(lambda self: self._total("dot"))

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
        """`ratio_terms` as JSON, for paired comparisons (`sae_bench.analysis.pairing`)."""
        return ratio_terms_json(self.ratio_terms())


def reconstruction_metrics(x: Tensor, x_hat: Tensor, sequence: Tensor | None = None) -> dict[str, Metric]:
    """One-shot metrics for x, x̂ [N, d]; `sequence` [N] groups tokens (default: each its own)."""
    if sequence is None:
        sequence = torch.arange(x.shape[0])
    n_sequences = int(sequence.max()) + 1 if sequence.numel() else 0
    acc = ReconstructionAccumulator(n_sequences, x.shape[-1])
    acc.update(x, x_hat, sequence)
    return acc.finalize()
