"""Issue 22: a typo never changes a number. Every name that selects behaviour is checked against
what exists (task options, task names, gate rules, releases), inputs that would be quietly
converted are refused, and what a run finds wrong on the first batch is said and recorded."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from record_factories import make_record_data
from sae_bench.cli import main
from sae_bench.core.errors import InputError
from sae_bench.fixtures import EVAL_CORPUS_PATH, FIXTURES_DIR, SAES_DIR, TINY_MODEL_DIR
from sae_bench.records.results import read_record, validate

FAST = ["--model", str(TINY_MODEL_DIR), "--corpus", str(EVAL_CORPUS_PATH), "--seq-len", "32",
        "--max-documents", "4", "--no-cache", "--quiet"]
TOPK = f"{SAES_DIR / 'sparsify/tiny-gemma4-8x'}@layers.2"
DECODERESEARCH = SAES_DIR / "decoderesearch-gemma-4-saes/tiny-gemma4/btk-mat-layer-2-k-8"
GS_SAE = SAES_DIR / "gemma-scope-2-tiny/resid_post/layer_2_width_256_l0_small"


def _refused(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sae-bench: error: "), err
    return err[0]


# ------------------------------------------------------------------ 1. names that select behaviour
@pytest.mark.parametrize("option, named, hint", [
    ("splicedloss.ablate_positions=all", "--task-option splicedloss.ablate_positions", "did you mean spliced_loss?"),
    ("nosuch.opt=1", "--task-option nosuch.opt", "unknown task"),
    ("spliced_loss.ablate_position=all", "--task-option spliced_loss.ablate_position",
     "did you mean ablate_positions"),
])
def test_a_misspelt_task_option_stops_the_run_before_any_work(tmp_path, capsys, option, named, hint):
    # the task the option names is not even among --tasks: it must still be a real task and option
    line = _refused(["run", *FAST, "-c", TOPK, "--tasks", "reconstruction", "--task-option", option,
                     "--results", str(tmp_path / "r")], capsys)
    assert named in line and hint in line
    assert not (tmp_path / "r").exists()  # before any work: not even the results folder


def test_a_suite_file_task_option_is_checked_too(tmp_path, capsys):
    suite = json.loads((FIXTURES_DIR / "suite.json").read_text())
    suite.update(model=str(TINY_MODEL_DIR), corpus=str(EVAL_CORPUS_PATH), checkpoints=[
        {"path": str(SAES_DIR / "sparsify/tiny-gemma4-8x"), "hookpoint": "layers.2"}],
        task_options={"probing": {"k_value": [1]}})
    (tmp_path / "suite.json").write_text(json.dumps(suite))
    line = _refused(["run", "--suite", str(tmp_path / "suite.json"), "--tasks", "sparsity", "--quiet",
                     "--results", str(tmp_path / "r")], capsys)
    assert "--task-option probing.k_value" in line and "did you mean k_values" in line


def test_the_python_api_checks_task_options(tmp_path):
    from sae_bench import CheckpointSpec, RunConfig, evaluate

    config = RunConfig(model=str(TINY_MODEL_DIR), corpus=str(EVAL_CORPUS_PATH), results_dir=tmp_path / "r",
                       tasks=["reconstruction"], task_options={"splicedloss": {"ablate_positions": "all"}})
    with pytest.raises(InputError, match="did you mean spliced_loss"):
        evaluate(config, [CheckpointSpec(str(SAES_DIR / "sparsify/tiny-gemma4-8x"), hookpoint="layers.2")])
    assert not (tmp_path / "r").exists()


def test_a_misspelt_task_name_suggests_the_closest(tmp_path, capsys):
    line = _refused(["run", *FAST, "-c", TOPK, "--tasks", "sparsty", "--results", str(tmp_path)], capsys)
    assert "unknown task; did you mean sparsity?" in line


def test_a_gate_rule_naming_no_metric_is_refused(tmp_path, capsys):
    from record_factories import write_records

    for side in ("a", "b"):
        write_records(tmp_path / side, [make_record_data("sae", "reconstruction", {"fvu": (0.2, 0.01)})])
    argv = ["gate", "--baseline", str(tmp_path / "a"), "--candidate", str(tmp_path / "b")]
    line = _refused([*argv, "--rule", "fvv=lower:0.01"], capsys)
    assert "rule fvv" in line and "did you mean fvu" in line
    assert main([*argv, "--rule", "fvu=lower:0.01"]) == 0  # a real metric, a family pattern, a task prefix
    assert main([*argv, "--rule", "reconstruction.fvu=lower:0.01", "--rule", "ce_*=lower:0.1"]) == 0


def test_an_unknown_release_lists_the_releases(capsys):
    line = _refused(["run", "-c", "gemma-scope-2-1b-typo:7", "--tasks", "sparsity", "--quiet"], capsys)
    assert "unknown release; did you mean gemma-scope-2-1b-pt" in line and "no such file" not in line
    assert "sae-bench releases" in line


# ------------------------------------------------------------------ 2. inputs quietly converted
def test_token_ids_must_be_json_integers(tmp_path, capsys):
    corpus = tmp_path / "ids.jsonl"
    corpus.write_text('{"input_ids": [5, 6, 7, 8]}\n{"input_ids": ["5", 6, 7, 8]}\n')
    line = _refused(["run", *FAST, "-c", TOPK, "--corpus", str(corpus), "--corpus-column", "input_ids",
                     "--tasks", "sparsity", "--results", str(tmp_path / "r")], capsys)
    assert "row 1 of column 'input_ids'" in line and "item 0 is '5' (a str)" in line and "JSON integers" in line


def test_an_empty_corpus_says_so(tmp_path, capsys):
    for text in ("", "\n  \n"):
        corpus = tmp_path / "empty.jsonl"
        corpus.write_text(text)
        line = _refused(["run", *FAST, "-c", TOPK, "--corpus", str(corpus), "--tasks", "sparsity",
                         "--results", str(tmp_path / "r")], capsys)
        assert "corpus file is empty" in line and "StopIteration" not in line


def test_a_link_loop_and_a_fifo_are_named_as_such(tmp_path, capsys):
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    os.mkfifo(tmp_path / "pipe.jsonl")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    cases = [(["--corpus", str(tmp_path / "loop_a")], "symbolic link loop"),
             (["--corpus", str(tmp_path / "pipe.jsonl")], "named pipe (FIFO)"),
             (["--corpus", str(tmp_path / "dangling")], "which does not exist"),
             (["--model", str(tmp_path / "loop_a")], "symbolic link loop")]
    for args, problem in cases:
        line = _refused(["run", *FAST, "-c", TOPK, *args, "--tasks", "sparsity", "--results",
                         str(tmp_path / "r")], capsys)
        assert problem in line and "no such file" not in line, line
    from sae_bench.checkpoints import load_checkpoint

    with pytest.raises(InputError, match="symbolic link loop"):
        load_checkpoint(str(tmp_path / "loop_a"))


def test_packing_one_huge_document_is_linear_and_says_its_size(tmp_path, capsys):
    import time

    from transformers import AutoTokenizer

    from sae_bench.inputs.corpus import arrange, load_documents

    tokenizer = AutoTokenizer.from_pretrained(str(TINY_MODEL_DIR))
    seconds = []
    for repeats in (20_000, 80_000):
        corpus = tmp_path / f"big{repeats}.jsonl"
        corpus.write_text(json.dumps({"text": "hello world " * repeats}) + "\n")
        docs = load_documents(corpus, max_documents=1)
        start = time.process_time()
        rows = arrange(docs, tokenizer, seq_len=32, corpus_id="big", packing="pack")
        seconds.append(time.process_time() - start)
        assert rows.n_sequences > repeats * 2 // 32 * 0.9
    assert seconds[1] < 4 * seconds[0] + 1.0, seconds  # 4x the text: about 4x the work, never 16x
    # the run says how much work the corpus makes before it starts (a packed document: many rows)
    corpus = tmp_path / "small.jsonl"
    corpus.write_text(json.dumps({"text": "hello world " * 300}) + "\n")
    capsys.readouterr()
    assert main(["run", "--model", str(TINY_MODEL_DIR), "-c", TOPK, "--corpus", str(corpus), "--no-cache",
                 "--max-documents", "1", "--corpus-packing", "pack", "--seq-len", "64", "--tasks", "sparsity",
                 "--results", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert re.search(r"^sae-bench: corpus: \d+ rows of 64 tokens, \d+ evaluated$", err, re.M), err
    assert "Generating" not in err and "\r" not in err and "\x1b[" not in err  # a log: plain lines only


# ------------------------------------------------------------------ 2. first-batch checks
def _jumprelu_copy(tmp_path, threshold: float):
    folder = tmp_path / f"jumprelu-{threshold:g}"
    shutil.copytree(SAES_DIR / "saelens/jumprelu-layers.2", folder)
    weights = load_file(folder / "sae_weights.safetensors")
    weights["threshold"] = torch.full_like(weights["threshold"], threshold)
    # a bias that puts every pre-activation above the threshold (or below it) on every token
    weights["b_enc"] = torch.full_like(weights["b_enc"], -1e6 if threshold > 0 else 1e6)
    save_file(weights, folder / "sae_weights.safetensors")
    return folder


@pytest.mark.parametrize("threshold, said", [(-1e9, "every latent fires on every token"),
                                             (1e9, "no latent fires on any token")])
def test_a_checkpoint_whose_latents_all_fire_or_none_is_flagged(tmp_path, capsys, threshold, said):
    folder = _jumprelu_copy(tmp_path, threshold)
    argv = ["run", *[a for a in FAST if a != "--quiet"], "-c", str(folder), "--tasks", "sparsity",
            "--results", str(tmp_path / "r")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "sae-bench: warning: " in err and said in err
    (path,) = (tmp_path / "r").rglob("sparsity.json")
    assert any(said in note for note in read_record(path).data["notes"])


def test_the_scale_warning_ignores_one_outlier_token():
    from sae_bench.run.first_batch import robust_explained_variance

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(512, 64, generator=generator)
    x_hat = x + 0.1 * torch.randn(512, 64, generator=generator)
    x_hat[7] += 1e4  # one token whose error dominates the batch's
    pooled = 1 - ((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    assert pooled < -100  # the old judgement: "far from the scale" on a sound SAE
    assert robust_explained_variance(x, x_hat) > 0.98
    assert robust_explained_variance(x, 30 * x) < 0  # a wrong scale is still caught


# ------------------------------------------------------------------ 3. models identified by what they are
def test_a_local_copy_is_the_model_its_config_or_model_id_names(tmp_path, capsys):
    copy = tmp_path / "my-local-copy"
    shutil.copytree(TINY_MODEL_DIR, copy)
    argv = ["run", *FAST, "--model", str(copy), "-c", str(DECODERESEARCH), "--tasks", "reconstruction"]
    line = _refused([*argv, "--results", str(tmp_path / "refused")], capsys)
    assert "trained on tiny-gemma4" in line
    assert main([*argv, "--model-id", "tiny-gemma4", "--results", str(tmp_path / "id")]) == 0
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "_name_or_path": "someorg/tiny-gemma4"}))
    assert main([*argv, "--results", str(tmp_path / "recorded")]) == 0
    (path,) = (tmp_path / "recorded").rglob("reconstruction.json")
    assert "model_mismatch" not in read_record(path).data


def test_gemma_3_270m_in_a_cache_folder_is_gemma_3_270m():
    from sae_bench.models.identity import identify

    config = {"model_type": "gemma3_text", "hidden_size": 640, "num_hidden_layers": 18, "vocab_size": 262144,
              "_name_or_path": None}
    folder = "/root/.cache/sae-bench-real/gemma-3-270m-a5fd3b62230a-v1"
    assert identify("google/gemma-3-270m", folder, config=config, local_folder=True) is None
    assert "hidden_size 1152 vs 640" in identify("google/gemma-3-270m", folder, local_folder=True,
                                                  config={**config, "hidden_size": 1152})
    assert "base vs instruction-tuned" in identify("google/gemma-3-270m", "/models/gemma-3-270m-it",
                                                   config=config, local_folder=True)
    assert "another model" in identify("google/gemma-3-270m", "google/gemma-3-1b-pt", config=config)


def test_a_gemma_scope_config_is_read_and_checked(tmp_path, capsys):
    from sae_bench.checkpoints import load_checkpoint
    from sae_bench.core.errors import CheckpointError

    folder = tmp_path / "resid_post" / GS_SAE.name
    shutil.copytree(GS_SAE, folder)
    config = {"architecture": "jump_relu", "hf_hook_point_in": "model.layers.2.output", "model_name": "gemma-v3-270m-pt"}
    (folder / "config.json").write_text(json.dumps(config))
    assert load_checkpoint(folder).metadata.source_model == "google/gemma-3-270m"
    line = _refused(["run", *FAST, "-c", str(folder), "--tasks", "sparsity", "--results", str(tmp_path / "r")], capsys)
    assert "trained on google/gemma-3-270m" in line and "another model" in line
    (folder / "config.json").write_text(json.dumps({**config, "hf_hook_point_in": "model.layers.5.output"}))
    with pytest.raises(CheckpointError, match="says layer 5 but the folder name"):
        load_checkpoint(folder)
    (folder / "config.json").write_text(json.dumps({**config, "architecture": "topk"}))
    with pytest.raises(CheckpointError, match="jump_relu"):
        load_checkpoint(folder)


# ------------------------------------------------------------------ 4. record reuse and declared metrics
TASK_FILE = '''
from dataclasses import dataclass
from sae_bench import Metric, MetricSpec, Task, TaskConfig, TaskOutput, register_task


@register_task
class Declares(Task):
    name = "declares_metrics"
    version = "1"
    description = "reports the metrics it declares"
    metrics = tuple(MetricSpec(n, "lower", n + " of the codes") for n in NAMES)

    @dataclass(frozen=True)
    class Config(TaskConfig):
        pass

    def run(self, sae, ctx):
        return TaskOutput(metrics={n: Metric(1.0) for n in NAMES})
'''


def test_a_metric_added_without_a_version_bump_is_computed_not_reused(tmp_path, capsys, monkeypatch):
    from sae_bench.core import registry

    registry.discover()  # the included task leaves the registry with this test
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))
    monkeypatch.setattr(registry, "_ORIGINS", dict(registry._ORIGINS))
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    argv = ["run", *FAST, "-c", TOPK, "--include-path", str(tasks), "--tasks", "declares_metrics",
            "--results", str(tmp_path / "r")]
    (tasks / "declares.py").write_text("NAMES = ['alpha']\n" + TASK_FILE)
    assert main(argv) == 0
    capsys.readouterr()
    (tasks / "declares.py").write_text("NAMES = ['alpha', 'beta']\n" + TASK_FILE)  # same version
    assert main(argv) == 0
    assert "(0 reused)" in capsys.readouterr().out
    (path,) = (tmp_path / "r").rglob("declares_metrics.json")
    record = read_record(path)
    assert sorted(record.metrics) == ["alpha", "beta"]
    assert record.data["task"]["metrics_declared"] == ["alpha", "beta"]
    assert main(argv) == 0  # nothing changed: reused
    assert "(1 reused)" in capsys.readouterr().out


def test_a_record_without_the_declared_list_is_judged_by_its_specs():
    from types import SimpleNamespace

    from sae_bench.run.run_records import declares_the_same
    from sae_bench.core.task_api import MetricSpec

    data = validate(make_record_data("sae", "reconstruction", {"fvu": (0.2, 0.01)})).data
    data["metric_specs"] = {"fvu": {"name": "fvu", "direction": "lower", "definition": "d"}}
    task = lambda *names: SimpleNamespace(metrics=tuple(MetricSpec(n, "lower", n) for n in names))  # noqa: E731
    assert declares_the_same(data, task("fvu", "mse"))  # an older record: what it reports is still declared
    assert not declares_the_same(data, task("mse"))
    data["task"]["metrics_declared"] = ["fvu"]
    assert declares_the_same(data, task("fvu")) and not declares_the_same(data, task("fvu", "mse"))
