"""Several leaderboards side by side (issue 24, item 4): a board's front page links the others
listed in its index.json (`boards`), the links survive a rebuild into an empty folder, and a
link that is not a relative folder is refused."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sae_bench.cli import main
from sae_bench.core.errors import ResultError
from sae_bench.leaderboard_build import build_leaderboard, rebuild_all
from sae_bench.leaderboard_build.api import link_board

sys.path.insert(0, str(Path(__file__).parent))
from record_factories import frontier_records, write_records  # noqa: E402


@pytest.fixture
def boards(tmp_path):
    results = tmp_path / "results"
    write_records(results, frontier_records("alpha", l0=12.0, fvu=0.25, ce_loss_recovered=0.85)
                  + frontier_records("beta", l0=30.0, fvu=0.1, ce_loss_recovered=0.9))
    build_leaderboard(results, tmp_path / "lb")
    build_leaderboard(results, tmp_path / "lb" / "real")
    return tmp_path / "lb"


def test_front_pages_link_each_other_and_survive_a_rebuild(boards, tmp_path, capsys):
    before = (boards / "index.html").read_text()
    assert main(["leaderboard", "link", "--out", str(boards), "--board", "real/", "--title", "Real <SAEs>"]) == 0
    link_board(boards / "real", "../", "fixture board")
    page = (boards / "index.html").read_text()
    assert 'Other boards: <a href="real/index.html">Real &lt;SAEs&gt;</a>' in page and page != before
    assert '<a href="../index.html">fixture board</a>' in (boards / "real" / "index.html").read_text()
    assert json.loads((boards / "index.json").read_text())["boards"] == [{"path": "real/", "title": "Real <SAEs>"}]
    assert "Other boards" not in (boards / "v1" / "index.html").read_text()  # version pages are unchanged
    rebuild_all(boards, into=tmp_path / "again")
    for name in ("index.html", "index.json", "versions.html"):
        assert (tmp_path / "again" / name).read_bytes() == (boards / name).read_bytes(), name


def test_a_board_link_must_be_a_relative_folder(boards):
    for bad in ("/etc/", "real", "https://x.org/", "a\\b/"):
        with pytest.raises(ResultError, match="relative folder"):
            link_board(boards, bad, "x")
    with pytest.raises(ResultError, match="no leaderboard here"):
        link_board(boards / "nothing", "real/", "x")


def test_committed_boards_rebuild_identically(tmp_path):
    """Every board the committed front page links (leaderboard/gemma-3-270m/ ...) rebuilds from its
    own stored records byte for byte, as the fixture board does (tests/test_leaderboard_committed.py)."""
    from test_leaderboard_committed import COMMITTED, rebuild_differences

    index = json.loads((COMMITTED / "index.json").read_text())
    boards = [COMMITTED / b["path"] for b in index.get("boards", []) if (COMMITTED / b["path"] / "index.json").exists()]
    if not boards:
        pytest.skip("the committed leaderboard links no other board")
    for board in boards:
        changed = rebuild_differences(board, tmp_path / board.name)
        assert not changed, f"{board}: rebuild differs in {', '.join(changed)}"
