"""The `maxact_repro` task: which parquet it uses (the locate rule), skips, the runner and the CLI."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from sae_bench.activations import ActivationSource
from sae_bench import load_checkpoint
from sae_bench.cli import main
from sae_bench.core.context import EvalContext
from sae_bench.inputs.corpus import load_corpus
from sae_bench.core.errors import DataError
from sae_bench.fixtures import EVAL_CORPUS_PATH, MAXACT_DIR, SAES_DIR, TINY_MODEL_DIR
from sae_bench.fixtures.maxact_build import FILE_NAME
from sae_bench.tasks.maxact_repro.locate import find_parquet
from sae_bench.models import ModelAdapter
from sae_bench import CheckpointSpec, RunConfig, evaluate
from sae_bench.tasks.maxact_repro import NO_PARQUET, MaxActReproTask

FIXTURE_PARQUET = MAXACT_DIR / FILE_NAME
TRAINED = SAES_DIR / "sparsify/tiny-gemma4-8x"
UNTRAINED = SAES_DIR / "sparsify/untrained-8x"


@pytest.fixture(scope="module")
def env():
    torch.set_num_threads(1)
    model = ModelAdapter.load(TINY_MODEL_DIR)
    corpus = load_corpus(EVAL_CORPUS_PATH, model.tokenizer, seq_len=64)

    def ctx(hookpoint="layers.2", **kw):
        return EvalContext(model=model, hookpoint=hookpoint, corpus=corpus,
                           activations=ActivationSource(model, hookpoint, corpus, show_progress=False),
                           show_progress=False, **kw)

    return {"ctx": ctx, "trained": load_checkpoint(str(TRAINED), hookpoint="layers.2"),
            "untrained": load_checkpoint(str(UNTRAINED), hookpoint="layers.2"), "corpus": corpus}


@pytest.fixture
def only_trained_layer2_bundled(monkeypatch, tmp_path):
    """A bundled folder holding just the trained layers.2 parquet, so other checkpoints have none."""
    import sae_bench.fixtures

    folder = tmp_path / "bundled"
    folder.mkdir()
    shutil.copy(FIXTURE_PARQUET, folder / FILE_NAME)
    monkeypatch.setattr(sae_bench.fixtures, "MAXACT_DIR", folder)
    return folder


def test_every_residual_fixture_checkpoint_finds_its_own_bundled_parquet(env):
    for sae in (env["trained"], env["untrained"]):
        found = find_parquet(sae, "layers.2")
        assert found is not None and found.how == "bundled fixtures"
        assert found.metadata["checkpoint_sha256"] == sae.metadata.weights_sha256
    layer1 = load_checkpoint(str(TRAINED), hookpoint="layers.1")
    assert find_parquet(layer1, "layers.1").path.name == "tiny-gemma4-8x_layers.1.parquet"
    assert find_parquet(env["trained"], "layers.1") is None  # layers.2 weights: no file names them there


def test_fixture_checkpoint_finds_its_bundled_parquet_and_reproduces(env):
    task, ctx = MaxActReproTask(), env["ctx"]()
    assert task.skip_reason(env["trained"], ctx) is None
    out = task.run(env["trained"], ctx)
    assert out.artifacts["parquet"]["found_by"] == "bundled fixtures" and out.artifacts["mode"] == "exact"
    assert out.metrics["reproduced_fraction"].value == 1.0 and out.metrics["reproduced_fraction"].stderr == 0.0
    assert out.counts["features_scored"] == len(out.artifacts["per_feature"]) > 50
    assert all(m.value is not None for m in out.metrics.values())


def test_other_checkpoints_skip_unless_given_a_parquet(env, only_trained_layer2_bundled):
    ctx = env["ctx"]()
    assert MaxActReproTask().skip_reason(env["untrained"], ctx) == NO_PARQUET
    assert MaxActReproTask().skip_reason(env["trained"], env["ctx"]("layers.1")) == NO_PARQUET
    task = MaxActReproTask(parquet=str(FIXTURE_PARQUET))
    assert task.skip_reason(env["untrained"], ctx) is None
    out = task.run(env["untrained"], ctx)
    assert out.metrics["reproduced_fraction"].value <= 0.1
    assert "describes another SAE" in out.notes[0]


def test_pooled_hookpoint_is_skipped_with_a_reason(env):
    reason = MaxActReproTask().skip_reason(env["trained"], env["ctx"]("pooled_final_norm"))
    assert reason and "per token" in reason


def test_windows_only_when_the_run_corpus_differs_unless_the_corpus_option_is_given(env):
    other = load_corpus(EVAL_CORPUS_PATH, env["ctx"]().model.tokenizer, seq_len=64, max_documents=30)
    ctx = env["ctx"]()
    ctx.corpus = other
    out = MaxActReproTask(max_features=8).run(env["trained"], ctx)
    assert out.artifacts["mode"] == "windows" and any("cut from longer documents" in n for n in out.notes)
    assert any("lowest-numbered" in n for n in out.notes) and out.counts["features"] == 8
    out = MaxActReproTask(max_features=8, corpus=str(EVAL_CORPUS_PATH)).run(env["trained"], ctx)
    assert out.artifacts["mode"] == "exact" and out.metrics["reproduced_fraction"].value == 1.0


def test_locate_rule_resources_mapping_and_sibling(env, tmp_path):
    sae = env["trained"]
    other = tmp_path / "other.parquet"
    shutil.copy(FIXTURE_PARQUET, other)
    # A resource file naming this checkpoint is used; a folder is searched by metadata.
    assert find_parquet(sae, "layers.2", resources={"maxact": other}).how == "resource"
    assert find_parquet(sae, "layers.2", resources={"maxact": tmp_path}).path == other
    # ... but not for another checkpoint or hookpoint (falls through to nothing).
    empty = tmp_path / "empty"
    empty.mkdir()
    assert find_parquet(env["untrained"], "layers.2", resources={"maxact": other}, bundled=empty) is None
    assert find_parquet(sae, "layers.1", resources={"maxact": other}, bundled=empty) is None
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"layers.2": "other.parquet"}))
    assert find_parquet(sae, "layers.2", resources={"maxact": mapping}, bundled=empty).path == other
    # maxact.parquet beside the weights.
    copy = tmp_path / "run"
    shutil.copytree(TRAINED / "layers.2", copy / "layers.2")
    shutil.copy(FIXTURE_PARQUET, copy / "layers.2" / "maxact.parquet")
    copied = load_checkpoint(str(copy), hookpoint="layers.2")
    found = find_parquet(copied, "layers.2", bundled=empty)
    assert found.how == "beside the weights" and found.path.name == "maxact.parquet"
    with pytest.raises(DataError, match="resource not found"):
        find_parquet(sae, "layers.2", resources={"maxact": tmp_path / "nope.parquet"})


def test_runner_writes_a_record_for_the_matching_checkpoint_and_skips_the_other(tmp_path,
                                                                               only_trained_layer2_bundled):
    config = RunConfig(model=str(TINY_MODEL_DIR), corpus=str(EVAL_CORPUS_PATH), results_dir=tmp_path,
                       tasks=["maxact_repro"], seq_len=64, show_progress=False)
    specs = [CheckpointSpec(str(TRAINED), "layers.2", "sparsify", "trained"),
             CheckpointSpec(str(UNTRAINED), "layers.2", "sparsify", "untrained")]
    report = evaluate(config, specs)
    assert [r.data["checkpoint"]["id"] for r in report.records] == ["trained"]
    assert report.records[0].data["metrics"]["reproduced_fraction"]["value"] == 1.0
    assert report.skipped == [("untrained", "layers.2", "maxact_repro", NO_PARQUET)]


def test_cli_build_and_bad_input_exit_codes(tmp_path, capsys):
    out = tmp_path / "cli.parquet"
    common = ["--model", str(TINY_MODEL_DIR), "--checkpoint", str(TRAINED), "--hookpoint", "layers.2", "--quiet"]
    assert main(["maxact", "build", *common, "--corpus", str(EVAL_CORPUS_PATH), "--out", str(out),
                 "--top-n", "2", "--features", "0:16", "--window", "4"]) == 0
    assert out.is_file() and "examples of 16 features" in capsys.readouterr().out
    at = ["--model", str(TINY_MODEL_DIR), "--checkpoint", f"{TRAINED}@layers.2", "--quiet"]
    assert main(["maxact", "repro", *at, "--parquet", str(out), "--corpus", str(EVAL_CORPUS_PATH)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["mode"] == "exact" and printed["metrics"]["reproduced_fraction"]["value"] == 1.0
    for argv, fragment in [
        (["--corpus", str(EVAL_CORPUS_PATH), "--out", str(out), "--features", "a:b"], "--features"),
        (["--corpus", str(EVAL_CORPUS_PATH), "--out", str(out), "--top-n", "0"], "--top-n"),
        (["--corpus", str(tmp_path / "missing.jsonl"), "--out", str(out)], "missing.jsonl"),
    ]:
        assert main(["maxact", "build", *common, *argv]) == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]  # (model loading may print progress first)
        assert last.startswith("sae-bench: error:") and fragment in last, last
    bad = tmp_path / "bad.parquet"
    bad.write_text("nope")
    assert main(["maxact", "repro", *common, "--parquet", str(bad)]) == 2
    assert "bad.parquet" in capsys.readouterr().err
