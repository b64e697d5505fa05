"""The committed fixture leaderboard (leaderboard/ at the repository root) is reproducible: rebuilding
every version from the records stored in it (leaderboard/<version>/results/), in index order, into
an empty folder gives the same files, byte for byte.

Produce or refresh it with:
    sae-bench run --quiet                     # fixture suite -> results/fixtures
    sae-bench leaderboard build --results results/fixtures --out leaderboard
and reproduce it with `sae-bench leaderboard rebuild --out leaderboard --into <empty folder>`."""

from __future__ import annotations

import hashlib
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
