"""The committed fixture leaderboard (leaderboard/ at the repository root) is reproducible: rebuilding
every version from the records stored in it (leaderboard/<version>/results/), in index order, into
an empty folder gives the same files, byte for byte.

Produce or refresh it with:
    sae-bench run --quiet                     # fixture suite -> results/fixtures
    sae-bench leaderboard build --results results/fixtures --out leaderboard
and reproduce it with `sae-bench leaderboard rebuild --out leaderboard --into <empty folder>`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sae_bench.leaderboard_build import rebuild_all
from sae_bench.leaderboard_build.versioning import INDEX_FILE, load_index

COMMITTED = Path(__file__).resolve().parent.parent / "leaderboard"


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_committed_leaderboard_rebuilds_identically(tmp_path):
    if not (COMMITTED / INDEX_FILE).exists():
        pytest.skip("no committed leaderboard yet (leaderboard/index.json missing): build it with "
                    "`sae-bench run --quiet && sae-bench leaderboard build --results results/fixtures --out leaderboard`")
    index = load_index(COMMITTED)
    reports = rebuild_all(COMMITTED, into=tmp_path / "rebuilt")
    assert [r.version for r in reports] == [v.name for v in index.versions]
    rebuilt = _tree(tmp_path / "rebuilt")
    committed = {path: digest for path, digest in _tree(COMMITTED).items()
                 if path in (INDEX_FILE, "index.html") or path.split("/", 1)[0] in {v.name for v in index.versions}}
    assert sorted(rebuilt) == sorted(committed), "files differ between the committed and the rebuilt leaderboard"
    changed = [path for path in rebuilt if rebuilt[path] != committed[path]]
    assert not changed, f"rebuild differs from the committed leaderboard in: {', '.join(changed)}"
