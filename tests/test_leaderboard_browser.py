"""The leaderboard in headless Chromium at 1400 x 900.

On the committed fixture leaderboard (leaderboard/, built from the fixture suite): the ranking
column of the first site is inside the viewport without scrolling, every plot the pages show has a
legend, no two texts of any plot overlap (their rendered boxes are disjoint), and the front page
is shorter than 6,000 px. On synthetic records: an injected <script> in a checkpoint name stays
text, and the all-metrics table sorts through the page's script. No network is used.

Measurements run in a copy of the pages with a measuring script appended (the real pages' CSP
allows only their own script); Chromium writes the DOM with the script's JSON result.
"""

from __future__ import annotations

import html
import json
import re
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

COMMITTED = Path(__file__).resolve().parent.parent / "leaderboard"
INJECTED = "<script>document.title='pwned'</script>"
WIDTH, HEIGHT = 1400, 900
MAX_PAGE_HEIGHT = 6000


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"),
                      shutil.which("google-chrome")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _run(binary: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
               "--disable-sync", "--disable-component-update", "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}",
               f"--user-data-dir={tmp / 'profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={"HOME": str(tmp), "PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = _chromium()
    if binary is None:
        pytest.skip("headless Chromium not installed (/usr/bin/chromium missing; .ci/run installs it)")
    return binary


def _measured(binary: str, tmp: Path, page: Path, script: str) -> dict:
    """Run `script` (which must set `window.__result`) at the end of a CSP-free copy of `page`."""
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text(encoding="utf-8"))
    probe = page.with_name(f".probe-{page.name}")
    probe.write_text(text.replace("</body>", f"<script>{script}\nvar out = document.createElement('pre'); "
                                             "out.id = 'probe'; out.textContent = JSON.stringify(window.__result); "
                                             "document.body.appendChild(out);</script></body>"), encoding="utf-8")
    try:
        done = _run(binary, tmp, "--virtual-time-budget=3000", "--dump-dom", probe.as_uri())
    finally:
        probe.unlink()
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stdout[-2000:]
    return json.loads(html.unescape(found.group(1)))


# ---------------------------------------------------------------------- the committed board
@pytest.fixture(scope="module")
def committed(tmp_path_factory) -> Path:
    if not (COMMITTED / "index.html").exists():
        pytest.skip("no committed leaderboard (leaderboard/index.html)")
    copy = tmp_path_factory.mktemp("committed") / "leaderboard"
    shutil.copytree(COMMITTED, copy)
    return copy


LAYOUT = """
var th = document.querySelector("table.board th.rankcol");
var box = th ? th.getBoundingClientRect() : null;
window.__result = {
  width: window.innerWidth, height: window.innerHeight,
  rank: box ? {left: box.left, right: box.right, top: box.top, bottom: box.bottom} : null,
  pageHeight: document.documentElement.scrollHeight,
  images: Array.prototype.map.call(document.querySelectorAll("img"), function (i) { return i.getAttribute("src"); })
};
"""


def test_front_page_shows_the_ranking_first_and_stays_short(committed, chromium, tmp_path):
    result = _measured(chromium, tmp_path, committed / "index.html", LAYOUT)
    assert result["width"] == WIDTH  # (--dump-dom's viewport is shorter than the window; screenshots are 900 high)
    rank = result["rank"]
    assert rank is not None, "no ranking column on the front page"
    assert 0 <= rank["left"] and rank["right"] <= WIDTH and 0 <= rank["top"] and rank["bottom"] <= HEIGHT, rank
    assert result["pageHeight"] < MAX_PAGE_HEIGHT
    plots = [src for src in result["images"] if src.endswith(".svg")]
    assert any("depth" in src for src in plots) and any("frontier" in src for src in plots)


def _shown_plots(root: Path) -> list[Path]:
    pages = [root / "index.html", *root.glob("v*/index.html"), *root.glob("v*/checkpoints/*.html")]
    found = set()
    for page in pages:
        for src in re.findall(r'<img src="([^"]+\.svg)"', page.read_text(encoding="utf-8")):
            found.add((page.parent / src).resolve())
    return sorted(found)


def test_every_plot_has_a_legend(committed):
    plots = _shown_plots(committed)
    assert len(plots) >= 10  # depth, frontiers, and each checkpoint's histogram
    for svg in plots:
        assert re.search(r'<g id="legend_\d+">', svg.read_text(encoding="utf-8")), f"{svg.name} has no legend"


OVERLAPS = """
var boxes = Array.prototype.map.call(document.querySelectorAll("svg text"), function (t) {
  var r = t.getBoundingClientRect();
  return {text: t.textContent, svg: t.ownerSVGElement.getAttribute("data-file"), x0: r.left, x1: r.right,
          y0: r.top, y1: r.bottom};
}).filter(function (b) { return b.text.trim() !== "" && b.x1 > b.x0; });
var clashes = [];
for (var i = 0; i < boxes.length; i++) {
  for (var j = i + 1; j < boxes.length; j++) {
    var a = boxes[i], b = boxes[j], pad = 0.5;
    if (a.svg === b.svg && a.x0 + pad < b.x1 && b.x0 + pad < a.x1 && a.y0 + pad < b.y1 && b.y0 + pad < a.y1) {
      clashes.push([a.svg, a.text, b.text]);
    }
  }
}
window.__result = {texts: boxes.length, clashes: clashes};
"""


def test_no_text_overlaps_in_any_plot(committed, chromium, tmp_path):
    plots = _shown_plots(committed)
    body = []
    for svg in plots:
        text = svg.read_text(encoding="utf-8")
        inline = text[text.index("<svg"):].replace("<svg ", f'<svg data-file="{svg.name}" ', 1)
        body.append(f"<div>{inline}</div>")
    page = tmp_path / "plots.html"
    page.write_text("<!DOCTYPE html><html><body>" + "\n".join(body) + "</body></html>", encoding="utf-8")
    result = _measured(chromium, tmp_path, page, OVERLAPS)
    assert result["texts"] > 20 * len(plots) // 2
    assert result["clashes"] == []


# -------------------------------------------------------------------------- synthetic records
class _Dom(HTMLParser):
    """What the rendered DOM holds: script elements, the all-metrics table's rows, the title."""

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
        elif tag == "table" and attrs.get("id") == "all-metrics":
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


def test_page_dom_has_all_rows_and_the_injected_script_stays_text(board, chromium, tmp_path):
    done = _run(chromium, tmp_path, "--dump-dom", board.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = _Dom()
    dom.feed(done.stdout)
    assert dom.title == "sae-bench leaderboard v1"  # the injected document.title='pwned' never ran
    assert len(dom.rows) == 5  # 5 checkpoint x hookpoint rows
    assert dom.scripts == 1  # the page's own sorting script only
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in done.stdout


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
    done = _run(chromium, tmp_path, f"--screenshot={shot}", board.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    pixels = image.imread(shot)
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    grey = pixels[..., :3].mean(axis=2)
    assert grey.std() > 0.05  # not a blank page
    assert len(np.unique((pixels[..., :3] * 255).astype(int).reshape(-1, 3), axis=0)) > 50  # text, plots, colours
    print(f"screenshot: {shot}")  # for a human look (pytest -s)
