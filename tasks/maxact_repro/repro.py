"""Re-encode the contexts of a max-activation parquet and score how well they reproduce.

Two ways to re-encode an example, chosen per example:
  * exact: the file records doc_id and start/end offsets (our own `maxact build` does) and the
    given corpus holds that document with exactly the stored tokens at those offsets. The
    document's prefix up to the window's end is re-run (a causal model's activations at a
    position depend only on the prefix), so the numbers reproduce up to float rounding.
  * windows: otherwise (gemma-loupe's files have no offsets) the stored token strings are mapped
    back to ids and BOS + window is run alone. The stored windows were cut from longer
    documents, so the model now sees less context and activations change: this is why the
    scores are tolerances and rank statistics, never equality, and the notes say so.
Contexts are deduplicated across features (one forward per distinct document prefix or window,
reading every feature that refers to it) and batched; under torchrun each rank re-encodes its
share of the batches and the scores are gathered back in batch order. A window with token
strings the tokenizer does not know is reported and not scored (never encoded with `<unk>`).
Scores are defined in `sae_bench.metrics.maxact`. This module never writes files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from sae_bench.core.progress import tqdm

from sae_bench.run import distributed
from sae_bench.core.context import TokenizedCorpus
from sae_bench.core.errors import DataError
from sae_bench.tasks.maxact_repro.encode import feature_activations
from sae_bench.tasks.maxact_repro.schema import MaxActExample, MaxActTable
from sae_bench.tasks.maxact_repro.tokens import TokenMapper
from sae_bench.metrics.maxact import ExampleScore, FeatureScore, Tolerances, score_example, score_features, summarize
from sae_bench.core.task_api import Metric

WINDOWS_NOTE = ("{n} of {total} examples were re-encoded from their stored window alone (BOS + window): the "
                "windows are cut from longer documents, so the model sees less context than when the examples "
                "were recorded and activations change; reproduction is judged with tolerances (peak relative "
                "error <= {tol_rel}) and rank statistics (Spearman >= {tol_rho}), not equality")


@dataclass(frozen=True)
class ReproSettings:
    tolerances: Tolerances = Tolerances()
    batch_size: int = 8  # contexts per model forward
    show_progress: bool = True


@dataclass
class ReproResult:
    mode: str  # "exact" | "windows" | "mixed" | "none"
    examples: list[ExampleScore]
    features: list[FeatureScore]
    metrics: dict[str, Metric]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)
    unmappable: list[dict[str, Any]] = field(default_factory=list)  # first few unmappable contexts


def corpus_mismatch(table: MaxActTable, corpus: TokenizedCorpus | None) -> str | None:
    """Why `corpus` cannot serve exact re-runs of `table` (None if it may: tokens are still checked)."""
    if not table.has_offsets:
        return "the file records no document ids and offsets"
    if corpus is None:
        return "no corpus was given"
    meta = table.metadata
    if meta.get("corpus_hash") and meta["corpus_hash"] != corpus.corpus_hash:
        return f"the file was built on corpus {meta['corpus_hash'][:12]}, the given corpus is {corpus.corpus_hash[:12]}"
    vocab = corpus.tokenizer_id.rsplit("@", 1)[-1]
    if meta.get("tokenizer_vocab_sha") and meta["tokenizer_vocab_sha"] != vocab:
        return "the file was built with a different tokenizer vocabulary"
    return None


class _Context:
    __slots__ = ("ids", "features", "members")

    def __init__(self, ids: list[int]):
        self.ids = ids
        self.features: set[int] = set()
        self.members: list[tuple[MaxActExample, int]] = []  # (example, position of its window's first token)


def _plan(table: MaxActTable, sae, tokenizer, corpus: TokenizedCorpus | None, exact_ok: bool):
    """Group examples into distinct contexts; returns (contexts by key, counts, unmappable examples)."""
    mapper = TokenMapper(tokenizer)
    bos = getattr(tokenizer, "bos_token_id", None)
    contexts: dict[tuple, _Context] = {}
    counts = {"examples_exact": 0, "examples_window": 0, "examples_unmappable": 0, "examples_offset_mismatch": 0}
    unmappable: list[dict[str, Any]] = []
    lengths = corpus.attention_mask.sum(dim=1) if (exact_ok and corpus is not None) else None
    for ex in table.examples:
        if ex.feature >= sae.d_sae:
            raise DataError(table.path, f"row {ex.row}, column 'feature': {ex.feature} outside the SAE's "
                                        f"{sae.d_sae} latents")
        if lengths is not None and ex.has_offsets:
            ok = ex.doc_id < corpus.n_sequences and ex.end <= int(lengths[ex.doc_id])
            if ok:
                stored = mapper.tokens_of(corpus.input_ids[ex.doc_id, ex.start:ex.end].tolist())
                ok = tuple(stored) == ex.context_tokens
            if ok:
                ctx = contexts.setdefault(("doc", ex.doc_id), _Context([]))
                if len(ctx.ids) < ex.end:
                    ctx.ids = corpus.input_ids[ex.doc_id, :ex.end].tolist()
                ctx.features.add(ex.feature)
                ctx.members.append((ex, ex.start))
                counts["examples_exact"] += 1
                continue
            counts["examples_offset_mismatch"] += 1
        mapped = mapper.map(ex.context_tokens)
        if mapped.ids is None:
            counts["examples_unmappable"] += 1
            if len(unmappable) < 20:
                unmappable.append({"row": ex.row, "feature": ex.feature, "unknown_tokens": mapped.unknown[:5]})
            continue
        ids = mapped.ids
        offset = 0
        if bos is not None and ids[0] != bos:
            ids, offset = [bos] + ids, 1
        ctx = contexts.setdefault(("win", tuple(ids)), _Context(ids))
        ctx.features.add(ex.feature)
        ctx.members.append((ex, offset))
        counts["examples_window"] += 1
    return contexts, counts, unmappable


def reproduce(table: MaxActTable, sae, model, hookpoint: str, *, corpus: TokenizedCorpus | None = None,
              settings: ReproSettings = ReproSettings()) -> ReproResult:
    """Re-encode every example of `table` with `sae` at `hookpoint` of `model` and score it."""
    tol = settings.tolerances
    reason = corpus_mismatch(table, corpus)
    contexts, counts, unmappable = _plan(table, sae, model.tokenizer, corpus, reason is None)
    pad = getattr(model.tokenizer, "pad_token_id", None)
    pad = 0 if pad is None else pad
    # Longest first, then first appearance: similar lengths share a batch; order is deterministic.
    ordered = sorted(contexts.values(), key=lambda c: -len(c.ids))
    batches = [ordered[i:i + settings.batch_size] for i in range(0, len(ordered), settings.batch_size)]
    local = []  # (batch index, (scores, tokens)) for this rank's batches (all of them without torchrun)
    mine = list(distributed.shard(batches))
    for index, batch in tqdm(mine, desc="maxact: re-encode", disable=not settings.show_progress):
        batch_scores: list[ExampleScore] = []
        length = max(len(c.ids) for c in batch)
        ids = torch.full((len(batch), length), pad, dtype=torch.int64)
        mask = torch.zeros((len(batch), length), dtype=torch.int64)
        for b, c in enumerate(batch):
            ids[b, : len(c.ids)] = torch.tensor(c.ids)
            mask[b, : len(c.ids)] = 1
        resid = model.residual(hookpoint, ids, mask).float().cpu()
        feats = sorted(set().union(*(c.features for c in batch)))
        column = {f: j for j, f in enumerate(feats)}
        # One SAE call for the whole batch: every context's real tokens, the union of its features.
        acts = feature_activations(sae, resid[mask.bool()], torch.tensor(feats))
        starts = [0]
        for c in batch:
            starts.append(starts[-1] + len(c.ids))
        for b, c in enumerate(batch):
            for ex, first in c.members:
                lo = starts[b] + first
                new = acts[lo: lo + len(ex.context_tokens), column[ex.feature]].tolist()
                batch_scores.append(score_example(ex.feature, ex.token_activations, new, ex.activation,
                                                  ex.peak_position, tol))
        local.append((index, (batch_scores, starts[-1])))
    gathered = distributed.gather_ordered(local)  # batch order on every rank, as in one process
    scores = [score for batch_scores, _ in gathered for score in batch_scores]
    tokens_encoded = sum(tokens for _, tokens in gathered)
    features = score_features(scores, tol)
    metrics = summarize(features, scores)
    total = len(table.examples)
    counts = {"examples": total, "examples_scored": len(scores), **counts, "contexts": len(contexts),
              "tokens_encoded": tokens_encoded, "features": len(table.features()), "features_scored": len(features)}
    n_exact, n_window = counts["examples_exact"], counts["examples_window"]
    mode = ("none" if not scores else "exact" if n_window == 0 else "windows" if n_exact == 0 else "mixed")
    notes = []
    if n_exact:
        notes.append(f"{n_exact} of {total} examples re-ran their exact document prefix (doc_id and offsets) "
                     f"from the corpus: differences are float rounding only")
    if n_window:
        notes.append(WINDOWS_NOTE.format(n=n_window, total=total, tol_rel=tol.tol_rel, tol_rho=tol.tol_rho))
        if reason and table.has_offsets:
            notes.append(f"exact re-runs were not possible: {reason}")
    if counts["examples_offset_mismatch"]:
        notes.append(f"{counts['examples_offset_mismatch']} examples' offsets did not match the corpus tokens; "
                     f"they were re-encoded from their windows")
    if counts["examples_unmappable"]:
        first = unmappable[0]
        notes.append(f"{counts['examples_unmappable']} examples hold token strings the tokenizer does not know "
                     f"(e.g. row {first['row']}: {first['unknown_tokens'][0]!r}); they were not scored")
    return ReproResult(mode=mode, examples=scores, features=features, metrics=metrics, counts=counts,
                       notes=notes, unmappable=unmappable)
