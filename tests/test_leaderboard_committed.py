"""The committed fixture leaderboard (leaderboard/ at the repository root) is reproducible: rebuilding
every version from the records stored in it (leaderboard/<version>/results/), in index order, into
an empty folder gives the same files, byte for byte.

Produce or refresh it with:
    sae-bench run --quiet                     # fixture suite -> results/fixtures
    sae-bench leaderboard build --results results/fixtures --out leaderboard
and reproduce it with `sae-bench leaderboard rebuild --out leaderboard --into <empty folder>`.

A fresh clone re-running the suite must give the same records up to what may legitimately differ:
`record_drift` compares keys and strings exactly and numbers to a stated tolerance (REL_TOL,
ABS_TOL), and ignores the creation time, timings, library versions and harness version."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sae_bench.leaderboard_build import build_leaderboard, rebuild_all
from sae_bench.leaderboard_build.versioning import INDEX_FILE, load_index

COMMITTED = Path(__file__).resolve().parent.parent / "leaderboard"


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def rebuild_differences(folder: Path, scratch: Path) -> list[str]:
    """Files that differ (or exist on one side only) between `folder` and its rebuild into `scratch`."""
    index = load_index(folder)
    reports = rebuild_all(folder, into=scratch)
    assert [r.version for r in reports] == [v.name for v in index.versions]
    rebuilt = _tree(scratch)
    names = {v.name for v in index.versions}
    stored = {path: digest for path, digest in _tree(folder).items()
              if path in (INDEX_FILE, "index.html", "versions.html") or path.split("/", 1)[0] in names}
    return sorted(p for p in set(rebuilt) | set(stored) if rebuilt.get(p) != stored.get(p))


def test_committed_leaderboard_rebuilds_identically(tmp_path):
    if not (COMMITTED / INDEX_FILE).exists():
        pytest.skip("no committed leaderboard yet (leaderboard/index.json missing): build it with "
                    "`sae-bench run --quiet && sae-bench leaderboard build --results results/fixtures --out leaderboard`")
    changed = rebuild_differences(COMMITTED, tmp_path / "rebuilt")
    assert not changed, f"rebuild differs from the committed leaderboard in: {', '.join(changed)}"


def test_the_rebuild_check_notices_a_changed_file(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from record_factories import frontier_records, write_records

    write_records(tmp_path / "results", frontier_records("a", l0=4.0, fvu=0.2, ce_loss_recovered=0.9)
                  + frontier_records("b", l0=8.0, fvu=0.1, ce_loss_recovered=0.95))
    board = tmp_path / "board"
    build_leaderboard(tmp_path / "results", board)
    assert rebuild_differences(board, tmp_path / "first") == []
    page = board / "v1" / "index.html"
    page.write_text(page.read_text().replace("leaderboard v1", "leaderboard v1 (edited)", 1))
    (board / "v1" / "stray.txt").write_text("not built")
    assert rebuild_differences(board, tmp_path / "second") == ["v1/index.html", "v1/stray.txt"]


# --------------------------------------------------------------------------- fresh re-runs
REL_TOL, ABS_TOL = 1e-6, 1e-9  # float rounding across library versions; CPU re-runs are byte-identical
VOLATILE = {"created_at", "timings", "libraries", "harness_version"}  # may differ between equal runs


def _drift(a, b, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            out.append(f"{where}: keys differ ({sorted(set(a) ^ set(b))})")
        for key in sorted(set(a) & set(b)):
            _drift(a[key], b[key], f"{where}.{key}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: {len(a)} vs {len(b)} items")
        for i, (x, y) in enumerate(zip(a, b)):
            _drift(x, y, f"{where}[{i}]", out)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        if not math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL):
            out.append(f"{where}: {a!r} vs {b!r}")
    elif a != b:
        out.append(f"{where}: {a!r} vs {b!r}")


def record_drift(expected: Path, actual: Path) -> list[str]:
    """What differs between two folders of records beyond VOLATILE keys and float tolerance."""
    def records(folder: Path) -> dict[str, dict]:
        return {p.relative_to(folder).as_posix(): json.loads(p.read_text()) for p in sorted(folder.rglob("*.json"))}

    want, got = records(expected), records(actual)
    out = [f"{path}: only in {expected if path in want else actual}" for path in sorted(set(want) ^ set(got))]
    for path in sorted(set(want) & set(got)):
        _drift({k: v for k, v in want[path].items() if k not in VOLATILE},
               {k: v for k, v in got[path].items() if k not in VOLATILE}, path, out)
    return out


def test_record_drift_ignores_volatile_fields_and_catches_real_changes(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from record_factories import frontier_records, write_records

    write_records(tmp_path / "a", frontier_records("a", l0=4.0, fvu=0.2, ce_loss_recovered=0.9))
    write_records(tmp_path / "b", frontier_records("a", l0=4.0, fvu=0.2 * (1 + 1e-9), ce_loss_recovered=0.9))
    for path in (tmp_path / "b").rglob("*.json"):
        data = json.loads(path.read_text())
        data.update(created_at="2030-01-01T00:00:00+00:00", libraries={"transformers": "99.0"})
        path.write_text(json.dumps(data))
    assert record_drift(tmp_path / "a", tmp_path / "b") == []
    victim = sorted((tmp_path / "b").rglob("*.json"))[0]
    data = json.loads(victim.read_text())
    name = sorted(data["metrics"])[0]
    data["metrics"][name]["value"] += 0.01
    del data["seed"]
    victim.write_text(json.dumps(data))
    drift = record_drift(tmp_path / "a", tmp_path / "b")
    assert any(f"metrics.{name}.value" in d for d in drift) and any("keys differ" in d for d in drift)


@pytest.mark.slow
def test_a_fresh_run_reproduces_the_committed_records(tmp_path):
    """What a fresh clone does: `sae-bench run --quiet`, then compare with the committed records."""
    if not (COMMITTED / INDEX_FILE).exists():
        pytest.skip("no committed leaderboard yet")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "sae_bench", "run", "--quiet"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    newest = json.loads((COMMITTED / INDEX_FILE).read_text())["versions"][-1]["name"]
    drift = record_drift(COMMITTED / newest / "results", tmp_path / "results" / "fixtures")
    assert not drift, "\n".join(drift[:40])
