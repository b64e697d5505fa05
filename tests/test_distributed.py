"""`torchrun --nproc_per_node 2 sae-bench run ...` (gloo, CPU) gives the numbers of one process.

The same small suite (two residual checkpoints at layers.2 and the pooled ErnOS one; reconstruction,
sparsity, spliced_loss, probing, maxact_repro, and downstream_lm_eval on 8 documents) is run once
as a plain process and once as two ranks. 24 sequences in batches of 5 make 5 batches, so the ranks get unequal shares (3 and 2).
Every record's metrics, standard errors, counts and artifacts must be byte-identical; only rank 0
writes (one set of records, one printed table, no temporary files left), and the records say
how many ranks made them. The shard/gather helpers are also checked without torchrun.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sae_bench.run import distributed
from sae_bench.fixtures import FIXTURES_DIR
from sae_bench.records.results import iter_records

TASKS = "reconstruction,sparsity,spliced_loss,probing,maxact_repro,downstream_lm_eval"
CHECKPOINTS = [
    {"path": str(FIXTURES_DIR / "saes/sparsify/tiny-gemma4-8x"), "hookpoint": "layers.2", "format": "sparsify",
     "label": "l2"},
    {"path": str(FIXTURES_DIR / "saes/saelens/topk-layers.2"), "hookpoint": "layers.2", "format": "saelens",
     "label": "topk"},
    {"path": str(FIXTURES_DIR / "saes/ernos/tiny_sae.safetensors"), "hookpoint": "pooled_final_norm",
     "format": "ernos", "label": "ernos"},
]
# Per checkpoint: 6 tasks at layers.2; the pooled checkpoint skips spliced_loss, maxact_repro, downstream.
EXPECTED_RECORDS = 6 + 6 + 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _argv(suite: Path, results: Path, cache: Path | None) -> list[str]:
    argv = ["-m", "sae_bench", "run", "--suite", str(suite), "--results", str(results), "--tasks", TASKS,
            "--quiet", "--max-documents", "24", "--batch-size", "5",
            "--task-option", "downstream_lm_eval.limit=8"]
    return argv + (["--cache-dir", str(cache)] if cache is not None else ["--no-cache"])


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):  # never inherit a group
        env.pop(key, None)
    return env


def _numbers(results: Path) -> dict[str, str]:
    """Per record file: its metrics (values, stderrs, reasons), counts and artifacts, canonically."""
    return {str(r.path.relative_to(results)): json.dumps(
        {"metrics": r.data["metrics"], "counts": r.data["counts"], "artifacts": r.data.get("artifacts")},
        sort_keys=True) for r in iter_records(results)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    suite = folder / "suite.json"
    suite.write_text(json.dumps({"model": str(FIXTURES_DIR / "tiny-gemma4"),
                                 "corpus": str(FIXTURES_DIR / "corpus/eval.jsonl"), "seq_len": 32,
                                 "checkpoints": CHECKPOINTS, "label_root": "dist"}))
    one, two, cache = folder / "one", folder / "two", folder / "cache"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
    procs = {  # both at once: the test's wall time is the slower of the two
        "one": subprocess.Popen([sys.executable, *_argv(suite, one, None)], env=_env(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE),
        "two": subprocess.Popen([*torchrun, *_argv(suite, two, cache)], env=_env(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE),
    }
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{stdout[-2000:]}\n{stderr[-4000:]}"
        out[name] = stdout
    return {"one": one, "two": two, "cache": cache, "stdout": out}


def test_two_ranks_give_byte_identical_metrics_stderrs_and_counts(runs):
    one, two = _numbers(runs["one"]), _numbers(runs["two"])
    assert len(one) == EXPECTED_RECORDS
    assert sorted(two) == sorted(one)
    for path in one:
        assert two[path] == one[path], f"{path} differs between 1 and 2 ranks"
    spliced = [json.loads(v) for k, v in one.items() if k.endswith("spliced_loss.json")]
    assert len(spliced) == 2
    assert all(s["metrics"]["ce_loss_recovered"]["stderr"] is not None for s in spliced)  # stderrs compared too


def test_records_state_the_world_size(runs):
    assert {r.data["timings"]["world_size"] for r in iter_records(runs["one"])} == {1}
    assert {r.data["timings"]["world_size"] for r in iter_records(runs["two"])} == {2}


def test_only_rank_zero_writes_and_prints(runs):
    two = runs["two"]
    files = sorted(p for p in two.rglob("*") if p.is_file())
    assert [p for p in files if p.name.endswith(".tmp") or p.name.startswith(".")] == []
    # one set of records and their tidy table (written once, by rank 0), nothing else
    assert files == sorted([r.path for r in iter_records(two)] + [two / "results.parquet"])
    assert len(files) == EXPECTED_RECORDS + 1
    assert runs["stdout"]["two"].count(f"{EXPECTED_RECORDS} records in") == 1  # one table, from rank 0
    # Both ranks wrote their own activation shards to the shared cache, rank 0 the completion marker,
    # and each rank its own spliced-loss baseline memo (its batches) where spliced loss ran.
    memos = []
    for key_dir in (p for p in runs["cache"].iterdir() if p.is_dir()):
        assert sorted(p.name for p in key_dir.iterdir() if p.name != "memo") == [
            "complete.json", *(f"shard_{i:06d}.safetensors" for i in range(5))]
        memos += [sorted(p.name for p in (key_dir / "memo").iterdir())] if (key_dir / "memo").exists() else []
    assert memos and all(len(names) == 2 and all(n.startswith("spliced_loss-baseline-") for n in names)
                         for names in memos)


def test_shard_and_gather_are_pass_throughs_in_one_process():
    assert distributed.world_size() == 1 and distributed.is_writer()
    assert list(distributed.shard("abc")) == [(0, "a"), (1, "b"), (2, "c")]
    assert distributed.gather_ordered([(2, "c"), (0, "a"), (1, "b")]) == ["a", "b", "c"]
    assert distributed.from_writer({"x": 1}) == {"x": 1}


def test_two_ranks_resume_a_partial_folder_and_recompute_only_what_is_missing(runs, tmp_path):
    """Rank 0's files decide what every rank runs (the ranks share collectives)."""
    import shutil

    resumed = tmp_path / "resumed"
    shutil.copytree(runs["two"], resumed)
    missing = next(p for p in resumed.rglob("spliced_loss.json"))
    missing.unlink()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), *_argv(runs["one"].parent / "suite.json", resumed, None)]
    proc = subprocess.run(cmd, env=_env(), text=True, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"{EXPECTED_RECORDS} records in {resumed} ({EXPECTED_RECORDS - 1} reused)" in proc.stdout
    assert _numbers(resumed) == _numbers(runs["one"])
