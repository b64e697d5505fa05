"""Build then reproduce on the fixture model: the same SAE reproduces exactly, another SAE does not,
windows-only re-encoding says so, and the bundled fixture parquet rebuilds to the same bytes."""

from __future__ import annotations

import dataclasses
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from sae_bench import load_checkpoint
from sae_bench.inputs.corpus import load_corpus
from sae_bench.core.errors import DataError, HookpointError
from sae_bench.fixtures import EVAL_CORPUS_PATH, MAXACT_DIR, SAES_DIR, TINY_MODEL_DIR
from sae_bench.fixtures.maxact_build import (FILE_NAME, build_maxact_fixture, fixture_file_name,
                                             residual_suite_entries)
from sae_bench.tasks.maxact_repro.build import BuildSettings, build_maxact, collect_examples
from sae_bench.tasks.maxact_repro.repro import ReproSettings, reproduce
from sae_bench.tasks.maxact_repro.schema import read_maxact, write_maxact
from sae_bench.models import ModelAdapter

QUIET = ReproSettings(show_progress=False)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    torch.set_num_threads(1)
    model = ModelAdapter.load(TINY_MODEL_DIR)
    trained = load_checkpoint(str(SAES_DIR / "sparsify/tiny-gemma4-8x"), hookpoint="layers.2")
    untrained = load_checkpoint(str(SAES_DIR / "sparsify/untrained-8x"), hookpoint="layers.2")
    corpus = load_corpus(EVAL_CORPUS_PATH, model.tokenizer, seq_len=64)
    path = tmp_path_factory.mktemp("maxact") / "built.parquet"
    build_maxact(model, trained, "layers.2", corpus, path,
                 BuildSettings(top_n=4, window=6, features=range(0, 512, 8), show_progress=False))
    return {"model": model, "trained": trained, "untrained": untrained, "corpus": corpus, "path": path,
            "table": read_maxact(path)}


def test_built_file_has_the_schema_offsets_and_checkpoint_metadata(env):
    table = env["table"]
    assert table.has_offsets and len(table.features()) > 40
    assert table.metadata["checkpoint_sha256"] == env["trained"].metadata.weights_sha256
    assert table.metadata["hookpoint"] == "layers.2" and table.metadata["corpus_hash"] == env["corpus"].corpus_hash
    by_feature = {}
    for e in table.examples:
        assert e.start >= 1 and e.end - e.start <= 13 and e.token_activations[e.peak_position] == e.activation > 0
        assert e.token == e.context_tokens[e.peak_position]
        by_feature.setdefault(e.feature, []).append(e)
    for examples in by_feature.values():
        assert len(examples) <= 4 and len({e.doc_id for e in examples}) == len(examples)
        values = [e.activation for e in examples]
        assert values == sorted(values, reverse=True)
    assert [e.feature for e in table.examples] == sorted(e.feature for e in table.examples)


def test_same_sae_reproduces_exactly(env):
    result = reproduce(env["table"], env["trained"], env["model"], "layers.2", corpus=env["corpus"], settings=QUIET)
    assert result.mode == "exact"
    assert result.metrics["reproduced_fraction"].value == 1.0
    assert result.metrics["peak_position_agreement"].value == 1.0
    assert result.metrics["peak_relative_error"].value < 1e-4
    assert result.metrics["spearman"].value > 0.99
    # Deduplicated: one forward per document, fewer than the examples.
    assert result.counts["contexts"] < result.counts["examples"] == len(env["table"].examples)


def test_a_different_sae_reproduces_poorly(env):
    result = reproduce(env["table"], env["untrained"], env["model"], "layers.2", corpus=env["corpus"], settings=QUIET)
    assert result.metrics["reproduced_fraction"].value <= 0.1
    assert result.metrics["peak_position_agreement"].value < 0.3


def test_windows_only_mode_is_reported_and_rank_based(env):
    result = reproduce(env["table"], env["trained"], env["model"], "layers.2", corpus=None, settings=QUIET)
    assert result.mode == "windows" and result.counts["examples_window"] == len(env["table"].examples)
    assert any("cut from longer documents" in n and "rank statistics" in n for n in result.notes)
    assert any("no corpus was given" in n for n in result.notes)
    # Less context changes activations, but the trained SAE still tracks its features far better than chance.
    assert result.metrics["spearman"].value > 0.7
    untrained = reproduce(env["table"], env["untrained"], env["model"], "layers.2", corpus=None, settings=QUIET)
    assert result.metrics["reproduced_fraction"].value > untrained.metrics["reproduced_fraction"].value + 0.3


def test_gemma_loupe_style_file_without_offsets_uses_windows(env, tmp_path):
    table = pq.read_table(env["path"]).select(["feature", "activation", "token", "context", "context_tokens",
                                               "token_activations"]).replace_schema_metadata(None)
    pq.write_table(table, tmp_path / "loupe.parquet")
    loupe = read_maxact(tmp_path / "loupe.parquet")
    assert not loupe.has_offsets and loupe.metadata == {}
    result = reproduce(loupe, env["trained"], env["model"], "layers.2", corpus=env["corpus"], settings=QUIET)
    assert result.mode == "windows" and any("cut from longer documents" in n for n in result.notes)


def test_wrong_corpus_falls_back_with_a_note(env):
    other = load_corpus(EVAL_CORPUS_PATH, env["model"].tokenizer, seq_len=64, max_documents=50)
    result = reproduce(env["table"], env["trained"], env["model"], "layers.2", corpus=other, settings=QUIET)
    assert result.mode == "windows" and any("built on corpus" in n for n in result.notes)


def test_offsets_not_matching_the_corpus_tokens_are_not_trusted(env, tmp_path):
    examples = [dataclasses.replace(e, doc_id=(e.doc_id + 1) % env["corpus"].n_sequences)
                for e in env["table"].examples[:5]]
    meta = {k: v for k, v in env["table"].metadata.items() if k != "schema_version"}
    table = read_maxact(write_maxact(tmp_path / "shifted.parquet", examples, meta))
    result = reproduce(table, env["trained"], env["model"], "layers.2", corpus=env["corpus"], settings=QUIET)
    assert result.counts["examples_offset_mismatch"] == 5 - result.counts["examples_exact"] >= 4
    assert any("did not match the corpus tokens" in n for n in result.notes)


def test_unmappable_context_is_reported_and_not_scored(env, tmp_path):
    first = env["table"].examples[0]
    bad = dataclasses.replace(first, row=1, context_tokens=("notatoken!!",) + first.context_tokens[1:],
                              doc_id=None, start=None, end=None)
    good = dataclasses.replace(env["table"].examples[1], doc_id=None, start=None, end=None)
    table = read_maxact(write_maxact(tmp_path / "unk.parquet", [good, bad], {}))
    result = reproduce(table, env["trained"], env["model"], "layers.2", corpus=None, settings=QUIET)
    assert result.counts["examples_unmappable"] == 1 and result.counts["examples_scored"] == 1
    assert result.unmappable[0]["unknown_tokens"] == ["notatoken!!"]
    assert any("notatoken!!" in n and "not scored" in n for n in result.notes)


def test_feature_outside_the_sae_is_a_one_line_error(env, tmp_path):
    bad = dataclasses.replace(env["table"].examples[0], feature=9999)
    table = read_maxact(write_maxact(tmp_path / "wide.parquet", [bad], {}))
    with pytest.raises(DataError, match=r"wide.parquet: row 0, column 'feature': 9999 outside"):
        reproduce(table, env["trained"], env["model"], "layers.2", settings=QUIET)


def test_build_refuses_the_pooled_hookpoint(env):
    with pytest.raises(HookpointError):
        collect_examples(env["model"], env["trained"], "pooled_final_norm", env["corpus"])


def test_bundled_fixture_rebuilds_to_the_same_bytes_and_reproduces(env, tmp_path):
    rebuilt = build_maxact_fixture(tmp_path)
    committed = MAXACT_DIR / FILE_NAME
    assert rebuilt.read_bytes() == committed.read_bytes(), "fixtures/maxact drifted: rebuild it"
    assert committed.stat().st_size < 300 * 1024
    table = read_maxact(committed)
    meta = table.metadata
    assert meta["checkpoint_sha256"] == env["trained"].metadata.weights_sha256
    assert not any(str(v).startswith("/") for v in meta.values()), json.dumps(meta)
    result = reproduce(table, env["trained"], env["model"], "layers.2", corpus=env["corpus"], settings=QUIET)
    assert result.metrics["reproduced_fraction"].value == 1.0


@pytest.mark.parametrize("entry", residual_suite_entries(), ids=fixture_file_name)
def test_every_residual_suite_checkpoint_has_a_byte_stable_bundled_parquet(entry, tmp_path):
    rebuilt = build_maxact_fixture(tmp_path, entry=entry)
    committed = MAXACT_DIR / fixture_file_name(entry)
    assert committed.exists(), f"{committed.name} missing: run python -m sae_bench.fixtures.maxact_build"
    assert rebuilt.read_bytes() == committed.read_bytes(), f"{committed.name} drifted: rebuild it"
    assert read_maxact(committed).metadata["hookpoint"].endswith(entry["hookpoint"])


@pytest.mark.parametrize("ref", ["sparsify/tiny-gemma4-8x", "saelens/standard-layers.2", "saelens/jumprelu-layers.2"])
def test_feature_activations_equal_the_dense_codes_whatever_the_chunking(env, monkeypatch, ref):
    from sae_bench.tasks.maxact_repro import encode

    sae = load_checkpoint(str(SAES_DIR / ref), hookpoint="layers.2")
    x = env["model"].residual("layers.2", env["corpus"].input_ids[:3], env["corpus"].attention_mask[:3])[0].float()
    features = torch.tensor([0, 5, 77, 300, 511])
    dense = sae.encode(sae.preprocess(x)[0]).to_dense()[:, features]
    monkeypatch.setattr(encode, "CHUNK_VALUES", 512 * 7)  # 7 rows per chunk
    got = encode.feature_activations(sae, x, features)
    assert torch.allclose(got, dense, rtol=1e-5, atol=1e-5)  # chunked matmuls may differ in the last bits
    assert torch.equal(got != 0, dense != 0)
