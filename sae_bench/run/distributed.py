"""Data parallelism under `torchrun`: shard batches of sequences across ranks, gather results in order.

Under `torchrun --nproc_per_node N sae-bench run ...` every rank loads the model and the
checkpoints, runs the model forwards for its share of the batches (batch i goes to rank
i mod N), and the per-batch results are gathered back into corpus order on every rank. Every
metric is then reduced from exactly the same per-sequence numbers, in the same order, as in a
single process, so the values are identical, not merely close. Only rank 0 writes files.

Without torchrun (WORLD_SIZE unset or 1) every function here is a no-op pass-through. This
module never computes a metric and never touches files.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Iterator, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_writer() -> bool:
    """Only rank 0 writes results, caches and prints tables."""
    return rank() == 0


def init_from_env(device: str = "cpu") -> bool:
    """Join the process group torchrun describes in the environment; False when not under torchrun.

    gloo for CPU runs, nccl for CUDA; a CUDA rank uses the GPU of its LOCAL_RANK."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return True


def local_device(device: str) -> str:
    """`cuda` becomes this rank's GPU (`cuda:<LOCAL_RANK>`) under torchrun; anything else is unchanged."""
    if device == "cuda" and world_size() > 1:
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


def shard(items: Iterable[T]) -> Iterator[tuple[int, T]]:
    """(index, item) for the items this rank handles: index mod world_size == rank."""
    size, me = world_size(), rank()
    for index, item in enumerate(items):
        if index % size == me:
            yield index, item


def gather_ordered(local: list[tuple[int, Any]]) -> list[Any]:
    """Every rank's (index, value) pairs, merged and sorted by index, on every rank."""
    if world_size() == 1:
        return [value for _, value in sorted(local, key=lambda pair: pair[0])]
    parts: list[list[tuple[int, Any]] | None] = [None] * world_size()
    dist.all_gather_object(parts, _to_cpu(local))
    merged = [pair for part in parts for pair in (part or [])]
    indices = [index for index, _ in merged]
    if len(set(indices)) != len(indices):
        raise RuntimeError("distributed gather: two ranks returned the same batch")
    return [value for _, value in sorted(merged, key=lambda pair: pair[0])]


def from_writer(value: T) -> T:
    """Rank 0's `value` on every rank (decisions that read files, so all ranks take the same branch)."""
    if world_size() == 1:
        return value
    box = [value if is_writer() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {key: _to_cpu(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(value) for value in obj)
    return obj
