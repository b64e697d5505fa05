"""Build a max-activation parquet (gemma-loupe's schema plus document ids and offsets) from a corpus.

Two passes over a `TokenizedCorpus` (one document per sequence, BOS first):
  1. stream every sequence through the model to the hookpoint and the SAE; per feature keep the
     top-n documents by the feature's maximum over the document's kept tokens (BOS/pad/EOS
     excluded), one example per document, ties to the lower document id;
  2. re-run only the chosen documents, find each example's peak token (first maximum over kept
     tokens) and cut a window of ±window tokens around it (clipped to the kept tokens).
Rows are written in a fixed order (feature ascending, then rank), with document id, start/end
token offsets (end exclusive, BOS at 0) and the peak position, and the checkpoint's sha256 and
hookpoint in the file metadata, so that `repro` can re-run exactly the same prefix. No timestamps
or absolute paths are written unless the caller passes them as labels, so rebuilding gives the
same bytes. This module never scores anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from sae_bench.core.progress import tqdm

from sae_bench.core.context import TokenizedCorpus
from sae_bench.core.errors import HookpointError, InputError
from sae_bench.tasks.maxact_repro.encode import feature_activations
from sae_bench.tasks.maxact_repro.schema import MaxActExample, write_maxact

POOLED = "pooled_final_norm"


@dataclass(frozen=True)
class BuildSettings:
    top_n: int = 20  # examples per feature
    window: int = 16  # tokens kept on each side of the peak
    features: Sequence[int] | None = None  # latent indices to scan (None: every latent)
    batch_size: int = 8  # sequences per model forward
    show_progress: bool = True

    def check(self, d_sae: int) -> list[int]:
        if self.top_n < 1:
            raise InputError("--top-n", f"must be at least 1, got {self.top_n}")
        if self.window < 0:
            raise InputError("--window", f"must be >= 0, got {self.window}")
        if self.batch_size < 1:
            raise InputError("--batch-size", f"must be at least 1, got {self.batch_size}")
        features = list(range(d_sae)) if self.features is None else sorted(set(int(f) for f in self.features))
        bad = [f for f in features if not 0 <= f < d_sae]
        if bad:
            raise InputError("--features", f"feature {bad[0]} outside the SAE's {d_sae} latents")
        if not features:
            raise InputError("--features", "no features selected")
        return features


def _kept_span(keep_row: torch.Tensor) -> tuple[int, int] | None:
    """(first, last) kept position of one sequence, or None if it keeps nothing."""
    where = torch.nonzero(keep_row).flatten()
    return (int(where[0]), int(where[-1])) if where.numel() else None


def _top_documents(model, sae, hookpoint: str, corpus: TokenizedCorpus, features: torch.Tensor,
                   settings: BuildSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """Pass 1: (values [n, m], docs [n, m]) of the top-n documents per feature, sorted best first."""
    m = features.numel()
    best_values = torch.empty(0, m)
    best_docs = torch.empty(0, m, dtype=torch.int64)
    batches = corpus.batches(settings.batch_size)
    total = -(-corpus.n_sequences // settings.batch_size)
    for rows, ids, mask, keep in tqdm(batches, total=total, desc="maxact: scan", disable=not settings.show_progress):
        resid = model.residual(hookpoint, ids, mask).float().cpu()
        acts = feature_activations(sae, resid[keep], features)  # [kept tokens, m], every sequence at once
        sequence = torch.arange(ids.shape[0])[:, None].expand_as(keep)[keep]
        # Activations are >= 0, so a sequence with no kept token keeps its max at 0 (never selected).
        doc_max = torch.zeros(ids.shape[0], m).scatter_reduce_(0, sequence[:, None].expand_as(acts), acts, "amax")
        docs = torch.arange(rows.start, rows.stop)[:, None].expand(-1, m)
        values = torch.cat([best_values, doc_max])
        all_docs = torch.cat([best_docs, docs])
        # Stable descending sort: among equal values the earlier (lower) document stays first.
        order = torch.sort(values, dim=0, descending=True, stable=True).indices[: settings.top_n]
        best_values = values.gather(0, order)
        best_docs = all_docs.gather(0, order)
    return best_values, best_docs


def collect_examples(model, sae, hookpoint: str, corpus: TokenizedCorpus,
                     settings: BuildSettings = BuildSettings()) -> list[MaxActExample]:
    """The examples of the parquet, in file order (feature ascending, then rank)."""
    if hookpoint == POOLED:
        raise HookpointError(hookpoint, "max-activation examples need per-token activations; the pooled "
                                        "hookpoint has one vector per text")
    features = torch.tensor(settings.check(sae.d_sae), dtype=torch.int64)
    values, docs = _top_documents(model, sae, hookpoint, corpus, features, settings)
    # (feature column, rank) pairs per document, only where the feature fired in that document.
    wanted: dict[int, list[tuple[int, int]]] = {}
    for rank in range(values.shape[0]):
        for col in torch.nonzero(values[rank] > 0).flatten().tolist():
            wanted.setdefault(int(docs[rank, col]), []).append((col, rank))
    tokenizer = model.tokenizer
    found: dict[tuple[int, int], MaxActExample] = {}
    doc_ids = sorted(wanted)
    chunks = [doc_ids[i:i + settings.batch_size] for i in range(0, len(doc_ids), settings.batch_size)]
    for chunk in tqdm(chunks, desc="maxact: windows", disable=not settings.show_progress):
        index = torch.tensor(chunk)
        ids, mask, keep = corpus.input_ids[index], corpus.attention_mask[index], corpus.keep_mask[index]
        length = int(mask.sum(dim=1).max())
        resid = model.residual(hookpoint, ids[:, :length], mask[:, :length]).float().cpu()
        for b, doc in enumerate(chunk):
            span = _kept_span(keep[b])
            if span is None:
                continue
            first, last = span
            cols = sorted({col for col, _ in wanted[doc]})
            acts = feature_activations(sae, resid[b, : last + 1], features[cols])  # [last+1, len(cols)]
            kept = keep[b, : last + 1]
            for j, col in enumerate(cols):
                a = acts[:, j].masked_fill(~kept, float("-inf"))
                peak = int(torch.argmax(a))  # first maximum
                if not a[peak] > 0:
                    continue
                start = max(first, peak - settings.window)
                end = min(last, peak + settings.window) + 1
                window_ids = ids[b, start:end].tolist()
                found[(doc, col)] = MaxActExample(
                    row=-1, feature=int(features[col]), activation=float(acts[peak, j]),
                    token=tokenizer.convert_ids_to_tokens(int(ids[b, peak])),
                    context=tokenizer.decode(window_ids), context_tokens=tuple(tokenizer.convert_ids_to_tokens(window_ids)),
                    token_activations=tuple(float(v) for v in acts[start:end, j]),
                    peak_position=peak - start, doc_id=doc, start=start, end=end)
    examples = []
    for col in range(features.numel()):
        for rank in range(values.shape[0]):
            example = found.get((int(docs[rank, col]), col)) if values[rank, col] > 0 else None
            if example is not None:
                examples.append(example)
    return [MaxActExample(**{**example.__dict__, "row": i}) for i, example in enumerate(examples)]


def build_metadata(sae, hookpoint: str, corpus: TokenizedCorpus, settings: BuildSettings, *,
                   checkpoint_label: str | None = None, model_label: str | None = None,
                   corpus_label: str | None = None) -> dict[str, Any]:
    """What the file records about how it was made (matched by `repro` and the task)."""
    features = settings.check(sae.d_sae)
    return {
        "checkpoint_sha256": sae.metadata.weights_sha256 or "",
        "checkpoint_id": checkpoint_label or sae.metadata.checkpoint_id,
        "hookpoint": hookpoint,
        "d_sae": sae.d_sae,
        "model_id": model_label,
        "corpus_id": corpus_label or corpus.corpus_id,
        "corpus_hash": corpus.corpus_hash,
        "tokenizer_vocab_sha": corpus.tokenizer_id.rsplit("@", 1)[-1],
        "seq_len": corpus.seq_len,
        "n_sequences": corpus.n_sequences,
        "top_n": settings.top_n,
        "window": settings.window,
        "features_scanned": len(features),
        "features_first": features[0],
        "features_last": features[-1],
        "ranking": "per document: max over kept tokens (BOS/pad/EOS excluded); one example per document",
    }


def build_maxact(model, sae, hookpoint: str, corpus: TokenizedCorpus, out: str | os.PathLike,
                 settings: BuildSettings = BuildSettings(), **labels: str | None) -> Path:
    """Collect the examples and write the parquet atomically; returns its path."""
    if hookpoint != POOLED:
        hookpoint = model.resolve_hookpoint(hookpoint).name
    examples = collect_examples(model, sae, hookpoint, corpus, settings)
    return write_maxact(out, examples, build_metadata(sae, hookpoint, corpus, settings, **labels))
