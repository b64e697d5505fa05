"""Evaluation corpora: documents from `datasets` (local files or folders, hub ids) as fixed rows.

A document is a text, or in a pre-tokenized corpus a list of token ids: the chosen column's first
row decides which, and every row must then be the same kind. Texts are tokenised here; token ids
are used verbatim after a check (ints, non-negative, inside the tokenizer's vocabulary, no empty
list). `sae_bench.inputs.packing` arranges the documents into rows (one per row, or packed as the peers
do); then keep_mask marks the positions every metric evaluates: attended, and not BOS, EOS or pad
wherever they stand (a packed row's separators included).

The corpus hash is computed over the selected documents themselves (not the file path), so the
same documents give the same hash wherever they live. It also covers the column, the kind (text
or token ids) and the arrangement, so records and activation caches of a packed or pre-tokenized
corpus never match those of another kind. The hash of a text corpus in `document` mode is the one
earlier versions computed. This module never runs a model.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import NamedTuple

import torch

from sae_bench.core.context import TokenizedCorpus
from sae_bench.core.errors import DataError, InputError
from sae_bench.inputs.input_files import check_utf8, refuse_special
from sae_bench.core.options import boolean
from sae_bench.inputs.packing import DEFAULT_SEQ_LEN, document_rows, pack_rows, packing_problem

_LOCAL_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}
TEXT, TOKEN_IDS = "text", "token_ids"  # the two kinds of document


class Documents(NamedTuple):
    """The selected documents of one corpus: `kind` TEXT (items are str) or TOKEN_IDS (list[int])."""

    kind: str
    items: list
    column: str


def check_corpus_options(packing: str, prepend_bos: bool) -> None:
    """The arrangement options of a direct caller (the runner checks them earlier, on RunConfig)."""
    for name, value, problem in (("packing", packing, packing_problem(packing)),
                                 ("prepend_bos", prepend_bos, boolean(prepend_bos))):
        if problem:
            raise InputError(f"corpus {name} {value!r}", problem)


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _open_dataset(ref: str | os.PathLike, split: str, revision: str | None):
    """A `datasets.Dataset` from a file, a local folder (hub layout or `save_to_disk`) or a hub id."""
    import datasets

    path = Path(ref)
    refuse_special(path, DataError)  # a pipe would block the read; a loop would look like a hub id
    try:
        if path.is_dir():
            if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
                loaded = datasets.load_from_disk(str(path))  # SAELens's pretokenize runner writes this
                if isinstance(loaded, datasets.DatasetDict):
                    if split not in loaded:
                        raise DataError(ref, f"no split {split!r} (splits: {', '.join(loaded)})")
                    loaded = loaded[split]
                return loaded
            return datasets.load_dataset(str(path), split=split)
        if path.exists():
            if path.is_file() and not path.read_bytes()[:1 << 16].strip():  # datasets: "StopIteration:"
                if path.stat().st_size < 1 << 16 or not path.read_bytes().strip():
                    raise DataError(path, "corpus file is empty: no documents")
            builder = _LOCAL_BUILDERS.get(path.suffix.lower())
            if builder is None:
                raise DataError(path, f"unsupported corpus file type {path.suffix!r} "
                                      f"(use one of {', '.join(sorted(_LOCAL_BUILDERS))}, or a dataset folder)")
            if builder != "parquet":  # datasets would decode lazily and raise mid-read
                check_utf8(path, DataError, "corpus")
            return datasets.load_dataset(builder, data_files=str(path), split="train")
        return datasets.load_dataset(str(ref), split=split, revision=revision)
    except DataError:
        raise
    except Exception as exc:  # datasets raises many kinds; the user needs one line
        why = _first_line(exc) + (f" ({_first_line(exc.__cause__)})" if exc.__cause__ is not None else "")
        raise DataError(ref, f"cannot load corpus: {why}") from exc


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_token_lists(ref, column: str, rows: list) -> None:
    """Each row a non-empty list of non-negative ints (the vocabulary is checked with the tokenizer).

    One fractional value makes a JSON reader type the whole column as floats, so the row named is
    the first with an item that is no whole number; a column of whole floats is named at its first."""
    def not_an_int(i: int, j: int, value) -> DataError:
        return DataError(ref, f"row {i} of column {column!r} is not a list of ints: item {j} is {value!r} "
                              f"(a {type(value).__name__})")

    first_float = None
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise DataError(ref, f"row {i} of column {column!r} is not a list of token ids "
                                 f"(a {type(row).__name__})")
        if not row:
            raise DataError(ref, f"row {i} of column {column!r} is an empty list of token ids")
        for j, value in enumerate(row):
            if _is_id(value):
                continue
            if isinstance(value, float) and value.is_integer():
                first_float = first_float or (i, j, value)
                continue
            raise not_an_int(i, j, value)
        if min(row) < 0:
            raise DataError(ref, f"row {i} of column {column!r} holds a negative token id {min(row)}")
    if first_float is not None:
        raise not_an_int(*first_float)


def _mixed_items_problem(ref, column: str) -> str:
    """Why a column whose lists mix JSON types (datasets reads them as `Json` and decodes a string
    "5" into the number 5) is refused: the first item of a local JSON file that is no JSON integer."""
    path = Path(ref)
    if path.is_file() and path.suffix.lower() in (".json", ".jsonl"):
        text = path.read_text(encoding="utf-8")
        try:
            rows = json.loads(text) if path.suffix.lower() == ".json" else \
                [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError:
            rows = []
        for i, row in enumerate(rows if isinstance(rows, list) else []):
            values = row.get(column) if isinstance(row, dict) else None
            for j, value in enumerate(values if isinstance(values, list) else []):
                if not _is_id(value):
                    return (f"row {i} of column {column!r} is not a list of ints: item {j} is {value!r} "
                            f"(a {type(value).__name__}); token ids must be JSON integers")
    return f"column {column!r} mixes value types in its lists; token ids must be JSON integers"


def load_documents(ref: str | os.PathLike, *, split: str = "train", column: str = "text",
                   max_documents: int | None = None, revision: str | None = None) -> Documents:
    """The first `max_documents` documents of `column`: non-empty texts, or checked token-id lists."""
    dataset = _open_dataset(ref, split, revision)
    if column not in dataset.column_names:
        hint = next((f"; a pre-tokenized corpus: --corpus-column {c}" for c in ("input_ids", "tokens")
                     if c in dataset.column_names), "")
        raise DataError(ref, f"corpus has no column {column!r} (columns: {', '.join(dataset.column_names)}{hint})")
    if max_documents is not None:
        dataset = dataset.select(range(min(max_documents, len(dataset))))
    if type(getattr(dataset.features.get(column), "feature", None)).__name__ == "Json":
        raise DataError(ref, _mixed_items_problem(ref, column))  # datasets would turn "5" into 5
    items = list(dataset[column])
    if not items:
        raise DataError(ref, "corpus has no documents")
    if isinstance(items[0], list):
        _check_token_lists(ref, column, items)
        return Documents(TOKEN_IDS, items, column)
    bad = next((i for i, t in enumerate(items) if not isinstance(t, str)), None)
    if bad is not None:
        raise DataError(ref, f"row {bad} of column {column!r} is not a string"
                             + (" (and row 0 is not a list of token ids)" if bad == 0 else ""))
    texts = [t for t in items if t.strip()]
    if not texts:
        raise DataError(ref, "corpus has no non-empty texts")
    return Documents(TEXT, texts, column)


def load_texts(ref: str | os.PathLike, *, split: str = "train", column: str = "text",
               max_documents: int | None = None, revision: str | None = None) -> list[str]:
    """Texts of a local file (jsonl/json/csv/parquet/txt), a dataset folder or a hub dataset id."""
    docs = load_documents(ref, split=split, column=column, max_documents=max_documents, revision=revision)
    if docs.kind != TEXT:
        raise DataError(ref, f"column {column!r} holds token ids, not texts")
    return docs.items


def texts_hash(texts: list[str], *, column: str = "text") -> str:
    """The hash of a text corpus arranged one document per row (unchanged since the first version)."""
    return _documents_hash(Documents(TEXT, texts, column), "document", False)


def _documents_hash(docs: Documents, packing: str, prepend_bos: bool) -> str:
    header: dict = {"column": docs.column}
    if docs.kind == TOKEN_IDS:
        header.update(kind=TOKEN_IDS, prepend_bos=prepend_bos and packing == "document")
    if packing != "document":
        header["packing"] = packing
    digest = hashlib.sha256(json.dumps(header).encode())
    for item in docs.items:
        data = item if docs.kind == TEXT else json.dumps(item, separators=(",", ":"))
        digest.update(hashlib.sha256(data.encode("utf-8")).digest())
    return digest.hexdigest()


def corpus_hash(docs: Documents, *, packing: str = "document", prepend_bos: bool = False) -> str:
    """sha256 over the documents, their column and kind, and how they are arranged into rows."""
    return _documents_hash(docs, packing, prepend_bos)


def tokenizer_id(tokenizer) -> str:
    """A stable identity for a tokenizer: its name plus a hash of its vocabulary. A local folder is
    named by its last component only: records never hold an absolute local path (they travel)."""
    vocab = tokenizer.get_vocab()
    digest = hashlib.sha256(json.dumps(sorted(vocab.items()), ensure_ascii=False).encode()).hexdigest()[:16]
    name = str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
    if os.path.isabs(name) or os.path.exists(name):
        name = Path(name).name or type(tokenizer).__name__
    return f"{name}@{digest}"


def vocab_size(tokenizer) -> int:
    """Token ids the tokenizer knows: 0 .. vocab_size−1 (added tokens included)."""
    try:
        return len(tokenizer)
    except TypeError:
        return len(tokenizer.get_vocab())


def _token_documents(docs: Documents, tokenizer, packing: str, corpus_id: str) -> list[list[int]]:
    if docs.kind == TOKEN_IDS:
        size = vocab_size(tokenizer)
        for i, ids in enumerate(docs.items):
            if max(ids) >= size:
                raise DataError(corpus_id, f"row {i} of column {docs.column!r} holds token id {max(ids)}, outside "
                                           f"the tokenizer's vocabulary of {size} ids (0..{size - 1})")
        return docs.items
    # document rows take the tokenizer's own specials (BOS); packed rows get BOS/separators from packing
    return [tokenizer(text, add_special_tokens=packing == "document")["input_ids"] for text in docs.items]


def arrange(docs: Documents, tokenizer, *, seq_len: int, corpus_id: str, packing: str = "document",
            prepend_bos: bool = False) -> TokenizedCorpus:
    """Rows of `docs` (see sae_bench.inputs.packing), right-padded, with the masks every task uses."""
    check_corpus_options(packing, prepend_bos)
    if seq_len < 2:
        raise DataError(f"seq_len={seq_len}", "seq_len must be at least 2")
    bos, pad, eos = tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id
    documents = _token_documents(docs, tokenizer, packing, corpus_id)
    if packing == "pack":
        rows = pack_rows(documents, seq_len, bos=bos, separator=bos if bos is not None else eos)
        if not rows:
            total = sum(len(d) for d in documents)
            raise DataError(corpus_id, f"{total} tokens do not fill one packed row of seq_len={seq_len}")
    else:
        texts_get_bos = docs.kind == TEXT  # a text document starts with BOS; token ids only when asked
        rows = document_rows(documents, seq_len, bos=bos if texts_get_bos or prepend_bos else None)
    if pad is None:
        pad = eos if eos is not None else 0
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
        corpus_hash=corpus_hash(docs, packing=packing, prepend_bos=prepend_bos),
        tokenizer_id=tokenizer_id(tokenizer),
        input_ids=input_ids,
        attention_mask=attention_mask,
        keep_mask=keep,
        seq_len=seq_len,
        packing=packing,
        document_kind=docs.kind,
    )


def tokenize(texts: list[str], tokenizer, *, seq_len: int, corpus_id: str, column: str = "text",
             packing: str = "document") -> TokenizedCorpus:
    """Texts as rows: one per row (BOS + tokens, truncated, right-padded) or packed."""
    return arrange(Documents(TEXT, list(texts), column), tokenizer, seq_len=seq_len, corpus_id=corpus_id,
                   packing=packing)


def load_corpus(ref: str | os.PathLike, tokenizer, *, seq_len: int = DEFAULT_SEQ_LEN, split: str = "train",
                column: str = "text", max_documents: int | None = None, revision: str | None = None,
                packing: str = "document", prepend_bos: bool = False) -> TokenizedCorpus:
    """Load and arrange a corpus in one call (options checked before anything is read)."""
    check_corpus_options(packing, prepend_bos)
    docs = load_documents(ref, split=split, column=column, max_documents=max_documents, revision=revision)
    if prepend_bos and docs.kind == TEXT:
        raise InputError(f"{ref}", "prepend BOS applies to pre-tokenized corpora only (texts always start "
                                   "with the tokenizer's BOS)")
    return arrange(docs, tokenizer, seq_len=seq_len, corpus_id=str(ref), packing=packing, prepend_bos=prepend_bos)
