"""Evaluation corpora: texts from `datasets` (local files or hub ids) tokenised into a fixed batch.

One document per sequence, BOS first, truncated to `seq_len`, right-padded. The corpus hash is
computed over the selected texts themselves (not the file path), so the same texts give the same
hash wherever they live. This module never runs a model.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from sae_bench.context import TokenizedCorpus
from sae_bench.errors import DataError

_LOCAL_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}


def load_texts(ref: str | os.PathLike, *, split: str = "train", column: str = "text",
               max_documents: int | None = None, revision: str | None = None) -> list[str]:
    """Texts of a local file (jsonl/json/csv/parquet/txt) or a hub dataset id."""
    import datasets

    path = Path(ref)
    try:
        if path.exists():
            builder = _LOCAL_BUILDERS.get(path.suffix.lower())
            if builder is None:
                raise DataError(path, f"unsupported corpus file type {path.suffix!r} "
                                      f"(use one of {', '.join(sorted(_LOCAL_BUILDERS))})")
            dataset = datasets.load_dataset(builder, data_files=str(path), split="train")
        else:
            dataset = datasets.load_dataset(str(ref), split=split, revision=revision)
    except DataError:
        raise
    except Exception as exc:  # datasets raises many kinds; the user needs one line
        def first(e):
            return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"

        why = first(exc) + (f" ({first(exc.__cause__)})" if exc.__cause__ is not None else "")  # the parse error itself
        raise DataError(ref, f"cannot load corpus: {why}") from exc
    if column not in dataset.column_names:
        raise DataError(ref, f"corpus has no column {column!r} (columns: {', '.join(dataset.column_names)})")
    texts = dataset[column]
    if max_documents is not None:
        texts = texts[:max_documents]
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise DataError(ref, f"row {bad} of column {column!r} is not a string")
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise DataError(ref, "corpus has no non-empty texts")
    return texts


def texts_hash(texts: list[str], *, column: str = "text") -> str:
    digest = hashlib.sha256(json.dumps({"column": column}).encode())
    for text in texts:
        digest.update(hashlib.sha256(text.encode("utf-8")).digest())
    return digest.hexdigest()


def tokenizer_id(tokenizer) -> str:
    """A stable identity for a tokenizer: its name plus a hash of its vocabulary."""
    vocab = tokenizer.get_vocab()
    digest = hashlib.sha256(json.dumps(sorted(vocab.items()), ensure_ascii=False).encode()).hexdigest()[:16]
    return f"{getattr(tokenizer, 'name_or_path', '') or type(tokenizer).__name__}@{digest}"


def tokenize(texts: list[str], tokenizer, *, seq_len: int, corpus_id: str, column: str = "text") -> TokenizedCorpus:
    """Tokenise each text to one sequence: BOS + tokens, truncated to seq_len, right-padded."""
    if seq_len < 2:
        raise DataError(f"seq_len={seq_len}", "seq_len must be at least 2")
    bos, pad, eos = tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id
    if pad is None:
        pad = eos if eos is not None else 0
    rows = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
        if bos is not None and (not ids or ids[0] != bos):
            ids = [bos] + ids
        rows.append(ids[:seq_len])
    input_ids = torch.full((len(rows), seq_len), pad, dtype=torch.int64)
    attention_mask = torch.zeros((len(rows), seq_len), dtype=torch.int64)
    for i, ids in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
        attention_mask[i, : len(ids)] = 1
    keep = attention_mask.bool()
    for special in {bos, eos, tokenizer.pad_token_id} - {None}:
        keep &= input_ids != special
    return TokenizedCorpus(
        corpus_id=str(corpus_id),
        corpus_hash=texts_hash(texts, column=column),
        tokenizer_id=tokenizer_id(tokenizer),
        input_ids=input_ids,
        attention_mask=attention_mask,
        keep_mask=keep,
        seq_len=seq_len,
    )


def load_corpus(ref: str | os.PathLike, tokenizer, *, seq_len: int = 128, split: str = "train",
                column: str = "text", max_documents: int | None = None,
                revision: str | None = None) -> TokenizedCorpus:
    """Load and tokenise a corpus in one call."""
    texts = load_texts(ref, split=split, column=column, max_documents=max_documents, revision=revision)
    return tokenize(texts, tokenizer, seq_len=seq_len, corpus_id=str(ref), column=column)
