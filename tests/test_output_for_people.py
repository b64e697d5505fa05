"""Issue 22: output for people. Progress is live only on a terminal and one plain line per finished
stage in a log; the listing commands answer without importing torch; every command's plain output
fits 100 columns; shortened names keep the part that tells them apart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sae_bench.cli import main
from sae_bench.core.progress import PlainProgress, tqdm
from sae_bench.analysis.summary import _fitted, next_steps, shorten_names


def _listing(command: list[str], home: Path) -> subprocess.CompletedProcess:
    code = ("import sys; from sae_bench.cli import main; rc = main(sys.argv[1:]); "
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr); sys.exit(rc)")
    env = {**os.environ, "SAE_BENCH_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, env=env, timeout=300)


def test_listing_commands_fit_100_columns_and_skip_torch(tmp_path):
    first = _listing(["tasks"], tmp_path)  # builds the task index (imports the tasks once)
    assert first.returncode == 0 and "reconstruction" in first.stdout
    for command in (["tasks"], ["metrics"], ["releases"]):
        done = _listing(command, tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stderr.strip().splitlines()[-1] == "NO-TORCH", (command, done.stderr)
        assert max(len(line) for line in done.stdout.splitlines()) <= 100, command
    wide = _listing(["releases", "--wide"], tmp_path)
    assert max(len(line) for line in wide.stdout.splitlines()) > 100  # every column on one row
    markdown = _listing(["metrics", "--format", "markdown"], tmp_path)
    assert "| metric | better |" in markdown.stdout


def test_the_task_index_is_rebuilt_when_a_source_file_changes(tmp_path, monkeypatch):
    import sae_bench.tasks
    from sae_bench.core import registry, task_index

    monkeypatch.setenv("SAE_BENCH_HOME", str(tmp_path))
    before = task_index.index_key()
    source = Path(sae_bench.tasks.__path__[0]) / "sparsity" / "__init__.py"
    stat = source.stat()
    try:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert task_index.index_key() != before
    finally:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert task_index.index_key() == before
    found = task_index.declarations()
    assert (tmp_path / f"task-index-{before[:16]}.json").exists() and task_index.declarations() == found
    assert all(not name.startswith("declares") for name in found)  # never a task an --include-path added
    assert found["sparsity"].metrics == tuple(registry.get_task("sparsity").metrics)


def test_shortened_names_keep_the_part_that_differs():
    short = shorten_names(["ernos/tiny_sae.safetensors", "ernos/tiny_sae_codenames.safetensors"], 30)
    assert short["ernos/tiny_sae.safetensors"] == "ernos/tiny_sae.safetensors"
    assert "_codenames" in short["ernos/tiny_sae_codenames.safetensors"]
    assert len(short["ernos/tiny_sae_codenames.safetensors"]) <= 30
    twins = shorten_names(["a" * 40 + "X" + "b" * 40, "a" * 40 + "Y" + "b" * 40], 30)
    assert len(set(twins.values())) == 2 and all(len(v) <= 30 for v in twins.values())


def test_next_lines_fit_100_columns():
    long = "/tmp/results/fixtures_saes_saelens_jumprelu-layers_2-1f119ec8/layers.2"
    lines = _fitted(["sae-bench", "compare", long, long.replace("jumprelu", "standard")])
    assert len(lines) == 2 and lines[0].endswith(" \\") and all(len(line) <= 100 for line in lines)
    assert next_steps([], "results")[1] == "  sae-bench leaderboard build --results results --out leaderboard"


def test_progress_is_plain_lines_off_a_terminal(capsys, monkeypatch):
    monkeypatch.delenv("SAE_BENCH_PROGRESS", raising=False)
    bar = tqdm(range(3), desc="activations @ layers.2", unit="batch")
    assert isinstance(bar, PlainProgress) and list(bar) == [0, 1, 2]
    records = tqdm(total=2, desc="sae-bench", unit="record", per_step=True)
    records.set_description("sae-a @ layers.2 × sparsity")
    records.update(1)
    records.close()
    quiet = tqdm(range(2), desc="quiet", disable=True)
    assert list(quiet) == [0, 1]
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("sae-bench: activations @ layers.2: 3 batches in ")
    assert err[1:] == ["sae-bench: [1/2] sae-a @ layers.2 × sparsity"]
    monkeypatch.setenv("SAE_BENCH_PROGRESS", "live")
    assert not isinstance(tqdm(range(1), disable=True), PlainProgress)


def test_a_run_log_holds_one_line_per_finished_stage(tmp_path, capsys):
    from sae_bench.fixtures import EVAL_CORPUS_PATH, SAES_DIR, TINY_MODEL_DIR

    argv = ["run", "--model", str(TINY_MODEL_DIR), "--corpus", str(EVAL_CORPUS_PATH), "--seq-len", "32",
            "--max-documents", "8", "--no-cache", "--tasks", "reconstruction,sparsity", "--results", str(tmp_path),
            "-c", f"{SAES_DIR / 'sparsify/tiny-gemma4-8x'}@layers.2"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert "\r" not in err and "\x1b[" not in err, err
    assert len(lines) == 4 and all(line.startswith("sae-bench: ") and len(line) <= 100 for line in lines), lines
    assert lines[-1].startswith("sae-bench: [2/2] ") and "× sparsity" in lines[-1]
    assert all(len(line) <= 100 for line in out.splitlines() if str(tmp_path) not in line), out  # paths given
