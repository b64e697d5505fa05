"""Whole releases (issue 24, items 2 and 5): the one-line plan, --dry-run, every published layer by
default, a layer named twice and a sweep that needs more disk than is free (one error line, exit 2,
nothing written), and the site / checkpoint counts beside the progress bar's ETA."""

from __future__ import annotations

from pathlib import Path

import pytest

from sae_bench.inputs import releases

from sae_bench.run import sweep_plan
from sae_bench.cli import main
from sae_bench.fixtures import EVAL_CORPUS_PATH, FIXTURES_DIR, TINY_MODEL_DIR

SPARSIFY = FIXTURES_DIR / "saes/sparsify/tiny-gemma4-8x"
PREFIX = "sae-bench: error: "


def _argv(tmp_path: Path, *extra: str) -> list[str]:
    return ["run", "--model", str(TINY_MODEL_DIR), "--corpus", str(EVAL_CORPUS_PATH), "--seq-len", "32",
            "--max-documents", "6", "--tasks", "reconstruction,sparsity", "--results", str(tmp_path / "results"),
            "--cache-dir", str(tmp_path / "cache"), "-c", f"{SPARSIFY}@layers.1", "-c", f"{SPARSIFY}@layers.2", *extra]


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and lines and lines[-1].startswith(PREFIX), stderr
    assert sum(line.startswith(PREFIX) for line in lines) == 1, stderr
    return lines[-1]


def test_release_without_layers_is_every_published_layer():
    every = releases.expand("gemma-scope-2-270m-pt-res-all")
    assert [c.layer for c in every] == list(range(18))
    assert every[9].subfolder == "resid_post_all/layer_9_width_16k_l0_small" and every[9].hookpoint == "layers.9"
    tc = releases.expand("gemma-scope-2-270m-pt-transcoders")  # layer 15 publishes only a 262k folder
    assert [c.subfolder for c in tc] == ["transcoder/layer_9_width_16k_l0_small_affine",
                                         "transcoder/layer_15_width_262k_l0_big_affine"]
    assert releases.get_release("gemma-scope-2-1b-pt").name == "gemma-scope-2-1b-pt-res"  # the old name


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    assert main(_argv(tmp_path, "--dry-run")) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("plan: 2 checkpoints at 2 sites, "), out
    assert "batch forwards" in out[0] and "of arithmetic" in out[0] and "cache +" in out[0]
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()


def test_dry_run_of_a_release_counts_its_layers(tmp_path, capsys):
    argv = ["run", "--release", "gemma-scope-2-270m-pt-res", "--model", str(TINY_MODEL_DIR), "--corpus",
            str(EVAL_CORPUS_PATH), "--seq-len", "32", "--max-documents", "4", "--no-cache",
            "--results", str(tmp_path / "r"), "--dry-run"]
    assert main(argv) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("plan: 4 checkpoints at 4 sites") and "no activation cache" in line, line
    assert not (tmp_path / "r").exists()


def test_plan_counts_forwards_and_cached_sites(tmp_path):
    from sae_bench.cli import build_parser
    from sae_bench.cli.run import run_config_from_args

    config, specs = run_config_from_args(build_parser().parse_args(_argv(tmp_path)))
    plan = sweep_plan.make_plan(config, specs, ["reconstruction", "spliced_loss"])
    # 1 batch of 6 rows: one capture pass for both sites (its final states the clean run), a zero-ablated
    # suffix per site, one spliced suffix per checkpoint
    assert (plan.checkpoints, plan.sites, plan.batches, plan.forwards) == (2, ["layers.1", "layers.2"], 1, 1 + 2 + 2)
    assert plan.cache_bytes > 0
    no_splice = sweep_plan.make_plan(config, specs, ["reconstruction"])
    assert no_splice.forwards == 1 and no_splice.cache_bytes < plan.cache_bytes


def test_a_layer_named_twice_is_refused(tmp_path, capsys):
    argv = ["run", "--release", "gemma-scope-2-270m-pt-res", "--layers", "5,9,5", "--model", str(TINY_MODEL_DIR),
            "--corpus", str(EVAL_CORPUS_PATH), "--results", str(tmp_path / "r")]
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "layer 5 is named twice" in line and "gemma-scope-2-270m-pt-res" in line
    assert not (tmp_path / "r").exists()


def test_a_sweep_that_needs_more_disk_than_is_free_is_refused_before_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sweep_plan, "free_bytes", lambda path: 1000)
    assert main(_argv(tmp_path)) == 2
    captured = capsys.readouterr()
    line = _one_error_line(captured.err)
    assert "activation cache" in line and "only 1.0 KB is free" in line and str(tmp_path / "cache") in line
    assert captured.err.count("plan: ") == 1  # the plan is said first
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()


def test_progress_shows_site_and_checkpoint_counts_and_a_rerun_resumes(tmp_path, capsys):
    assert main(_argv(tmp_path, "--no-cache")) == 0
    first = capsys.readouterr()
    assert "site 2/2, checkpoint 2/2" in first.err and "plan: 2 checkpoints at 2 sites" in first.err, first.err[-2000:]
    assert main(_argv(tmp_path, "--no-cache")) == 0  # an interrupted sweep run again: whole records are reused
    out = capsys.readouterr().out
    assert "4 records in" in out and "(4 reused)" in out, out
