"""Corpus loading and tokenisation: masks, hashes, one-line errors."""

import json

import pytest

from sae_bench.inputs.corpus import load_texts, texts_hash, tokenize
from sae_bench.core.errors import DataError


class CharTokenizer:
    """A minimal tokenizer: BOS=2, EOS=1, PAD=0, one id per character."""

    bos_token_id, eos_token_id, pad_token_id = 2, 1, 0
    name_or_path = "char"

    def __call__(self, text, add_special_tokens=True):
        ids = [10 + (ord(c) % 100) for c in text]
        return {"input_ids": ([2] if add_special_tokens else []) + ids + [1]}

    def get_vocab(self):
        return {"<pad>": 0, "<eos>": 1, "<bos>": 2}


def test_masks_exclude_bos_eos_and_padding():
    corpus = tokenize(["abc", "hello world"], CharTokenizer(), seq_len=8, corpus_id="c")
    assert corpus.input_ids.shape == (2, 8)
    assert corpus.input_ids[0, 0] == 2 and corpus.attention_mask[0].tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    assert corpus.keep_mask[0].tolist() == [False, True, True, True, False, False, False, False]
    assert corpus.n_kept == 3 + 7  # second text truncated to 8: BOS + 7 characters
    assert corpus.corpus_hash == texts_hash(["abc", "hello world"])


def test_hash_depends_on_texts_not_location(tmp_path):
    for name in ("a.jsonl", "b.jsonl"):
        (tmp_path / name).write_text("\n".join(json.dumps({"text": t}) for t in ["one", "two"]) + "\n")
    assert texts_hash(load_texts(tmp_path / "a.jsonl")) == texts_hash(load_texts(tmp_path / "b.jsonl"))


def test_bad_corpora_give_one_line_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{not json\n')
    with pytest.raises(DataError) as info:
        load_texts(bad)
    assert str(info.value).startswith(str(bad)) and "\n" not in str(info.value)
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"body": "x"}\n')
    with pytest.raises(DataError, match="no column 'text'"):
        load_texts(wrong)
    with pytest.raises(DataError, match="unsupported corpus file type"):
        (tmp_path / "x.docx").write_text("x")
        load_texts(tmp_path / "x.docx")
