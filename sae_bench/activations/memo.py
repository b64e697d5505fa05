"""Checkpoint-independent work kept on disk beside the activations it was computed from.

A task's per-hookpoint memo (e.g. spliced loss's clean final hidden states and baseline losses)
is a set of named tensors. It is stored as one safetensors file in the activation cache folder of
its hookpoint (whose name already hashes model id + revision, corpus hash, tokenizer, hookpoint,
seq_len and dtype), named by a hash of the task's own key fields (memo version, conventions,
batch size ...). The file's header carries the full key and a sha256 of every tensor's bytes.

Written atomically (temp file + rename). On read, a missing file, a different key, an unreadable
file or a checksum mismatch all mean "not cached": the damaged file is removed and the caller
recomputes. This module never decides what goes into a memo and never computes metrics.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

FORMAT = "sae-bench-memo/1"


def key_hash(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]


def tensors_sha256(tensors: dict[str, Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_memo(path: Path, tensors: dict[str, Tensor], key: dict) -> None:
    """Write `tensors` with `key` and their checksum to `path`, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    metadata = {"format": FORMAT, "key": json.dumps(key, sort_keys=True, default=str),
                "sha256": tensors_sha256(tensors)}
    tmp = path.with_name(f".{path.name}.pid{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_memo(path: Path, key: dict) -> dict[str, Tensor] | None:
    """The tensors stored at `path` for exactly `key`, verified; None (and a damaged file removed) otherwise."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception:  # truncated or garbled: never trusted
        path.unlink(missing_ok=True)
        return None
    if metadata.get("format") != FORMAT or metadata.get("key") != json.dumps(key, sort_keys=True, default=str):
        return None  # another key's file under a colliding name: leave it, recompute
    if metadata.get("sha256") != tensors_sha256(tensors):
        path.unlink(missing_ok=True)
        return None
    return tensors


def disk_memo(activations, name: str, key: dict, compute) -> dict[str, Tensor]:
    """`compute()` (named tensors) kept on disk beside `activations` (an ActivationSource with a
    cache folder: same model, revision, hookpoint and dtype) under `key`; without a cache folder
    (or with None) it is simply computed. A second run or checkpoint at that hookpoint reads it."""
    memo_path = getattr(activations, "memo_path", None)
    path = memo_path(name, key) if memo_path is not None else None
    if path is not None:
        cached = load_memo(path, key)
        if cached is not None:
            return cached
    tensors = compute()
    if path is not None:
        save_memo(path, tensors, key)
    return tensors
