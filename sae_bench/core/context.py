"""What a task gets to work with: the model, the hookpoint, the tokens, and shared activations.

One EvalContext is built per (model, hookpoint, corpus) and shared by every task and every
checkpoint evaluated there, so the model runs once per batch of tokens, not once per task.
`shared` memoises work that does not depend on the checkpoint (clean-run losses, ablation
baselines). The context never loads checkpoints and never writes results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, NamedTuple

import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from sae_bench.models.adapter import ModelAdapter


@dataclass
class TokenizedCorpus:
    """A fixed set of token sequences and which positions count.

    keep_mask[b, t] is True for positions evaluated by every metric: attended, and not BOS, pad
    or EOS wherever they stand (gemma-loupe excluded BOS in training; a packed row's separators
    are BOS too). Left-aligned: padding only at the end. `packing` says how documents became rows
    (sae_bench.inputs.packing), `document_kind` whether they were texts or pre-tokenized token ids.
    """

    corpus_id: str
    corpus_hash: str  # sha256 over the selected documents, column, kind and packing; independent of tokenizer
    tokenizer_id: str
    input_ids: Tensor  # [N, T] int64
    attention_mask: Tensor  # [N, T] int64 (1 = real token)
    keep_mask: Tensor  # [N, T] bool
    seq_len: int
    packing: str = "document"  # "document" (one per row) or "pack" (sae_bench.inputs.packing)
    document_kind: str = "text"  # "text" or "token_ids" (a pre-tokenized corpus)

    @property
    def n_sequences(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.attention_mask.sum())

    @property
    def n_kept(self) -> int:
        return int(self.keep_mask.sum())

    def batches(self, batch_size: int) -> Iterator[tuple[slice, Tensor, Tensor, Tensor]]:
        """(rows, input_ids, attention_mask, keep_mask) in fixed order."""
        for start in range(0, self.n_sequences, batch_size):
            rows = slice(start, min(start + batch_size, self.n_sequences))
            yield rows, self.input_ids[rows], self.attention_mask[rows], self.keep_mask[rows]

    def describe(self) -> dict[str, Any]:
        return {"id": self.corpus_id, "hash": self.corpus_hash, "tokenizer": self.tokenizer_id,
                "seq_len": self.seq_len, "n_sequences": self.n_sequences, "packing": self.packing,
                "documents": self.document_kind}


class ActivationBatch(NamedTuple):
    """Kept activation vectors [n, d] (float32) and where each came from."""

    x: Tensor
    sequence: Tensor  # [n] row in the corpus
    position: Tensor  # [n] token position (for pooled sources: -1)


@dataclass
class EvalContext:
    """Everything tasks share at one hookpoint."""

    model: "ModelAdapter"
    hookpoint: str  # canonical hookpoint name (or models.POOLED_HOOKPOINT)
    corpus: TokenizedCorpus
    activations: Any  # sae_bench.activations.ActivationSource
    device: torch.device = torch.device("cpu")
    seed: int = 0
    resources: dict[str, Path] = field(default_factory=dict)  # optional data files by role
    shared: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 8  # sequences per model forward
    show_progress: bool = True
    # Transcoders: the site their output predicts (e.g. "layers.3.mlp_out") and its activations, in
    # the same order as `activations` (the transcoder's inputs). None for SAEs.
    output_hookpoint: str | None = None
    target_activations: Any = None

    @property
    def is_pooled(self) -> bool:
        return bool(getattr(self.activations, "pooled", False))

    @property
    def splice_hookpoint(self) -> str:
        """Where a reconstruction replaces the model's activations: the output site for transcoders."""
        return self.output_hookpoint or self.hookpoint

    @property
    def splice_activations(self) -> Any:
        """The activations the reconstruction is compared with and replaces (the output site's for transcoders)."""
        return self.target_activations if self.target_activations is not None else self.activations

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """Compute once per context (i.e. once per hookpoint), reuse for every checkpoint."""
        if key not in self.shared:
            self.shared[key] = compute()
        return self.shared[key]

    def generator(self, offset: int = 0) -> torch.Generator:
        """A seeded RNG so every source of randomness derives from the recorded seed."""
        return torch.Generator().manual_seed(self.seed + offset)
