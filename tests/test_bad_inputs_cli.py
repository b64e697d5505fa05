"""End-to-end bad-input contract (issue 6, item 1): every bad input in tests/bad_input_corpus.py,
offered through the `sae-bench` command line, ends with exit code 2, ONE stderr line
"sae-bench: error: ..." naming the input and the problem, no traceback, and no result file.

The fixture model is loaded once per module and handed back by `ModelAdapter.load` for the
fixture folder (the loader itself is exercised by the one real subprocess test at the end).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bad_input_corpus import CASES, GOOD_CHECKPOINT, SPARSIFY_RUN, run_argv, sparsify_copy
from sae_bench.cli import main
from sae_bench.core.errors import EXIT_BAD_INPUT
from sae_bench.fixtures import TINY_MODEL_DIR
from sae_bench.models import ModelAdapter

PREFIX = "sae-bench: error: "


@pytest.fixture(scope="module", autouse=True)
def cached_model():
    """One load of the fixture model per module; other refs go to the real loader."""
    real = ModelAdapter.load.__func__
    cache: dict = {}

    def load(cls, ref, **kw):
        if Path(str(ref)).resolve() == Path(TINY_MODEL_DIR).resolve() and not kw.get("trust_remote_code"):
            if "model" not in cache:
                cache["model"] = real(cls, ref, **kw)
            return cache["model"]
        return real(cls, ref, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ModelAdapter, "load", classmethod(load))
        yield


def result_files(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and (p.suffix in (".json", ".tmp") or ".tmp" in p.name))


def error_line(stderr: str) -> str:
    """The last stderr line, checked to be the one error line (progress bars may precede it)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    assert "Traceback" not in stderr, stderr
    last = lines[-1]
    assert last.startswith(PREFIX), stderr
    assert sum(line.startswith(PREFIX) for line in lines) == 1, stderr
    return last


def check_contract(code: int, stderr: str, invocation) -> str:
    assert code == EXIT_BAD_INPUT, stderr
    line = error_line(stderr)
    assert invocation.names in line, line
    problem = line[len(PREFIX):].replace(invocation.names, "")  # the words must not come from the name
    for word in invocation.problem:
        assert word.lower() in problem.lower(), line
    for folder in invocation.no_results_in:
        assert result_files(folder) == [], line
    return line


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_with_one_line(case, tmp_path, capsys):
    invocation = case.make(tmp_path)
    code = main(invocation.argv)
    captured = capsys.readouterr()
    check_contract(code, captured.err, invocation)


def test_corpus_ids_are_unique():
    assert len({c.id for c in CASES}) == len(CASES)


def test_unknown_hookpoint_lists_close_matches(tmp_path, capsys):
    invocation = next(c for c in CASES if c.id == "unknown-hookpoint-ernos").make(tmp_path)
    assert main(invocation.argv) == EXIT_BAD_INPUT
    line = error_line(capsys.readouterr().err)
    assert "layers.22" in line and "layers.2" in line.replace("layers.22", "")


def test_bad_checkpoint_after_good_ones_writes_nothing(tmp_path, capsys):
    """Three good checkpoints at two hookpoints, then a truncated one: not one record is written."""
    run = sparsify_copy(tmp_path, layer=3)
    (run / "layers.3/sae.safetensors").write_bytes((run / "layers.3/sae.safetensors").read_bytes()[:500])
    argv = run_argv(tmp_path, f"{SPARSIFY_RUN}@layers.1", f"{SPARSIFY_RUN}@layers.3", f"{run}@layers.3",
                    tasks="reconstruction,sparsity")
    assert main(argv) == EXIT_BAD_INPUT
    line = error_line(capsys.readouterr().err)
    assert "sae.safetensors" in line
    assert result_files(tmp_path / "results") == []


def test_subprocess_exit_status_is_2(tmp_path):
    """The real process: `python -m sae_bench run ...` exits 2 with one error line and no result."""
    weights = tmp_path / "sae.pt"
    weights.write_bytes(b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00}\x94.")  # a pickle
    results = tmp_path / "results"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "sae_bench", "run", "--model", str(TINY_MODEL_DIR), "--corpus",
                           str(Path(TINY_MODEL_DIR).parent / "corpus/eval.jsonl"), "--tasks", "reconstruction",
                           "-c", GOOD_CHECKPOINT, "-c", str(weights), "--results", str(results), "--no-cache",
                           "--quiet"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == EXIT_BAD_INPUT, proc.stderr
    line = error_line(proc.stderr)
    assert "sae.pt" in line and "pickle" in line
    assert result_files(results) == []
