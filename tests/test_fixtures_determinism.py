"""The cheap builder steps (corpus, tokenizer) are byte-stable and reproduce the committed files."""

from sae_bench.fixtures import FIXTURES_DIR
from sae_bench.fixtures.build import MODEL_NAME, build_cheap

CHEAP_FILES = ["corpus/train.jsonl", "corpus/eval.jsonl", "corpus/eval_tokens.jsonl",
               f"{MODEL_NAME}/tokenizer.json", f"{MODEL_NAME}/tokenizer_config.json"]


def test_cheap_parts_are_byte_identical_twice_and_match_committed(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    build_cheap(a)
    build_cheap(b)
    produced = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert produced == sorted(CHEAP_FILES)
    for rel in CHEAP_FILES:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
        assert (a / rel).read_bytes() == (FIXTURES_DIR / rel).read_bytes(), f"{rel} drifted from the committed file"
