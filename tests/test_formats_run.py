"""Every new layout runs every applicable task on the tiny Gemma 4 model; transcoders are measured
against the MLP output they predict and spliced in its place (issue 14)."""

import json

import pytest

from sae_bench.cli import main
from sae_bench.fixtures import EVAL_CORPUS_PATH, FIXTURES_DIR, FORMATS_SUITE_PATH, TINY_MODEL_DIR
from sae_bench.records.results import read_record

ALL_TASKS = ("reconstruction", "sparsity", "spliced_loss", "downstream_lm_eval", "probing", "maxact_repro")
IT_CONTINUATION = FIXTURES_DIR / "saes/gemma-4-it-saes/tiny-gemma4-it/btk-mat-layer-2-k-8"
DECODERESEARCH = FIXTURES_DIR / "saes/decoderesearch-gemma-4-saes/tiny-gemma4/btk-mat-layer-2-k-8"


def _records(folder):
    return {(r.checkpoint_id, r.hookpoint, r.task_name): r
            for r in (read_record(p) for p in sorted(folder.rglob("*.json")))}


CORE_TASKS = ("reconstruction", "sparsity", "spliced_loss")


def _formats_suite(out, tasks):
    argv = ["run", "--suite", str(FORMATS_SUITE_PATH), "--results", str(out), "--no-cache", "--quiet",
            "--max-documents", "12", "--seq-len", "32", "--tasks", ",".join(tasks),
            "--task-option", "probing.k_values=[1,2]", "--task-option", "probing.n_permutations=20",
            "--task-option", "downstream_lm_eval.limit=4"]
    assert main(argv) == 0
    return _records(out)


def _check_tasks(records, expected):
    checkpoints = {c["path"] for c in json.loads(FORMATS_SUITE_PATH.read_text())["checkpoints"]}
    assert len(checkpoints) == 4
    for path in checkpoints:
        label = f"fixtures/{path}"
        tasks = {task for (ckpt, _, task) in records if ckpt == label}
        assert tasks == set(expected), (label, tasks)
    for record in records.values():
        for name, entry in record.metrics.items():
            assert entry["value"] is not None or entry.get("reason"), (record.checkpoint_id, name)


@pytest.fixture(scope="module")
def formats_run(tmp_path_factory):
    """The formats suite with the core tasks, small settings (one run shared by the tests below)."""
    return _formats_suite(tmp_path_factory.mktemp("formats"), CORE_TASKS)


def test_core_tasks_run_for_every_layout(formats_run):
    _check_tasks(formats_run, CORE_TASKS)


@pytest.mark.slow
def test_every_applicable_task_runs_for_every_layout(tmp_path):
    # maxact_repro applies only with a max-activation parquet; none is shipped for these layouts
    _check_tasks(_formats_suite(tmp_path, ALL_TASKS), set(ALL_TASKS) - {"maxact_repro"})


def test_hookpoints_of_each_layout(formats_run):
    hookpoints = {(ckpt.rsplit("/", 1)[-1], hp) for (ckpt, hp, _) in formats_run}
    assert hookpoints == {("btk-mat-layer-2-k-8", "layers.2"), ("layer_2_width_256_l0_small", "layers.2"),
                          ("layer_2_width_256_l0_small", "layers.2.mlp_in"), ("tiny-gemma4-transcoder", "layers.2.mlp_in")}


def test_transcoders_predict_and_replace_the_mlp_output(formats_run):
    for (ckpt, hp, task), record in formats_run.items():
        if hp != "layers.2.mlp_in":
            continue
        out = "layers.2.mlp" if "sparsify" in ckpt else "layers.2.mlp_out"
        assert record.data["checkpoint"]["output_hookpoint"] == out
        if task in ("reconstruction", "spliced_loss"):
            assert any("transcoder" in n and out in n for n in record.data["notes"]), record.data["notes"]
        if task == "reconstruction":
            # trained transcoders predict the MLP output well; compared with the input they would not
            assert record.metrics["explained_variance"]["value"] > 0.3, ckpt
        if task == "spliced_loss":
            assert record.metrics["ce_loss_recovered"]["value"] > 0.3, ckpt


def test_it_continuation_is_refused_on_the_base_model_then_allowed_and_marked(tmp_path, capsys):
    argv = ["run", "--model", str(TINY_MODEL_DIR), "--corpus", str(EVAL_CORPUS_PATH), "--seq-len", "32",
            "--max-documents", "6", "--tasks", "reconstruction", "--no-cache", "--quiet",
            "--results", str(tmp_path / "refused"), "-c", str(IT_CONTINUATION)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sae-bench: error: ")
    assert "tiny-gemma4-it" in err[0] and "base vs instruction-tuned" in err[0] and "--allow-model-mismatch" in err[0]
    assert not list((tmp_path / "refused").rglob("*.json"))

    argv[argv.index(str(tmp_path / "refused"))] = str(tmp_path / "allowed")
    assert main(argv + ["--allow-model-mismatch"]) == 0
    printed = capsys.readouterr().out
    assert "[model mismatch]" in printed
    (record,) = _records(tmp_path / "allowed").values()
    assert record.data["model_mismatch"]["trained_on"] == "tiny-gemma4-it"
    assert record.data["notes"][0].startswith("MODEL MISMATCH")

    from sae_bench.leaderboard_build import build_leaderboard

    build_leaderboard(tmp_path / "allowed", tmp_path / "board")
    pages = "".join(p.read_text() for p in (tmp_path / "board").rglob("*.html"))
    assert "model mismatch: trained on tiny-gemma4-it" in pages


def test_same_model_is_not_refused(tmp_path):
    argv = ["run", "--model", str(TINY_MODEL_DIR), "--corpus", str(EVAL_CORPUS_PATH), "--seq-len", "32",
            "--max-documents", "6", "--tasks", "reconstruction", "--no-cache", "--quiet",
            "--results", str(tmp_path), "-c", str(DECODERESEARCH)]
    assert main(argv) == 0
    (record,) = _records(tmp_path).values()
    assert "model_mismatch" not in record.data and record.hookpoint == "layers.2"


def test_negative_explained_variance_on_the_first_batch_warns(tmp_path, capsys):
    """d_in fits but the scale does not: the Gemma Scope fixture trained on the residual read at attn_out."""
    from sae_bench.run.config import CheckpointSpec, RunConfig
    from sae_bench.run.runner import evaluate

    gs = FIXTURES_DIR / "saes/gemma-scope-2-tiny/resid_post/layer_2_width_256_l0_small"
    config = RunConfig(model=str(TINY_MODEL_DIR), corpus=str(EVAL_CORPUS_PATH), results_dir=tmp_path, seq_len=32,
                       max_documents=6, tasks=["reconstruction"], show_progress=False)
    report = evaluate(config, [CheckpointSpec(str(gs), label="gs-at-attn-out", options={"site": "attn_out"})])
    (record,) = report.records
    assert record.hookpoint == "layers.2.attn_out" and record.metrics["explained_variance"]["value"] < 0
    err = capsys.readouterr().err
    assert "sae-bench: warning: gs-at-attn-out: explained variance" in err
    assert len(report.warnings) == 1 and any(n.startswith("WARNING: explained variance") for n in record.data["notes"])
