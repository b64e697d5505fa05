"""Packed rows and pre-tokenized corpora: row layout, masks, hashes, loaders, bad token ids."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sae_bench.activations import cache_key
from sae_bench.inputs.corpus import TOKEN_IDS, load_corpus, load_documents
from sae_bench.core.errors import DataError, InputError
from sae_bench.fixtures import EVAL_CORPUS_PATH, EVAL_TOKENS_PATH, TINY_MODEL_DIR
from sae_bench.inputs.packing import pack_rows

BOS, EOS, PAD = 2, 1, 0
# the fixture corpus's hash as the committed leaderboard records it (seq_len 64, every document, one per row)
COMMITTED_EVAL_HASH = "4fc85d9044247ed59b6ac3bb9b9e3752476e3f4bea0a5f29320523ba69daf224"


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(TINY_MODEL_DIR))


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ------------------------------------------------------------------------------ pack_rows
def test_pack_rows_by_hand():
    docs = [[10, 11, 12], [20, 21], [30, 31, 32, 33, 34, 35], [40]]
    rows = pack_rows(docs, 5, bos=BOS, separator=BOS)
    assert rows == [
        [BOS, 10, 11, 12, BOS],  # the separator fills the row: doc 2 starts the next row after its BOS only
        [BOS, 20, 21, BOS, 30],
        [BOS, 31, 32, 33, 34],   # a document running past a row continues after the next row's BOS
    ]  # [BOS, 35, BOS, 40] is partial: dropped


def test_pack_rows_does_not_double_a_leading_bos():
    rows = pack_rows([[BOS, 10, 11], [BOS, 20, 21, 22]], 4, bos=BOS, separator=BOS)
    assert rows == [[BOS, 10, 11, BOS], [BOS, 20, 21, 22]]


def test_pack_rows_with_eos_separator_and_no_bos():
    assert pack_rows([[10, 11], [20, 21, 22]], 3, bos=None, separator=EOS) == [[10, 11, EOS], [20, 21, 22]]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(3, 50), min_size=1, max_size=12), min_size=1, max_size=12),
       st.integers(2, 9))
def test_pack_rows_keeps_the_stream(docs, seq_len):
    """Full rows, BOS first; without BOS/separators they read as the documents' concatenation, and
    fewer than seq_len stream tokens are dropped at the end."""
    rows = pack_rows(docs, seq_len, bos=BOS, separator=BOS)
    assert all(len(r) == seq_len and r[0] == BOS for r in rows)
    content = [t for r in rows for t in r if t != BOS]
    stream = [t for d in docs for t in d]
    assert content == stream[:len(content)]
    dropped = len(stream) - len(content)
    assert 0 <= dropped < seq_len


# ------------------------------------------------------------------------------ corpora
def test_packed_text_corpus_masks_separators(tokenizer):
    corpus = load_corpus(EVAL_CORPUS_PATH, tokenizer, seq_len=32, max_documents=12, packing="pack")
    ids, keep = corpus.input_ids, corpus.keep_mask
    assert corpus.attention_mask.all() and (ids[:, 0] == BOS).all()
    assert (ids[:, 1:] == BOS).any(), "12 short documents in 32-token rows must leave separators inside rows"
    assert torch.equal(keep, (ids != BOS) & (ids != EOS) & (ids != PAD))
    assert corpus.describe()["packing"] == "pack" and corpus.describe()["documents"] == "text"


def test_document_text_hash_is_unchanged(tokenizer):
    assert load_corpus(EVAL_CORPUS_PATH, tokenizer, seq_len=64).corpus_hash == COMMITTED_EVAL_HASH


def test_pretokenized_rows_equal_the_text_rows_when_asked_for_bos(tokenizer):
    for packing in ("document", "pack"):
        text = load_corpus(EVAL_CORPUS_PATH, tokenizer, seq_len=32, max_documents=32, packing=packing)
        ids = load_corpus(EVAL_TOKENS_PATH, tokenizer, seq_len=32, column="input_ids", packing=packing,
                          prepend_bos=packing == "document")
        assert torch.equal(text.input_ids, ids.input_ids) and torch.equal(text.keep_mask, ids.keep_mask)
        assert ids.document_kind == TOKEN_IDS and ids.corpus_hash != text.corpus_hash


def test_pretokenized_ids_are_verbatim_without_bos(tokenizer):
    corpus = load_corpus(EVAL_TOKENS_PATH, tokenizer, seq_len=16, column="input_ids")
    first = json.loads(EVAL_TOKENS_PATH.read_text().splitlines()[0])["input_ids"]
    assert corpus.input_ids[0].tolist() == first[:16] and corpus.keep_mask[0].all()


def test_hash_covers_kind_packing_bos_and_every_id(tokenizer, tmp_path):
    def h(path, **kw):
        return load_corpus(path, tokenizer, seq_len=16, **kw).corpus_hash

    rows = [json.loads(line) for line in EVAL_TOKENS_PATH.read_text().splitlines()]
    changed = [dict(r) for r in rows]
    changed[5] = {"input_ids": changed[5]["input_ids"][:-1] + [changed[5]["input_ids"][-1] + 1]}
    other = write_jsonl(tmp_path / "changed.jsonl", changed)
    hashes = [h(EVAL_CORPUS_PATH, max_documents=32), h(EVAL_CORPUS_PATH, max_documents=32, packing="pack"),
              h(EVAL_TOKENS_PATH, column="input_ids"), h(EVAL_TOKENS_PATH, column="input_ids", prepend_bos=True),
              h(EVAL_TOKENS_PATH, column="input_ids", packing="pack"), h(other, column="input_ids")]
    assert len(set(hashes)) == len(hashes)
    copy = write_jsonl(tmp_path / "copy.jsonl", rows)
    assert h(copy, column="input_ids") == hashes[2]  # the ids, not the file's location


def test_activation_cache_key_follows_the_corpus_kind(tokenizer):
    keys = {cache_key("m", None, load_corpus(EVAL_CORPUS_PATH, tokenizer, seq_len=32, max_documents=32,
                                             packing=packing), "layers.1", torch.float32)
            for packing in ("document", "pack")}
    keys.add(cache_key("m", None, load_corpus(EVAL_TOKENS_PATH, tokenizer, seq_len=32, column="input_ids",
                                              prepend_bos=True), "layers.1", torch.float32))
    assert len(keys) == 3


def test_dataset_folders_and_parquet(tokenizer, tmp_path):
    import datasets

    rows = [json.loads(line)["input_ids"] for line in EVAL_TOKENS_PATH.read_text().splitlines()]
    ds = datasets.Dataset.from_dict({"input_ids": rows})
    ds.save_to_disk(str(tmp_path / "saved"))  # SAELens's pretokenize runner's local output
    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "saved_dict"))
    (tmp_path / "hub" / "data").mkdir(parents=True)
    ds.to_parquet(str(tmp_path / "hub" / "data" / "train-00000-of-00001.parquet"))
    ds.to_parquet(str(tmp_path / "tokens.parquet"))
    expected = load_corpus(EVAL_TOKENS_PATH, tokenizer, seq_len=24, column="input_ids", packing="pack")
    for ref, split in ((tmp_path / "saved", "train"), (tmp_path / "saved_dict", "test"), (tmp_path / "hub", "train"),
                       (tmp_path / "tokens.parquet", "train")):
        got = load_corpus(ref, tokenizer, seq_len=24, column="input_ids", packing="pack", split=split)
        assert torch.equal(got.input_ids, expected.input_ids) and got.corpus_hash == expected.corpus_hash, ref
    with pytest.raises(DataError, match="no split 'validation'"):
        load_documents(tmp_path / "saved_dict", split="validation", column="input_ids")


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("rows, words", [
    ([{"input_ids": [5, 6]}, {"input_ids": "abc"}], "row 1 of column 'input_ids' is not a list of token ids"),
    ([{"input_ids": [5, 6]}, {"input_ids": []}], "row 1 of column 'input_ids' is an empty list"),
    ([{"input_ids": [5, -6]}], "row 0 of column 'input_ids' holds a negative token id -6"),
    ([{"input_ids": [5, 6.5]}], "not a list of ints"),
    ([{"input_ids": [5, "x"]}], "not a list of ints: item 1 is 'x'"),
    ([{"input_ids": [True, 5]}], "not a list of ints: item 0 is True"),
    ([{"input_ids": [5, 6]}, {"input_ids": None}], "row 1 of column 'input_ids' is not a list of token ids"),
    ([{"input_ids": [5, 512]}], "token id 512, outside the tokenizer's vocabulary of 512 ids"),
])
def test_bad_token_ids_are_one_line_errors(tokenizer, tmp_path, rows, words):
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as info:
        load_corpus(path, tokenizer, seq_len=8, column="input_ids")
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message and words in message, message


def test_option_and_shape_errors(tokenizer, tmp_path):
    with pytest.raises(InputError, match="expected one of document, pack"):
        load_corpus(EVAL_CORPUS_PATH, tokenizer, packing="concat")
    with pytest.raises(InputError, match="pre-tokenized corpora only"):
        load_corpus(EVAL_CORPUS_PATH, tokenizer, prepend_bos=True)
    with pytest.raises(DataError, match="do not fill one packed row"):
        load_corpus(write_jsonl(tmp_path / "short.jsonl", [{"input_ids": [5, 6]}]), tokenizer, seq_len=8,
                    column="input_ids", packing="pack")
    with pytest.raises(DataError, match="a pre-tokenized corpus: --corpus-column input_ids"):
        load_corpus(EVAL_TOKENS_PATH, tokenizer)
