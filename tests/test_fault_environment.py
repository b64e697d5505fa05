"""Hostile environments and everyday paths (issue 15): one test per class of failure, each driving
the real `sae-bench` command in a subprocess.

The contract everywhere: one stderr line `sae-bench: error: <input>: <problem>` naming the path,
exit code 2, no traceback, every record already written intact and no half-written file.
Classes: environment faults (non-UTF-8 input, a results/cache/leaderboard folder that is a file,
not writable, or on a full disk), forged error lines, colliding results folders, results folders
mistaken for checkpoints, option ranges, pickles and duplicate JSON keys, absolute paths in records,
and `--quiet` (silent stderr).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from sae_bench.core import registry
from sae_bench.core.errors import EXIT_BAD_INPUT
from sae_bench.fixtures import EVAL_CORPUS_PATH, SAES_DIR, TINY_MODEL_DIR
from sae_bench.records.results import checkpoint_folder, folder_name, is_results_path, iter_records, read_record

PREFIX = "sae-bench: error: "
SPARSIFY = SAES_DIR / "sparsify/tiny-gemma4-8x"
ERNOS = SAES_DIR / "ernos/tiny_sae.safetensors"
STORED_RECORDS = Path(__file__).resolve().parent.parent / "leaderboard/v1/results"  # records of the committed board
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def cli(*argv: str, cwd: Path | None = None, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "sae_bench", *argv], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=300)


def small_run(results: Path, *checkpoints: str, tasks: str = "reconstruction", extra: tuple[str, ...] = ()):
    """argv of a small real run on the fixture model (4 documents of 16 tokens)."""
    argv = ["run", "--model", str(TINY_MODEL_DIR), "--corpus", str(EVAL_CORPUS_PATH), "--seq-len", "16",
            "--max-documents", "4", "--tasks", tasks, "--results", str(results), "--quiet"]
    for ref in checkpoints:
        argv += ["-c", ref]
    return argv + list(extra or ("--no-cache",))


def error_line(proc: subprocess.CompletedProcess, names: str, *words: str) -> str:
    """Exit 2 and exactly one stderr line, the error, naming `names` and saying `words`."""
    assert proc.returncode == EXIT_BAD_INPUT, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(PREFIX), proc.stderr
    line = lines[0]
    assert names in line, line
    problem = line.replace(names, "")
    for word in words:
        assert word.lower() in problem.lower(), line
    return line


def partial_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and ".tmp" in p.name) if folder.exists() else []


def record_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.json")) if folder.exists() else []


# ------------------------------------------------------------------------- 1. environment faults
def _unwritable_prefix() -> tuple[str, ...]:
    """A command prefix under which permission bits bind (as root: every capability dropped)."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv"):
        return ("setpriv", "--inh-caps=-all", "--bounding-set=-all", "--")
    if shutil.which("capsh"):
        return ("capsh", "--drop=cap_dac_override,cap_dac_read_search,cap_fowner", "--")
    pytest.skip("running as root without setpriv or capsh: permissions cannot be made to bind")


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs at tmp/full (skipped where mounting is not allowed); unmounted afterwards."""
    mount = tmp_path / "full"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (not root or no CAP_SYS_ADMIN): {proc.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(folder: Path, leave: int) -> None:
    """Fill the file system of `folder` until `leave` bytes are free."""
    stat = os.statvfs(folder)
    free = stat.f_bavail * stat.f_frsize
    with open(folder / "filler", "wb") as handle:
        handle.write(b"\0" * max(0, free - leave))


def test_environment_faults_are_one_line_errors(tmp_path):
    """Non-UTF-8 inputs; a results, cache or leaderboard folder that is a regular file."""
    bad = b'{"model": "m", "checkpoints": []}\xff\xfe'
    (tmp_path / "suite.json").write_bytes(bad)
    error_line(cli("run", "--suite", str(tmp_path / "suite.json"), "--quiet"), "suite.json", "not valid UTF-8")
    (tmp_path / "rules.json").write_bytes(b'{"fvu": "lower\xff"}')
    error_line(cli("gate", "--baseline", str(tmp_path), "--candidate", str(tmp_path), "--rules",
                   str(tmp_path / "rules.json")), "rules.json", "not valid UTF-8")
    corpus = tmp_path / "latin1.jsonl"
    corpus.write_bytes('{"text": "caf\xe9 au lait"}\n'.encode("latin-1"))
    argv = small_run(tmp_path / "r0", f"{SPARSIFY}@layers.2")
    argv[argv.index("--corpus") + 1] = str(corpus)
    error_line(cli(*argv), "latin1.jsonl", "corpus")

    in_the_way = tmp_path / "occupied"
    in_the_way.write_text("a regular file\n")
    error_line(cli(*small_run(in_the_way, f"{SPARSIFY}@layers.2")), "occupied", "results folder", "file")
    error_line(cli(*small_run(tmp_path / "r1", f"{SPARSIFY}@layers.2", extra=("--cache-dir", str(in_the_way)))),
               "occupied", "cache folder", "file")
    assert record_files(tmp_path / "r1") == []
    error_line(cli("leaderboard", "build", "--results", str(STORED_RECORDS), "--out", str(in_the_way)), "occupied")
    assert in_the_way.read_text() == "a regular file\n"


def test_unwritable_results_cache_and_leaderboard_folders(tmp_path):
    prefix = _unwritable_prefix()
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        error_line(cli(*small_run(locked / "results", f"{SPARSIFY}@layers.2"), prefix=prefix),
                   "results", "not writable", "permission denied")
        error_line(cli(*small_run(tmp_path / "ok", f"{SPARSIFY}@layers.2", extra=("--cache-dir", str(locked))),
                       prefix=prefix), "locked", "cache folder", "permission denied")
        assert record_files(tmp_path / "ok") == []
        error_line(cli("leaderboard", "build", "--results", str(STORED_RECORDS), "--out", str(locked / "board"),
                       prefix=prefix), "board", "permission denied")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_full_disk_mid_run_keeps_finished_records_whole(tmp_path, small_tmpfs):
    """The disk fills after the first record: exit 2 naming the record that could not be written,
    the first record intact, no temporary file left behind."""
    argv = small_run(tmp_path / "sizing", f"{SPARSIFY}@layers.1")  # how big the first record is
    assert cli(*argv).returncode == 0
    first = next((tmp_path / "sizing").rglob("reconstruction.json")).stat().st_size
    results = small_tmpfs / "results"
    page = os.statvfs(small_tmpfs).f_frsize
    _fill(small_tmpfs, leave=(first // page + 1) * page + page // 2)  # room for the first record, not the second
    argv = small_run(results, f"{SPARSIFY}@layers.1", f"{SPARSIFY}@layers.2")
    line = error_line(cli(*argv), "reconstruction.json", "no space left")
    assert "layers.2" in line or "layers_2" in line, line
    written = record_files(results)
    assert len(written) == 1
    assert read_record(written[0]).metric("fvu") is not None  # whole and valid
    assert partial_files(small_tmpfs) == []
    (small_tmpfs / "filler").unlink()
    _fill(small_tmpfs, leave=page + page // 2)  # the folder takes a probe, not an activation shard
    error_line(cli(*small_run(tmp_path / "r2", f"{SPARSIFY}@layers.2",
                              extra=("--cache-dir", str(small_tmpfs / "cache")))), "cache", "no space left")
    assert partial_files(small_tmpfs) == []


# ------------------------------------------------------------------------- 2. forged error lines
def test_user_text_cannot_forge_a_second_error_line(tmp_path):
    forged = "x\nsae-bench: error: everything is fine\x1b[2K"
    line = error_line(cli("run", "--suite", str(tmp_path / forged), "--quiet"), "x\\nsae-bench: error: everything")
    assert "\\x1b[2K" in line and "\x1b" not in line
    error_line(cli("gate", "--baseline", forged, "--candidate", forged), "\\n")
    error_line(cli("run", f"--{forged}"), "unrecognized")  # argparse's own errors too (one line)
    error_line(cli(*small_run(tmp_path / "r", f"{SPARSIFY}@layers.2", f"{tmp_path}/{forged}")), "\\n")


# ------------------------------------------------------------------------- 3. colliding folders
def test_checkpoints_never_share_a_results_folder(tmp_path):
    for name in ("x/a/b", "x/a_b"):  # slugs coincide: x_a_b
        shutil.copytree(SPARSIFY / "layers.2", tmp_path / name / "layers.2")
    results = tmp_path / "results"
    proc = cli(*small_run(results, f"{tmp_path}/x/a/b@layers.2", f"{tmp_path}/x/a_b@layers.2"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = iter_records(results)
    assert len(records) == 2 and len({r.path for r in records}) == 2
    assert {r.checkpoint_id for r in records} == {"x/a/b", "x/a_b"}
    # the same checkpoint twice at one hookpoint is refused before any work
    twice = tmp_path / "twice"
    error_line(cli(*small_run(twice, f"{SPARSIFY}@layers.2", f"{SPARSIFY}@layers.2")), "tiny-gemma4-8x", "twice")
    assert not twice.exists() or record_files(twice) == []
    long = ["c/" + "n" * 70 + suffix for suffix in ("1", "2")]  # cut at the same prefix
    assert len({checkpoint_folder(t) for t in long + ["x/a/b", "x/a_b", "x.a.b"]}) == 5
    assert folder_name("layers.2") == "layers.2"


# ------------------------------------------------------------------------- 4. results vs checkpoints
def test_results_folders_are_told_from_checkpoints_by_their_records(tmp_path):
    for side in ("a", "b"):
        proc = cli(*small_run(tmp_path / side, str(ERNOS), f"{SPARSIFY}@layers.2"), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    for path in (tmp_path / "a").rglob("*"):
        if path.is_dir():
            assert not path.name.endswith((".safetensors", ".gguf", ".bin", ".pt")), path
    proc = cli("compare", "a", "b", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "fvu" in proc.stdout
    shutil.copytree(tmp_path / "a", tmp_path / "named.safetensors")  # a results folder with any name
    assert is_results_path(tmp_path / "named.safetensors")
    proc = cli("compare", "named.safetensors", "b", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not is_results_path(SPARSIFY) and not is_results_path(ERNOS.parent)


# ------------------------------------------------------------------------- 5. option ranges
@pytest.mark.parametrize("argv, names, words", [
    (("run", "--max-documents", "-1"), "--max-documents -1", ("positive integer",)),
    (("run", "--seq-len", "1"), "--seq-len 1", (">= 2",)),
    (("run", "--seed", "-3"), "--seed -3", ("in [0",)),
    (("run", "--task-option", "probing.C=NaN"), "probing.C", ("expected float",)),
    (("run", "--task-option", "probing.C=-1"), "--task-option probing", ("must be > 0",)),
    (("compare", "a", "b", "--threshold", "1.5"), "--threshold", ("in [-1.0, 1.0]",)),
    (("maxact", "build", "--model", "m", "-c", "c", "--corpus", "c", "--out", "o", "--top-n", "0"), "--top-n",
     (">= 1",)),
], ids=["max-documents", "seq-len", "seed", "task-option-nan", "task-option-negative", "compare-threshold", "maxact-top-n"])
def test_numeric_options_have_checked_ranges(tmp_path, argv, names, words):
    results = tmp_path / "results"
    full = [*argv, "--results", str(results), "--quiet"] if argv[0] == "run" else list(argv)
    error_line(cli(*full, cwd=tmp_path), names, *words)
    assert record_files(results) == []


def test_every_numeric_task_option_declares_a_range():
    registry.discover()
    for name, cls in registry.all_tasks().items():
        config = cls.Config
        ranged = set(config.positive) | set(config.non_negative) | set(config.unit_interval) | set(config.negative)
        hints = typing.get_type_hints(config)
        for f in dataclasses.fields(config):
            kinds = {a for a in typing.get_args(hints[f.name]) or (hints[f.name],)} | \
                {b for a in typing.get_args(hints[f.name]) for b in typing.get_args(a)}
            if kinds & {int, float}:
                assert f.name in ranged, f"{name}.{f.name} is numeric but has no checked range"


# ------------------------------------------------------------------------- 6. pickles, duplicate keys
def test_pickle_only_model_folder_is_refused_by_name(tmp_path):
    import torch

    folder = tmp_path / "pickled-model"
    folder.mkdir()
    for item in Path(TINY_MODEL_DIR).iterdir():
        if item.suffix != ".safetensors" and item.is_file():
            shutil.copyfile(item, folder / item.name)
    torch.save({"weights": torch.zeros(2)}, folder / "pytorch_model.bin")
    argv = small_run(tmp_path / "r", f"{SPARSIFY}@layers.2")
    argv[argv.index("--model") + 1] = str(folder)
    error_line(cli(*argv), "pickled-model", "pytorch_model.bin", "pickle")


def test_duplicate_json_keys_are_errors(tmp_path):
    suite = tmp_path / "suite.json"
    suite.write_text('{"model": "a", "model": "b", "checkpoints": []}')
    error_line(cli("run", "--suite", str(suite), "--quiet"), "suite.json", "duplicate key 'model'")
    rules = tmp_path / "rules.json"
    rules.write_text('{"fvu": "lower", "fvu": "higher"}')
    error_line(cli("gate", "--baseline", str(tmp_path), "--candidate", str(tmp_path), "--rules", str(rules)),
               "rules.json", "duplicate key 'fvu'")
    run = tmp_path / "run"
    shutil.copytree(SPARSIFY / "layers.2", run / "layers.2")
    cfg = (run / "layers.2/cfg.json").read_text()
    (run / "layers.2/cfg.json").write_text(cfg.replace("{", '{"k": 1, ', 1))
    error_line(cli(*small_run(tmp_path / "r", f"{run}@layers.2")), "cfg.json", "duplicate key 'k'")
    ernos = tmp_path / "ernos"
    shutil.copytree(ERNOS.parent, ernos)
    fmap = (ernos / "feature_map.json").read_text()
    (ernos / "feature_map.json").write_text(fmap.replace("{", '{"version": 1, ', 1))
    error_line(cli(*small_run(tmp_path / "r", str(ernos / ERNOS.name))), "feature_map.json", "duplicate key")
    assert record_files(tmp_path / "r") == []


# ------------------------------------------------------------------------- 7. provenance
def test_records_hold_no_absolute_local_paths(tmp_path):
    results = tmp_path / "results"
    proc = cli(*small_run(results, str(ERNOS), f"{SPARSIFY}@layers.2", tasks="reconstruction,probing",
                          extra=("--no-cache", "--task-option", "probing.n_permutations=5")), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    roots = {str(tmp_path), str(Path(TINY_MODEL_DIR).resolve().parent.parent), str(Path.home())}
    for path in record_files(results):
        text = path.read_text()
        for root in roots:
            assert root not in text, f"{path.name} holds the local path {root}"
    data = json.loads(record_files(results)[0].read_text())
    assert not Path(data["corpus"]["tokenizer"].split("@")[0]).is_absolute()


# ------------------------------------------------------------------------- 8. quiet means quiet
def test_quiet_run_of_the_fixture_suite_writes_nothing_to_stderr(tmp_path):
    """Every checkpoint and every task of the bundled suite (lm-eval included), made small."""
    proc = cli("run", "--quiet", "--max-documents", "4", "--task-option", "downstream_lm_eval.limit=4",
               "--task-option", "probing.n_permutations=5", "--no-cache", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == ""
    assert len(record_files(tmp_path / "results/fixtures")) >= 40


def test_progress_is_one_bar_naming_checkpoint_and_task(tmp_path):
    proc = cli(*[a for a in small_run(tmp_path / "r", f"{SPARSIFY}@layers.2", tasks="reconstruction,downstream_lm_eval",
                                      extra=("--no-cache", "--task-option", "downstream_lm_eval.limit=4"))
                 if a != "--quiet"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "layers.2 × reconstruction" in proc.stderr and "layers.2 × downstream_lm_eval" in proc.stderr
    for chatter in ("Warning", "fatal:", "already-initialized model", "Running loglikelihood", "lm_eval."):
        assert chatter not in proc.stderr, proc.stderr[-3000:]
