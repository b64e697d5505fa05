"""Interrupted, concurrent and repeated runs (issue 6): no partial files, resumable, deterministic.

A run is killed at the worst moment (a result record or a cache shard fully written to its
temporary file, not yet renamed) by a SIGKILL the process sends itself; the rerun must reuse what
was completed and give the same numbers as a run that was never interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sae_bench.fixtures import FIXTURES_DIR
from sae_bench.records.results import iter_records

TASKS = "reconstruction,sparsity"
CHECKPOINTS = [
    {"path": str(FIXTURES_DIR / "saes/sparsify/tiny-gemma4-8x"), "hookpoint": "layers.1", "format": "sparsify",
     "label": "l1"},
    {"path": str(FIXTURES_DIR / "saes/sparsify/tiny-gemma4-8x"), "hookpoint": "layers.2", "format": "sparsify",
     "label": "l2"},
    {"path": str(FIXTURES_DIR / "saes/saelens/standard-layers.2"), "hookpoint": "layers.2", "format": "saelens",
     "label": "std"},
]


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("suite")
    path = folder / "suite.json"
    path.write_text(json.dumps({"model": str(FIXTURES_DIR / "tiny-gemma4"), "corpus": str(FIXTURES_DIR / "corpus/eval.jsonl"),
                                "seq_len": 32, "checkpoints": CHECKPOINTS, "label_root": "rel"}))
    return path


def _argv(suite: Path, results: Path, cache: Path | None) -> list[str]:
    argv = ["run", "--suite", str(suite), "--results", str(results), "--tasks", TASKS, "--quiet",
            "--max-documents", "24"]
    return argv + (["--cache-dir", str(cache)] if cache is not None else ["--no-cache"])


KILLER = textwrap.dedent("""
    import os, signal, sys
    real_replace = os.replace
    state = {"n": 0}
    suffix, kill_at = sys.argv[1], int(sys.argv[2])

    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith(suffix) and not str(dst).endswith("complete.json"):
            state["n"] += 1
            if state["n"] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # the temporary file is complete, the rename never happens
        return real_replace(src, dst, *args, **kwargs)

    os.replace = replace
    from sae_bench.cli import main
    sys.exit(main(sys.argv[3:]))
""")


def _run_subprocess(argv: list[str], *prefix: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    script = KILLER if prefix else "import sys\nfrom sae_bench.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", script, *prefix, *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _metrics_by_path(results: Path) -> dict[str, str]:
    return {str(r.path.relative_to(results)): json.dumps(
        {"metrics": r.data["metrics"], "counts": r.data["counts"], "artifacts": r.data.get("artifacts")},
        sort_keys=True) for r in iter_records(results)}


@pytest.fixture(scope="module")
def reference(suite, tmp_path_factory) -> dict[str, str]:
    """An uninterrupted run, in process."""
    from sae_bench.cli import main

    results = tmp_path_factory.mktemp("reference")
    assert main(_argv(suite, results, None)) == 0
    metrics = _metrics_by_path(results)
    assert len(metrics) == len(CHECKPOINTS) * 2
    return metrics


def test_same_command_twice_gives_byte_identical_metrics(suite, reference, tmp_path):
    from sae_bench.cli import main

    assert main(_argv(suite, tmp_path / "again", None)) == 0
    assert _metrics_by_path(tmp_path / "again") == reference


def test_records_state_the_seed_and_randomness(suite, reference, tmp_path):
    from sae_bench.cli import main

    assert main(_argv(suite, tmp_path / "r", None) + ["--seed", "7"]) == 0
    for record in iter_records(tmp_path / "r"):
        assert record.data["seed"] == 7
        assert record.data["randomness"]["seed"] == 7
        sources = record.data["randomness"]["sources"]
        task = record.data["task"]["name"]
        if task == "sparsity":  # the bootstrap of dead/dense fractions is the only random part
            assert len(sources) == 1 and "bootstrap" in sources[0] and "seed" in sources[0]
        else:
            assert sources == ["none: deterministic given the inputs"], (task, sources)


@pytest.mark.parametrize("suffix, kill_at", [(".json", 3), (".safetensors", 2)], ids=["record", "cache-shard"])
def test_killed_run_leaves_no_partial_file_and_resumes_to_identical_results(suite, reference, tmp_path, suffix, kill_at):
    results, cache = tmp_path / "results", tmp_path / "cache"
    killed = _run_subprocess(_argv(suite, results, cache), suffix, str(kill_at))
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL
    written = list(results.rglob("*.json")) if results.exists() else []
    if suffix == ".json":
        assert len([p for p in written if not p.name.startswith(".")]) == kill_at - 1
    iter_records(results) if results.exists() else None  # every visible record parses and validates
    for shard in cache.rglob("shard_*.safetensors"):  # every visible shard is whole
        from safetensors.torch import load_file

        load_file(str(shard))

    resumed = _run_subprocess(_argv(suite, results, cache))
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    if suffix == ".json":
        assert f"({kill_at - 1} reused)" in out
    assert _metrics_by_path(results) == reference
    assert not list(results.rglob("*.tmp")), "the rerun removes the killed writer's temporary files"
    assert not list(cache.rglob("*.tmp"))


def test_two_runs_into_the_same_folder_at_once_do_not_corrupt_each_other(suite, reference, tmp_path):
    results, cache = tmp_path / "results", tmp_path / "cache"
    runs = [_run_subprocess(_argv(suite, results, cache)) for _ in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    assert _metrics_by_path(results) == reference
    assert not list(results.rglob("*.tmp"))
