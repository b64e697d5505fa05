"""The leaderboard page in headless Chromium: it renders (screenshot), has one table row per
checkpoint x hookpoint, sorts through its script, and an injected <script> in a checkpoint name
stays text (it does not run: the title it tries to set is unchanged). No network is used."""

from __future__ import annotations

import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from record_factories import frontier_records, write_records  # noqa: E402

from sae_bench.leaderboard_build import build_leaderboard  # noqa: E402

pytestmark = pytest.mark.browser

INJECTED = "<script>document.title='pwned'</script>"


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"),
                      shutil.which("google-chrome")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _run(binary: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
               "--disable-sync", "--disable-component-update", f"--user-data-dir={tmp / 'profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={"HOME": str(tmp), "PATH": "/usr/bin:/bin"})


class _Dom(HTMLParser):
    """Counts what the rendered DOM holds: script elements, table body rows, the title."""

    def __init__(self):
        super().__init__()
        self.scripts = 0
        self.rows: list[dict[str, str]] = []
        self.in_tbody = self.in_title = False
        self.title = ""
        self.table_depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.scripts += 1
        elif tag == "table" and attrs.get("id") == "leaderboard":
            self.table_depth = 1
        elif tag == "tbody" and self.table_depth:
            self.in_tbody = True
        elif tag == "tr" and self.in_tbody:
            self.rows.append(attrs)
        elif tag == "title":
            self.in_title = True

    def handle_endtag(self, tag):
        if tag == "tbody":
            self.in_tbody = False
        elif tag == "table":
            self.table_depth = 0
        elif tag == "title":
            self.in_title = False

    def handle_data(self, data):
        if self.in_title:
            self.title += data


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    records = []
    for name, l0, fvu, ce in (("alpha", 8.0, 0.3, 0.8), ("beta", 16.0, 0.2, 0.9), ("gamma", 32.0, 0.1, 0.95),
                              (INJECTED, 4.0, 0.5, 0.5)):
        records += frontier_records(name, l0=l0, fvu=fvu, ce_loss_recovered=ce)
    records += frontier_records("alpha", l0=12.0, fvu=0.25, ce_loss_recovered=0.85, hookpoint="layers.3")
    write_records(tmp / "results", records)
    build_leaderboard(tmp / "results", tmp / "board")
    return tmp / "board" / "v1" / "index.html"


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = _chromium()
    if binary is None:
        pytest.skip("headless Chromium not installed (/usr/bin/chromium missing; .ci/run installs it)")
    return binary


def test_page_dom_has_all_rows_and_the_injected_script_stays_text(board, chromium, tmp_path):
    done = _run(chromium, tmp_path, "--dump-dom", board.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = _Dom()
    dom.feed(done.stdout)
    assert dom.title == "sae-bench leaderboard v1"  # the injected document.title='pwned' never ran
    assert len(dom.rows) == 5  # 5 checkpoint x hookpoint rows
    assert dom.scripts == 1  # the page's own sorting script only
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in done.stdout
    assert "pwned" not in dom.title


def test_sorting_script_runs_in_the_browser(board, chromium, tmp_path):
    done = _run(chromium, tmp_path, "--dump-dom", board.as_uri() + "#sort=sparsity/l0")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = _Dom()
    dom.feed(done.stdout)
    # Rows by ascending L0: injected (4), alpha (8), alpha@layers.3 (12), beta (16), gamma (32); the
    # data-row numbers follow (checkpoint, hookpoint) order: injected=1, alpha=2,3, beta=4, gamma=5.
    assert [r["data-row"] for r in dom.rows] == ["1", "2", "3", "4", "5"]
    done = _run(chromium, tmp_path, "--dump-dom", board.as_uri() + "#sort=-sparsity/l0")
    dom = _Dom()
    dom.feed(done.stdout)
    assert [r["data-row"] for r in dom.rows] == ["5", "4", "3", "2", "1"]
    assert 'aria-sort="descending"' in done.stdout


def test_screenshot_is_a_rendered_page(board, chromium, tmp_path):
    import numpy as np
    from matplotlib import image

    shot = tmp_path / "leaderboard.png"
    done = _run(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1280,1400", "--hide-scrollbars",
                board.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    pixels = image.imread(shot)
    assert pixels.shape[:2] == (1400, 1280)
    grey = pixels[..., :3].mean(axis=2)
    assert grey.std() > 0.05  # not a blank page
    assert len(np.unique((pixels[..., :3] * 255).astype(int).reshape(-1, 3), axis=0)) > 50  # text, plots, colours
    print(f"screenshot: {shot}")  # for a human look (pytest -s)
