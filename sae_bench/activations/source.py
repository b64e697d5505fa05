"""Activations at one hookpoint, computed once and shared by every task and checkpoint.

The model runs once per batch of sequences; the kept-token vectors (BOS/pad/EOS masked out) are
stored as float32 shards, in memory or in an on-disk cache keyed by everything that determines
them (model id + revision, corpus hash, tokenizer, hookpoint, seq_len, dtype). For the pooled
final-norm source there is one vector per sequence instead of one per kept token.

Cache shards are written atomically and a `complete.json` marker is written last, so an
interrupted extraction leaves reusable whole shards and never a corrupt one. This module never
loads checkpoints and never computes metrics.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor
from sae_bench.core.progress import tqdm

from sae_bench.run import distributed
from sae_bench.core.context import ActivationBatch, TokenizedCorpus
from sae_bench.core.errors import OutputError, output_error
from sae_bench.records.results import atomic_write_text

from sae_bench.models.hookpoints import POOLED_HOOKPOINT  # noqa: F401  (re-exported; defined once there)
CACHE_FORMAT_VERSION = 2  # 2: shards also hold the attended-but-not-kept (BOS/EOS) vectors, "fill"


def cache_key(model_id: str, revision: str | None, corpus: TokenizedCorpus, hookpoint: str,
              dtype: torch.dtype) -> str:
    fields = {
        "format": CACHE_FORMAT_VERSION, "model": model_id, "revision": revision,
        "corpus_hash": corpus.corpus_hash, "tokenizer": corpus.tokenizer_id, "hookpoint": hookpoint,
        "seq_len": corpus.seq_len, "n_sequences": corpus.n_sequences, "dtype": str(dtype),
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]


def _atomic_save_shard(tensors: dict[str, Tensor], path: Path) -> None:
    """Write a cache shard whole or not at all; a full disk or a closed folder is an OutputError."""
    tmp = path.with_name(f".{path.name}.pid{os.getpid()}.tmp")
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise output_error(exc, path, "cannot write activation cache") from None
        if isinstance(exc, Exception) and "No space left" in str(exc):  # safetensors reports I/O as its own error
            raise OutputError(path, "cannot write activation cache: no space left on the device") from None
        raise


class ActivationSource:
    """Kept-token activations of `corpus` at `hookpoint` of `model` (a ModelAdapter)."""

    def __init__(self, model, hookpoint: str, corpus: TokenizedCorpus, *, cache_dir: str | os.PathLike | None = None,
                 batch_size: int = 8, show_progress: bool = True):
        self.model = model
        self.hookpoint = hookpoint
        self.corpus = corpus
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.pooled = hookpoint == POOLED_HOOKPOINT
        self.key = cache_key(model.model_id, model.revision, corpus, hookpoint, model.dtype)
        self.cache_dir = Path(cache_dir) / self.key if cache_dir is not None else None
        self._shards: list[dict[str, Tensor]] | None = None
        self._fill: Tensor | None = None
        self.extraction_seconds = 0.0
        # {batch index: clean final-norm output at the kept positions} when a multi-site pass computed
        # it (`sae_bench.activations.multi_site`); spliced loss reads it instead of a clean suffix run
        self.clean_final: dict[int, Tensor] | None = None

    # ---------------------------------------------------------------- extraction
    def _extract_batch(self, input_ids: Tensor, attention_mask: Tensor, keep: Tensor, rows: slice) -> dict[str, Tensor]:
        device = self.model.device
        ids, mask = input_ids.to(device), attention_mask.to(device)
        sequence_ids = torch.arange(rows.start, rows.stop)
        if self.pooled:
            x = self.model.pooled_final_norm(ids, mask).float().cpu()
            return {"x": x, "sequence": sequence_ids, "position": torch.full_like(sequence_ids, -1)}
        return self.shard_from_residual(self.model.residual(self.hookpoint, ids, mask), attention_mask, keep, rows)

    def shard_from_residual(self, resid: Tensor, attention_mask: Tensor, keep: Tensor, rows: slice) -> dict[str, Tensor]:
        """The cache shard of one corpus batch from the site's [B, T, d] output (also used by the
        one-pass capture of several sites, `sae_bench.activations.multi_site`)."""
        resid = resid.float().cpu()
        sequence_ids = torch.arange(rows.start, rows.stop)
        positions = torch.arange(keep.shape[1]).expand_as(keep)
        return {
            "x": resid[keep],
            "sequence": sequence_ids[:, None].expand_as(keep)[keep],
            "position": positions[keep],
            # BOS/EOS: never evaluated, but a splice keeps their clean residual (spliced loss reads them)
            "fill": resid[attention_mask.bool().cpu() & ~keep],
        }

    def cached_shard(self, index: int) -> dict[str, Tensor] | None:
        """Shard `index` from the on-disk cache, None if absent or damaged (a damaged one is removed)."""
        path = self._shard_path(index) if self.cache_dir is not None else None
        if path is None or not path.exists():
            return None
        try:
            return load_file(str(path))
        except Exception:  # a damaged shard is recomputed, never trusted
            path.unlink(missing_ok=True)
            return None

    def store_shard(self, index: int, shard: dict[str, Tensor]) -> None:
        if self.cache_dir is not None:
            _atomic_save_shard(shard, self._shard_path(index))

    @property
    def is_complete(self) -> bool:
        """In memory, or whole in the on-disk cache (its `complete.json` written): no forward needed."""
        return self._shards is not None or (self.cache_dir is not None and (self.cache_dir / "complete.json").is_file())

    def make_cache_dir(self) -> None:
        if self.cache_dir is not None:
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise output_error(exc, self.cache_dir, "cannot create the activation cache folder") from None

    def adopt(self, local: list[tuple[int, dict[str, Tensor]]], seconds: float) -> None:
        """Take this rank's shards computed elsewhere (a multi-site pass): gathered, marked complete."""
        self._shards = self._finish(local)
        self.extraction_seconds = seconds

    def _finish(self, local: list[tuple[int, dict[str, Tensor]]]) -> list[dict[str, Tensor]]:
        shards = distributed.gather_ordered(local)
        if self.cache_dir is not None and distributed.is_writer():
            atomic_write_text(self.cache_dir / "complete.json", json.dumps(
                {"key": self.key, "hookpoint": self.hookpoint, "shards": len(shards),
                 "corpus_hash": self.corpus.corpus_hash, "model": self.model.model_id}, sort_keys=True) + "\n")
        return shards

    def _shard_path(self, index: int) -> Path:
        return self.cache_dir / f"shard_{index:06d}.safetensors"

    def _load_or_extract(self) -> list[dict[str, Tensor]]:
        import time

        start = time.perf_counter()
        self.make_cache_dir()
        batches = list(self.corpus.batches(self.batch_size))
        local = []  # (batch index, shard) for the batches this rank handles (all of them without torchrun)
        progress = tqdm(list(distributed.shard(batches)), desc=f"activations @ {self.hookpoint}", unit="batch",
                        disable=not self.show_progress, leave=False)
        for index, (rows, ids, mask, keep) in progress:
            shard = self.cached_shard(index)
            if shard is None:
                with torch.no_grad():
                    shard = self._extract_batch(ids, mask, keep, rows)
                self.store_shard(index, shard)
            local.append((index, shard))
        shards = self._finish(local)
        self.extraction_seconds = time.perf_counter() - start
        return shards

    @property
    def shards(self) -> list[dict[str, Tensor]]:
        if self._shards is None:
            self._shards = self._load_or_extract()
        return self._shards

    # ---------------------------------------------------------------- access
    @property
    def n_vectors(self) -> int:
        return sum(int(s["x"].shape[0]) for s in self.shards)

    @property
    def d(self) -> int:
        return int(self.shards[0]["x"].shape[1])

    def batches(self, batch_size: int = 4096, device: torch.device | str | None = None) -> Iterator[ActivationBatch]:
        """Kept activation vectors in a fixed order, `batch_size` at a time."""
        for shard in self.shards:
            x, seq, pos = shard["x"], shard["sequence"], shard["position"]
            for start in range(0, x.shape[0], batch_size):
                part = slice(start, start + batch_size)
                xb = x[part] if device is None else x[part].to(device)
                yield ActivationBatch(xb, seq[part], pos[part])

    def all(self) -> ActivationBatch:
        """Everything at once (small corpora, probes)."""
        return ActivationBatch(*(torch.cat([s[k] for s in self.shards]) for k in ("x", "sequence", "position")))

    def fill_vectors(self, rows: slice) -> Tensor:
        """[n, d] float32 activations of the attended but not kept positions (BOS, EOS) of corpus
        rows `rows`, row-major: what a splice leaves untouched. Taken from the extraction pass, so
        no task needs another forward for them."""
        if self.pooled:
            raise ValueError("the pooled source has no per-position activations")
        if self._fill is None:
            self._fill = torch.cat([s["fill"] for s in self.shards])
        fill_mask = self.corpus.attention_mask.bool() & ~self.corpus.keep_mask
        start = int(fill_mask[:rows.start].sum())
        return self._fill[start:start + int(fill_mask[rows].sum())]

    def memo_path(self, name: str, key: dict) -> Path | None:
        """Where a task keeps its checkpoint-independent memo `name` for `key` beside these
        activations (`sae_bench.activations.memo`); None without an on-disk cache."""
        if self.cache_dir is None:
            return None
        from sae_bench.activations.memo import key_hash

        return self.cache_dir / "memo" / f"{name}-{key_hash(key)}.safetensors"

    def mean(self) -> Tensor:
        """Mean kept activation (float64), used by mean-ablation."""
        total = torch.zeros(self.d, dtype=torch.float64)
        for batch in self.batches():
            total += batch.x.to(torch.float64).sum(dim=0)
        return total / max(self.n_vectors, 1)
