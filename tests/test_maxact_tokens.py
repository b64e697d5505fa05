"""Stored token strings map back to ids; unknown strings are detected, never encoded as <unk>."""

import pytest
from transformers import AutoTokenizer

from sae_bench.fixtures import TINY_MODEL_DIR
from sae_bench.tasks.maxact_repro.tokens import TokenMapper


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(str(TINY_MODEL_DIR))


def test_round_trip_of_real_tokens(tokenizer):
    ids = tokenizer("The cat sat on the mat, twice.")["input_ids"]
    mapper = TokenMapper(tokenizer)
    mapped = mapper.map(mapper.tokens_of(ids))
    assert mapped.ids == ids and mapped.unknown == []


def test_unknown_strings_are_reported_not_encoded(tokenizer):
    mapper = TokenMapper(tokenizer)
    mapped = mapper.map(["Ġthe", "notatoken!!", "Ġthe", "notatoken!!", "☃☃"])
    assert mapped.ids is None and mapped.unknown == ["notatoken!!", "☃☃"]


def test_the_unknown_token_itself_is_a_real_token(tokenizer):
    mapped = TokenMapper(tokenizer).map([tokenizer.unk_token, "Ġthe"])
    assert mapped.ids == [tokenizer.unk_token_id, tokenizer.convert_tokens_to_ids("Ġthe")]
