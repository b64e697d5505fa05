"""The corpus, tokenizer and tiny model behave as the rest of the harness assumes."""

import json
import math

import pytest
import torch

from sae_bench.fixtures import EVAL_CORPUS_PATH, TINY_MODEL_DIR, TRAIN_CORPUS_PATH


def _texts(path):
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(TINY_MODEL_DIR))


def test_corpus_splits_are_sized_and_disjoint():
    train, eval_ = _texts(TRAIN_CORPUS_PATH), _texts(EVAL_CORPUS_PATH)
    assert len(train) == 400 and len(eval_) == 100
    assert len(set(train)) == 400 and not set(train) & set(eval_)
    cats = {json.loads(line)["category"] for line in TRAIN_CORPUS_PATH.read_text().splitlines()}
    assert {"emotion_positive", "emotion_negative", "safety_deception", "reasoning", "code", "linguistic"} <= cats


def test_tokenizer_adds_bos_and_round_trips(tokenizer):
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id, tokenizer.unk_token_id) == (0, 1, 2, 3)
    assert len(tokenizer) == 512
    for text in _texts(EVAL_CORPUS_PATH)[:20] + ["Ünïcode ✓ and tabs\t"]:
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
        assert ids[0] == 2 and 2 not in ids[1:]
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == ids[1:]
        assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_model_loads_offline_and_is_trained(tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(TINY_MODEL_DIR)).eval()
    assert type(model).__name__ == "Gemma4ForCausalLM"
    assert model.dtype == torch.float32 and len(model.model.layers) == 4
    enc = tokenizer(_texts(EVAL_CORPUS_PATH)[:32], padding="max_length", truncation=True, max_length=64,
                    return_tensors="pt")
    with torch.no_grad():
        out = model(**enc)
    assert out.logits.shape == (32, 64, 512) and torch.isfinite(out.logits).all()
    logits, ids, mask = out.logits[:, :-1], enc["input_ids"][:, 1:], enc["attention_mask"][:, 1:].bool()
    ce = torch.nn.functional.cross_entropy(logits[mask], ids[mask])
    assert float(ce) < 0.5 * math.log(512), f"held-out CE {float(ce):.2f}: the model looks untrained"
