"""benchmarks/bench_suite.py on a tiny setting: it exits 0 and the harness and the per-task reference
agree on every metric. No timing assertions (speed targets live in benchmarks/README.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"


def _import_bench():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_suite
    finally:
        sys.path.remove(str(BENCH))
    return bench_suite


def test_bench_suite_tiny_run_agrees_exactly(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(BENCH / "bench_suite.py"), "--checkpoints", "2", "--max-documents", "6",
                           "--no-warmup", "--no-progress", "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["identical"] is True and result["problems"] == [] and result["rtol"] == 0.0
    assert result["metrics_compared"] == 2 * 2 * (6 + 4 + 9)  # 2 checkpoints x (value, stderr) x metrics per task
    assert result["harness_seconds"][0] > 0 and result["reference_seconds"][0] > 0
    assert "metrics identical" in proc.stdout


def test_compare_reports_any_difference():
    bench = _import_bench()
    metrics = {"mse": {"value": 0.5, "stderr": 0.01}, "fvu": {"value": None, "stderr": None}}
    harness = {"a": {task: dict(metrics) for task in bench.TASKS}}
    same = json.loads(json.dumps(harness))
    assert bench.compare(harness, same) == []
    off = json.loads(json.dumps(harness))
    off["a"]["sparsity"]["mse"]["value"] = 0.5 + 1e-15
    assert bench.compare(harness, off) == [f"a/sparsity/mse.value: harness 0.5 vs reference {0.5 + 1e-15!r}"]
    assert bench.compare(harness, off, rtol=1e-12) == []
    off["a"]["reconstruction"]["fvu"]["value"] = 1.0
    assert any("fvu.value" in p for p in bench.compare(harness, off))
    del off["a"]["spliced_loss"]
    assert any("spliced_loss: missing on the reference side" in p for p in bench.compare(harness, off))


def test_harness_metrics_is_the_runners_site_loop():
    """bench_shapes' in-process harness (`harness_metrics`, the runner's `SiteRun`) gives the numbers
    `sae_bench.evaluate` writes, on the same model, corpus and checkpoint."""
    bench = _import_bench()
    from sae_bench import load_checkpoint, load_model
    from sae_bench.inputs.corpus import load_corpus

    setting = bench.fixture_setting(1, max_documents=6, show_progress=False)
    label, path, fmt = setting.checkpoints[0]
    model = load_model(setting.model)
    corpus = load_corpus(setting.corpus, model.tokenizer, seq_len=setting.seq_len, max_documents=6)
    loaders = [(label, lambda: load_checkpoint(path, hookpoint=setting.hookpoint, format=fmt))]
    in_process = bench.harness_metrics(model, corpus, setting.hookpoint, loaders, batch_size=setting.batch_size)
    assert in_process == bench.run_harness(setting)


def test_bench_real_derives_distinct_loadable_checkpoints_and_compares_within_rtol(tmp_path):
    """bench_real's pieces that need no real model: the 4 derived checkpoints load through
    load_checkpoint with their own k and their own sha256; the comparison flags what exceeds rtol."""
    sys.path.insert(0, str(BENCH))
    try:
        import bench_real
    finally:
        sys.path.remove(str(BENCH))
    from sae_bench.checkpoints import load_checkpoint
    from sae_bench.fixtures import SAES_DIR

    runs = bench_real.derive_checkpoints(SAES_DIR / "sparsify" / "tiny-gemma4-8x" / "layers.2", tmp_path, "layers.2")
    saes = [load_checkpoint(run, hookpoint="layers.2") for run in runs]
    assert [s.metadata.activation.k for s in saes] == list(bench_real.VARIANT_KS)
    assert len({s.metadata.weights_sha256 for s in saes}) == len(saes)
    problems, worst, n = bench_real.compare({"a": 1.0, "b": 2.0, "c": None, "only_h": 1.0},
                                            {"a": 1.0 + 1e-7, "b": 2.1, "c": 3.0}, 1e-5)
    assert n == 2 and worst > 0.04
    assert [p.split(":")[0] for p in problems] == ["b", "c"]


def test_a_child_measures_its_own_peak_rss_not_its_parents(tmp_path):
    """bench_real's peak RSS is the worker's own VmHWM: a child of a parent that touched 400 MB
    reports far less (ru_maxrss would carry the parent's high-water mark across fork + exec)."""
    import resource

    if not Path("/proc/self/status").exists():
        pytest.skip("VmHWM is Linux's")
    script = tmp_path / "child.py"
    script.write_text(f"import sys; sys.path.insert(0, {str(BENCH)!r}); import bench_real; "
                      "print(bench_real.own_peak_rss_bytes())")
    ballast = bytearray(400 << 20)  # touched: zero-filled pages are resident
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    own = int(subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"}).stdout.split()[-1])
    del ballast
    assert own < 300 << 20
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 > 400 << 20


def test_arithmetic_bound_counts_by_hand():
    """benchmarks/arithmetic.py on a toy shape: every term counted by hand."""
    sys.path.insert(0, str(BENCH))
    try:
        from arithmetic import Shape, harness_macs, reference_macs
    finally:
        sys.path.remove(str(BENCH))
    shape = Shape(layers=4, layer_macs=10.0, head_macs=100.0, d=2)
    # reference at layer 1: prefix 2 layers + 4 full forwards with the lm_head at every token + SAE 2*d*n
    assert reference_macs(shape, [1], n_latents=3, tokens=5) == 5 * (20 + 4 * (40 + 100) + 12)
    # harness cold, 2 checkpoints at layer 1: one full forward, zero+mean+2 spliced suffixes of 2 layers,
    # lm_head at the counted positions: clean, zero, mean, 2 spliced
    assert harness_macs(shape, {1: 2}, 3, tokens=5, counted=4) == 5 * (40 + 4 * 20 + 2 * 12) + 4 * 5 * 100
    # warm: the spliced suffixes and lm_head products only (clean recomputed)
    assert harness_macs(shape, {1: 2}, 3, tokens=5, counted=4, cold=False) == 5 * (2 * 20 + 2 * 12) + 4 * 3 * 100
    # two sites share the full forward and the clean lm_head
    assert harness_macs(shape, {1: 1, 2: 1}, 3, 5, 4) == 5 * (40 + 3 * 20 + 3 * 10 + 2 * 12) + 4 * (1 + 2 * 3) * 100
