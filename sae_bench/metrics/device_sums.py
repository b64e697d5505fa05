"""Per-unit (per-sequence) running sums that live on the device holding the data.

Metric accumulators add per-token quantities into per-sequence sums batch after batch. Copying
every batch's row quantities to the CPU to add them there in float64 makes the GPU wait for the
host (a sync per batch) and bounds throughput; here the sums stay where the data are:

  * in float64 on devices that have it (CPU, CUDA): the same arithmetic as a CPU float64 sum
    (only the order of additions may differ on a GPU, ~1e-16 relative);
  * in float32 with Neumaier compensation on devices without float64 (e.g. Apple MPS): each
    batch's contribution is added to a float32 running sum and the rounding error of that
    addition is kept in a second float32 tensor, so the total agrees with float64 summation to
    about the float32 rounding of one batch's contribution (~1e-7 relative).

`total()` hands back CPU float64, once, when the metrics are computed. This module never decides
what is summed; it only keeps sums.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor


@functools.lru_cache(maxsize=16)
def _has_float64(device_type: str) -> bool:
    if device_type in ("cpu", "cuda"):
        return True
    try:
        torch.zeros(1, dtype=torch.float64, device=device_type)
        return True
    except (RuntimeError, TypeError):
        return False


def has_float64(device: torch.device | str) -> bool:
    """Whether tensors of dtype float64 can live on `device`."""
    return _has_float64(torch.device(device).type)


def accumulation_dtype(device: torch.device | str, compensated: bool | None = None) -> torch.dtype:
    """float64 where the device has it (unless `compensated` asks for the float32 path), else float32."""
    if compensated is None:
        compensated = not has_float64(device)
    return torch.float32 if compensated else torch.float64


class SegmentSums:
    """Sums [n, *shape] indexed by unit (sequence), on `device`; see the module docstring.

    `compensated`: None picks float64 where the device has it; True forces the compensated
    float32 path (tests run it on the CPU to check it against float64)."""

    def __init__(self, n: int, *shape: int, device: torch.device | str = "cpu", compensated: bool | None = None):
        self.device = torch.device(device)
        self.dtype = accumulation_dtype(self.device, compensated)
        self.compensated = self.dtype == torch.float32
        self.sum = torch.zeros(n, *shape, dtype=self.dtype, device=self.device)
        self.error = torch.zeros_like(self.sum) if self.compensated else None

    def add(self, index: Tensor, values: Tensor) -> None:
        """sums[index[i]] += values[i] for every row i."""
        index = index.to(self.device, torch.int64)
        values = values.to(self.device, self.dtype)
        if not self.compensated:
            self.sum.index_add_(0, index, values)
            return
        part = torch.zeros_like(self.sum).index_add_(0, index, values)
        total = self.sum + part
        # Neumaier: the low bits lost by `total` come from whichever addend is smaller in magnitude
        self.error += torch.where(self.sum.abs() >= part.abs(), (self.sum - total) + part, (part - total) + self.sum)
        self.sum = total

    def total(self) -> Tensor:
        """The sums as CPU float64."""
        if not self.compensated:
            return self.sum.to("cpu", torch.float64)
        return self.sum.to("cpu", torch.float64) + self.error.to("cpu", torch.float64)
