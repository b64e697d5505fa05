"""A packed and a pre-tokenized corpus evaluated end to end: `sae-bench run` in a subprocess with
every task, the suite file's corpus keys, and the Python API giving identical numbers for the same
rows reached from texts and from token ids."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sae_bench.fixtures import EVAL_CORPUS_PATH, EVAL_TOKENS_PATH, SAES_DIR, TINY_MODEL_DIR

CHECKPOINT = f"{SAES_DIR / 'sparsify/tiny-gemma4-8x'}@layers.2"
ALL_TASKS = ["reconstruction", "sparsity", "spliced_loss", "probing", "downstream_lm_eval", "maxact_repro"]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(TINY_MODEL_DIR))


def run_cli(tmp_path, *extra: str) -> list[dict]:
    results = tmp_path / "results"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "sae_bench", "run", "--model", str(TINY_MODEL_DIR), "-c", CHECKPOINT,
                           "--seq-len", "32", "--results", str(results), "--no-cache", "--quiet", *extra],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(p.read_text()) for p in sorted(results.rglob("*.json"))]


def check_records(records: list[dict], corpus) -> None:
    assert sorted(r["task"]["name"] for r in records) == sorted(ALL_TASKS)
    for record in records:
        assert record["corpus"]["hash"] == corpus.corpus_hash
        assert record["corpus"]["packing"] == corpus.packing
        assert record["corpus"]["documents"] == corpus.document_kind
        assert record["counts"]["tokens_kept"] == corpus.n_kept
        assert record["metrics"], record["task"]["name"]


def test_packed_corpus_end_to_end(tmp_path, tokenizer):
    from sae_bench.inputs.corpus import load_corpus

    records = run_cli(tmp_path, "--corpus", str(EVAL_CORPUS_PATH), "--max-documents", "24",
                      "--corpus-packing", "pack")
    corpus = load_corpus(EVAL_CORPUS_PATH, tokenizer, seq_len=32, max_documents=24, packing="pack")
    check_records(records, corpus)
    assert corpus.n_tokens == corpus.n_sequences * 32  # full rows only
    assert corpus.corpus_hash != load_corpus(EVAL_CORPUS_PATH, tokenizer, seq_len=32, max_documents=24).corpus_hash
    fvu = next(r for r in records if r["task"]["name"] == "reconstruction")["metrics"]["fvu"]["value"]
    assert 0 < fvu < 1


def test_pretokenized_corpus_end_to_end(tmp_path, tokenizer):
    from sae_bench.inputs.corpus import load_corpus

    records = run_cli(tmp_path, "--corpus", str(EVAL_TOKENS_PATH), "--corpus-column", "input_ids",
                      "--corpus-prepend-bos")
    check_records(records, load_corpus(EVAL_TOKENS_PATH, tokenizer, seq_len=32, column="input_ids",
                                       prepend_bos=True))


def test_suite_file_names_the_corpus_arrangement(tmp_path):
    from sae_bench.cli import build_parser
    from sae_bench.cli.run import run_config_from_args

    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"model": str(TINY_MODEL_DIR), "corpus": str(EVAL_TOKENS_PATH),
                                 "corpus_column": "input_ids", "corpus_packing": "pack", "corpus_prepend_bos": True,
                                 "checkpoints": [{"path": str(SAES_DIR / "sparsify/tiny-gemma4-8x"),
                                                  "hookpoint": "layers.2"}]}))
    config, _ = run_config_from_args(build_parser().parse_args(["run", "--suite", str(suite)]))
    assert (config.corpus_column, config.corpus_packing, config.corpus_prepend_bos) == ("input_ids", "pack", True)
    config, _ = run_config_from_args(build_parser().parse_args(
        ["run", "--suite", str(suite), "--corpus-packing", "document", "--corpus-column", "ids"]))
    assert (config.corpus_column, config.corpus_packing) == ("ids", "document")  # the command line wins


def test_same_rows_from_texts_and_token_ids_give_the_same_numbers(tmp_path):
    """Token ids are used verbatim: packed, the ids of the first 32 texts make the text corpus's rows
    (row equality for both arrangements: tests/test_corpus_packing.py), so every metric is identical;
    only the corpus hash (and so comparability) differs."""
    from sae_bench import CheckpointSpec, RunConfig, evaluate

    def run(name, **corpus):
        config = RunConfig(model=str(TINY_MODEL_DIR), results_dir=tmp_path / name, seq_len=32,
                           tasks=["reconstruction", "sparsity", "spliced_loss"], show_progress=False, **corpus)
        spec = CheckpointSpec(str(SAES_DIR / "sparsify/tiny-gemma4-8x"), hookpoint="layers.2")
        return {r.task_name: r.data for r in evaluate(config, [spec]).records}

    text = run("text", corpus=str(EVAL_CORPUS_PATH), max_documents=32, corpus_packing="pack")
    ids = run("ids", corpus=str(EVAL_TOKENS_PATH), corpus_column="input_ids", corpus_packing="pack")
    assert sorted(text) == ["reconstruction", "sparsity", "spliced_loss"]
    for task in text:
        assert text[task]["metrics"] == ids[task]["metrics"], task
        assert text[task]["corpus"]["hash"] != ids[task]["corpus"]["hash"]


def test_compare_takes_the_corpus_options():
    from sae_bench.cli import build_parser
    from sae_bench.core.arguments import given
    from sae_bench import RunConfig

    args = build_parser().parse_args(["compare", "a", "b", "--corpus-packing", "pack", "--corpus-column", "input_ids",
                                      "--corpus-prepend-bos"])
    assert {k: v for k, v in given(args, RunConfig).items() if k.startswith("corpus_")} == {
        "corpus_column": "input_ids", "corpus_packing": "pack", "corpus_prepend_bos": True}


def test_a_record_is_reused_only_for_the_same_rows(tmp_path):
    """Same documents, same packing, another seq_len: other rows, so the record is recomputed."""
    from sae_bench import CheckpointSpec, RunConfig, evaluate

    spec = CheckpointSpec(str(SAES_DIR / "sparsify/tiny-gemma4-8x"), hookpoint="layers.2")

    def run(seq_len):
        config = RunConfig(model=str(TINY_MODEL_DIR), corpus=str(EVAL_CORPUS_PATH), results_dir=tmp_path,
                           seq_len=seq_len, max_documents=16, corpus_packing="pack", tasks=["reconstruction"],
                           show_progress=False)
        report = evaluate(config, [spec])
        return report.reused, report.records[0].data["corpus"]["seq_len"]

    assert run(32) == (0, 32)
    assert run(32) == (1, 32)
    assert run(16) == (0, 16)
