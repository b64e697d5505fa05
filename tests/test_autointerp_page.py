"""autointerp on the leaderboard: a ranking-table column, a frontier panel against L0, and the
checkpoint page's latent table with hostile explanations escaped."""

from __future__ import annotations

import json

import pytest

from sae_bench.cli import main
from sae_bench.fixtures import EVAL_CORPUS_PATH, SAES_DIR, TINY_MODEL_DIR
from sae_bench.leaderboard_build import build_leaderboard
from sae_bench.tasks.autointerp.page import render

HOSTILE = '<script>alert(1)</script>" onmouseover="x'


def test_section_escapes_model_text_and_marks_only_our_markers():
    data = {"artifacts": {"judge": {"identity": "local:<b>m</b>", "prompt_versions": {"explain": "saebench_v1"}},
                          "judge_usage": {"prompt_tokens": 10, "completion_tokens": 2, "tokens_per_latent": 12.0},
                          "per_latent": [{"latent": 3, "explanation": HOSTILE,
                                          "scores": {"autointerp_score": 0.5, "detection_balanced_accuracy": None},
                                          "failures": {"fuzzing<i>": 1},
                                          "top_contexts": ["a <<b<img src=x onerror=1>>> c"]}]}}
    html = "\n".join(render(data))
    assert "<script>" not in html and "<img" not in html and "<b>m" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot; onmouseover=&quot;x" in html
    assert "<mark>b&lt;img src=x onerror=1</mark>" in html
    assert render(None) == []


@pytest.mark.slow  # two fixture runs and a leaderboard build: ~30 s alone, 90 s on the shared machine
def test_board_has_an_autointerp_column_frontier_and_latent_table(tmp_path, monkeypatch):
    monkeypatch.setenv("SAE_BENCH_JUDGE_CACHE", str(tmp_path / "cache"))
    results = tmp_path / "results"
    argv = ["run", "--model", str(TINY_MODEL_DIR), "--corpus", str(EVAL_CORPUS_PATH), "--seq-len", "64",
            "--checkpoint", f"{SAES_DIR / 'sparsify/tiny-gemma4-8x'}@layers.2",
            "--checkpoint", f"{SAES_DIR / 'sparsify/untrained-8x'}@layers.2",
            "--tasks", "sparsity,autointerp", "--results", str(results), "--quiet"]
    for opt in ("judge=oracle", "n_latents=16", "buffer=4", "min_firing=5"):
        argv += ["--task-option", f"autointerp.{opt}"]
    assert main(argv) == 0
    report = build_leaderboard(results, tmp_path / "board")
    version = tmp_path / "board" / report.version
    index = (version / "index.html").read_text()
    assert "autointerp_score" in index
    plots = json.loads((version / "version.json").read_text())["figures"]
    assert any("autointerp_score against L0" in p["title"] for p in plots), plots
    pages = [p.read_text() for p in (version / "checkpoints").glob("*.html")]
    assert len(pages) == 2 and all("Automated interpretability" in p and "the token" in p for p in pages)
