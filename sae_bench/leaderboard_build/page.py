"""The static HTML pages of a leaderboard version and the front page.

- `render_board`: the leaderboard itself (a version's index.html, and the top-level index.html
  showing the latest version): per site (hookpoint) the headline metrics ranked there, grouped
  by family, with the ranking column first and highlighted, then that site's frontier plots; the
  depth plot above; every metric of every row in a collapsed sortable table below.
- `render_checkpoint_page`: one page per row (checkpoints/<row>-...html): provenance rounded to
  4 significant digits, every metric with its standard error, the per-checkpoint figures and the
  page sections the tasks declare (`views`: firing histogram, probing per category ...), the records.
- `render_groups_page` (groups.html: comparability groups with their hashes and configs) and
  `render_index_page` (versions.html: every version and its keys), one click from the board.

Every string that comes from a record (checkpoint ids, hookpoints, task and metric names,
configs, notes, labels, max-activation contexts in artifacts ...) is untrusted: it goes through
`html.escape(..., quote=True)` (`esc`) before it reaches the page, in text and in attributes
alike. The one script is ours, inline, vanilla JS: it only reorders existing rows and writes
sort marks with `textContent` (never `innerHTML`). A Content-Security-Policy allows only that
script and stylesheet (by sha256), so even a string that escaped escaping could not run.
Plots are separate SVG files shown through <img>, where SVG scripts never run.

Pages hold no timestamps: the same records give the same bytes. This module never computes a
metric and never writes files (the builder does).
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

from sae_bench.leaderboard_build import views
from sae_bench.leaderboard_build.collect import ComparabilityKey, key_of
from sae_bench.leaderboard_build.markup import breakable, cell_text, compact, dl, esc
from sae_bench.leaderboard_build.plots import Plot, row_stem
from sae_bench.leaderboard_build.table import (LeaderboardTable, MetricColumn, Row, Site, family_of, format_value,
                                               number)
from sae_bench.records.results import ResultRecord, record_path

RESULTS_FOLDER = "results"  # the version folder's snapshot of its records
CHECKPOINTS_FOLDER = "checkpoints"  # one page per row

STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 0.8em 1.2em; color: #1d1d1d; background: #fff; }
h1 { font-size: 1.35em; margin: 0.2em 0; } h2 { font-size: 1.1em; margin: 1.1em 0 0.35em; }
h3 { font-size: 1em; margin: 0.9em 0 0.3em; }
p.sub { margin: 0.2em 0 0.6em; font-size: 0.85em; color: #444; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.82em; }
th, td { border: 1px solid #d0d0d0; padding: 0.2em 0.45em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
thead th { background: #eef2f6; }
th.rankcol, td.rankcol { background: #fff4d6; font-weight: bold; }
tr.family th { background: #f6f6f6; font-weight: normal; font-style: italic; padding: 0.05em 0.45em; }
td.name { white-space: nowrap; max-width: 26em; overflow: hidden; text-overflow: ellipsis; }
th button { font: inherit; font-weight: bold; border: 0; background: none; cursor: pointer; padding: 0; text-align: left; }
table.sortable tbody tr:nth-child(even) { background: #f8f8f8; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.35em; border-radius: 50%; vertical-align: -0.05em; }
.fam0 { background: #1f77b4; } .fam1 { background: #d62728; } .fam2 { background: #2ca02c; } .fam3 { background: #9467bd; }
.fam4 { background: #ff7f0e; } .fam5 { background: #8c564b; } .fam6 { background: #e377c2; } .fam7 { background: #17becf; }
.fam8 { background: #bcbd22; } .fam9 { background: #7f7f7f; }
section.site { margin-top: 0.6em; }
.site-row { display: flex; flex-wrap: wrap; gap: 0.8em; align-items: flex-start; }
figure { margin: 0.2em 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.78em; color: #555; max-width: 70em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.1em 1em; font-size: 0.85em; }
dt { font-weight: bold; } dd { margin: 0; overflow-wrap: anywhere; }
pre { background: #f4f4f4; padding: 0.5em; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.8em; }
details { margin: 0.5em 0; } summary { cursor: pointer; }
.muted { color: #666; } .small { font-size: 0.8em; }
""".lstrip()

SCRIPT = r"""
(function () {
  "use strict";
  function sortable(table) {
  var body = table.tBodies[0];
  var headers = table.tHead.rows[0].cells;
  var current = -1, currentDir = 1;
  function key(row, col, numeric) {
    var raw = row.cells[col].getAttribute("data-sort");
    if (raw === null || raw === "") { return null; }
    if (numeric) { var v = parseFloat(raw); return isNaN(v) ? null : v; }
    return raw;
  }
  function sortBy(col, dir) {
    var numeric = headers[col].getAttribute("data-type") === "num";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var ka = key(a, col, numeric), kb = key(b, col, numeric);
      var tie = Number(a.getAttribute("data-order")) - Number(b.getAttribute("data-order"));
      if (ka === null || kb === null) { return ka === kb ? tie : (ka === null ? 1 : -1); }
      if (ka < kb) { return -dir; }
      if (ka > kb) { return dir; }
      return tie;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    for (var i = 0; i < headers.length; i++) {
      var mark = headers[i].querySelector(".mark");
      headers[i].setAttribute("aria-sort", i === col ? (dir > 0 ? "ascending" : "descending") : "none");
      if (mark) { mark.textContent = i === col ? (dir > 0 ? " \u25b2" : " \u25bc") : ""; }
    }
    current = col; currentDir = dir;
  }
  Array.prototype.forEach.call(headers, function (header, col) {
    header.querySelector("button").addEventListener("click", function () {
      var first = Number(header.getAttribute("data-first") || "1");
      sortBy(col, current === col ? -currentDir : first);
    });
  });
  var wanted = /^#sort=(-?)(.+)$/.exec(window.location.hash);
  if (wanted) {
    var name = decodeURIComponent(wanted[2]);
    Array.prototype.forEach.call(headers, function (header, col) {
      if (header.getAttribute("data-key") === name) { sortBy(col, wanted[1] ? -1 : 1); }
    });
  }
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), sortable);
})();
""".lstrip()


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


CSP = (f"default-src 'none'; img-src 'self'; style-src {_csp_hash(STYLE)}; script-src {_csp_hash(SCRIPT)}; "
       "base-uri 'none'; form-action 'none'")


def _head(title: str, script: bool) -> list[str]:
    csp = CSP if script else CSP.replace(f"script-src {_csp_hash(SCRIPT)}", "script-src 'none'")
    return ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>"]


def _number_attr(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _arrow(better: bool | None) -> str:
    """ ↑ / ↓ for a metric whose spec says higher / lower is better, nothing otherwise."""
    return "" if better is None else (" ↑" if better else " ↓")


def _header_cell(label: str, key: str, numeric: bool, first: int = 1, title: str | None = None) -> str:
    title_attr = f' title="{esc(title)}"' if title else ""
    return (f'<th data-key="{esc(key)}" data-type="{"num" if numeric else "text"}" data-first="{first}" '
            f'aria-sort="none"{title_attr}><button type="button">{esc(label)}<span class="mark"></span></button></th>')


# ------------------------------------------------------------------------------- the board
BOARD_COLUMNS = 8  # metric columns per site table: what fits 1400 px beside rank, name and d_sae


def mismatch_marker(row: Row) -> str:
    """A visible note on rows evaluated on another model than the checkpoint was trained on
    (`sae-bench run --allow-model-mismatch`); empty for every other row."""
    found = next((r.data["model_mismatch"] for r in row.records if isinstance(r.data.get("model_mismatch"), dict)),
                 None)
    if found is None:
        return ""
    text = f"model mismatch: trained on {found.get('trained_on')}, evaluated on {found.get('evaluated')}"
    return f' <strong class="mismatch" title="{esc(text)}">[{esc(text)}]</strong>'


def site_columns(table: LeaderboardTable, site: Site) -> list[MetricColumn]:
    """The ranking column, then the headline columns with a non-null value at this site, in headline
    order, at most `BOARD_COLUMNS` in all (the rest: the all-metrics table and checkpoint pages).
    Where they do not all fit, every task's first headline metric is kept before any task's second,
    so a task reported at this site (absorption, say) is not crowded out by the seed tasks' extras."""
    cols = [c for c in table.headline_columns() if any(number(r.entry(c), "value") is not None for r in site.rows)]
    if site.ranked_by is not None:
        cols = [site.ranked_by] + [c for c in cols if c != site.ranked_by]
    firsts = [c for i, c in enumerate(cols) if all(c.group != d.group for d in cols[:i])]
    extras = [c for c in cols if c not in firsts]
    kept = firsts[:BOARD_COLUMNS] + extras[:max(0, BOARD_COLUMNS - len(firsts))]
    return [c for c in cols if c in kept]


def short_names(table: LeaderboardTable) -> tuple[str, dict[str, str]]:
    """(common folder, checkpoint id -> id without it): names as short as they can be, still distinct."""
    names = sorted({r.checkpoint for r in table.rows})
    prefix = os.path.commonprefix(names)
    cut = prefix.rfind("/") + 1
    if not cut or any(len(n) <= cut for n in names):
        return "", {n: n for n in names}
    return prefix[:cut], {n: n[cut:] for n in names}


def checkpoint_page(row: Row) -> str:
    return f"{CHECKPOINTS_FOLDER}/{row_stem(row)}.html"


def _site_table(table: LeaderboardTable, site: Site, prefix: str) -> list[str]:
    columns = site_columns(table, site)
    _, short = short_names(table)
    heads = ["<th>rank</th>", "<th>checkpoint</th>", '<th class="num">d_sae</th>']
    for column in columns:
        label = column.metric if column.group == column.key.task else column.name
        cls = ' class="rankcol"' if column == site.ranked_by else ""
        heads.append(f'<th{cls} title="{esc(column.name)}: value ± standard error">'
                     f"{breakable(label)}{esc(_arrow(column.higher_is_better))}</th>")
    out = [f'<div class="scroll"><table class="board" data-site="{esc(site.hookpoint)}">',
           "<thead><tr>" + "".join(heads) + "</tr></thead>"]
    families: dict[str, list[Row]] = {}
    for row in site.rows:  # rank order: a family's first row is its best
        families.setdefault(family_of(row), []).append(row)
    for family, rows in families.items():
        index = table.families.index(family)
        out.append(f'<tbody><tr class="family"><th colspan="{len(heads)}"><span class="swatch fam{index % 10}">'
                   f"</span>{esc(family)} ({len(rows)})</th></tr>")
        for row in rows:
            d_sae = row.records[0].data["checkpoint"].get("d_sae")
            d_sae = d_sae if isinstance(d_sae, int) and not isinstance(d_sae, bool) else ""
            cells = [f'<td class="num">{"" if row.rank is None else row.rank}</td>',
                     f'<td class="name"><a href="{esc(prefix + checkpoint_page(row))}" title="{esc(row.checkpoint)}">'
                     f"{esc(short[row.checkpoint])}</a>{mismatch_marker(row)}</td>",
                     f'<td class="num">{d_sae}</td>']
            for column in columns:
                entry = row.entry(column)
                reason = (entry or {}).get("reason")
                title = f' title="{esc(reason)}"' if reason else ""
                cls = "num rankcol" if column == site.ranked_by else "num"
                cells.append(f'<td class="{cls}"{title}>{esc(cell_text(entry))}</td>')
            out.append(f'<tr id="row-{row.row}" data-row="{row.row}">' + "".join(cells) + "</tr>")
        out.append("</tbody>")
    out.append("</table></div>")
    return out


def _figure(plot: Plot, prefix: str, caption: str) -> str:
    width, height = plot.size
    return (f'<figure><img src="{esc(prefix + "plots/" + plot.filename.split("/", 1)[-1])}" alt="{esc(caption)}" '
            f'width="{width}" height="{height}"><figcaption>{esc(caption)}</figcaption></figure>')


def _ranking_words(site: Site) -> str:
    if site.ranked_by is None:
        return "unranked (no ranking metric here)"
    return f"ranked by {site.ranked_by.name} ({'higher' if site.higher_is_better else 'lower'} is better)"


def _site_section(table: LeaderboardTable, site: Site, plots: list[Plot], prefix: str, index: int) -> list[str]:
    n = len(site.rows)
    out = [f'<section class="site" id="site-{index + 1}">',
           f"<h2>{esc(site.hookpoint)} <span class=\"muted small\">· {n} checkpoint{'s' if n != 1 else ''} · "
           f"{esc(_ranking_words(site))}</span></h2>"]
    out += _site_table(table, site, prefix)
    frontier = next((p for p in plots if p.kind == "frontier" and p.hookpoint == site.hookpoint), None)
    if frontier is not None:
        caption = (f"Frontiers at {site.hookpoint}: points coloured by family and labelled with their rank; the "
                   "dashed line is the Pareto front (no point has both lower L0 and a better value); bars: ± stderr.")
        if frontier.dropped:
            caption += f" {frontier.dropped} row(s) left out (a value missing, or L0 <= 0)."
        if frontier.unlabelled:
            caption += f" No room for the label of rank {', '.join(map(str, frontier.unlabelled))}."
        out.append(_figure(frontier, prefix, caption))
    elif n >= 2:
        out.append('<p class="muted small">No frontier plot: fewer than two rows here have L0 together with '
                   "fvu, ce_loss_recovered or kl_score of the same corpus.</p>")
    out.append("</section>")
    return out


def _all_metrics(table: LeaderboardTable, prefix: str) -> list[str]:
    heads = [_header_cell("rank", "rank", True), _header_cell("checkpoint", "checkpoint", False),
             _header_cell("hookpoint", "hookpoint", False)]
    for column in table.columns:
        better = column.higher_is_better
        heads.append(_header_cell(column.name, column.name, True, first=-1 if better else 1,
                                  title=f"{column.name}{_arrow(better)}; value ± standard error"))
    out = [f"<details><summary>All {len(table.columns)} metric columns of every row (sortable: click a header; "
           "rows.csv and rows.parquet hold them too)</summary>",
           '<div class="scroll"><table class="sortable" id="all-metrics">',
           "<thead><tr>" + "".join(heads) + "</tr></thead>", "<tbody>"]
    for order, row in enumerate(table.rows):
        rank = "" if row.rank is None else row.rank
        cells = [f'<td class="num" data-sort="{rank}">{rank}</td>',
                 f'<td data-sort="{esc(row.checkpoint)}"><a href="{esc(prefix + checkpoint_page(row))}">'
                 f"{esc(row.checkpoint)}</a>{mismatch_marker(row)}</td>",
                 f'<td data-sort="{esc(row.hookpoint)}">{esc(row.hookpoint)}</td>']
        for column in table.columns:
            entry = row.entry(column)
            reason = (entry or {}).get("reason")
            title = f' title="{esc(reason)}"' if reason else ""
            cells.append(f'<td class="num" data-sort="{_number_attr(number(entry, "value"))}"{title}>'
                         f"{esc(format_value(entry))}</td>")
        out.append(f'<tr data-order="{order}" data-row="{row.row}">' + "".join(cells) + "</tr>")
    out += ["</tbody></table></div>", "</details>"]
    return out


def _corpora(table: LeaderboardTable) -> str:
    seen = {}
    for row in table.rows:
        for record in row.records:
            corpus = record.data["corpus"]
            seen.setdefault(str(corpus.get("id", "")), (corpus.get("seq_len"), corpus.get("n_sequences")))
    return "; ".join(f"{name} ({n} sequences of {length} tokens)" if n and length else name
                     for name, (length, n) in sorted(seen.items()))


def render_board(table: LeaderboardTable, plots: list[Plot], version: str, prefix: str = "",
                 versions: list[str] | None = None, boards: list[tuple[str, str]] | None = None) -> str:
    """The leaderboard page: per site, the ranked headline table grouped by family and the frontier
    plots; the depth plot first. `prefix` leads every link into the version folder ("" inside it,
    "v1/" for the top-level front page); `boards`: (folder, title) of other leaderboards to link."""
    title = "sae-bench leaderboard"
    top = "" if prefix else "../"
    n_records = sum(len(r.records) for r in table.rows)
    models = sorted({str(r.records[0].data["model"].get("id", "")) for r in table.rows})
    folder, _ = short_names(table)
    out = _head(f"{title} {version}", script=True) + [
        f"<h1>{esc(title)} <span class=\"muted small\">{esc(version)}</span></h1>",
        f"<p class=\"sub\">{len(table.rows)} rows (checkpoint × site) from {n_records} records · model "
        f"{esc(', '.join(models))} · corpus {esc(_corpora(table))}"
        + (f" · checkpoints under {esc(folder)}" if folder else "") + ". Rows are ranked only against rows at the same "
        "site (hookpoint), within one comparability group; cells are value ±standard error, ↑/↓ which way is "
        "better, the highlighted column ranks. "
        f'<a href="{esc(top)}versions.html">Versions and hashes</a> · '
        f'<a href="{esc(prefix)}groups.html">comparability groups</a> · '
        f'files: <a href="{esc(prefix)}rows.csv">rows.csv</a>, <a href="{esc(prefix)}rows.parquet">rows.parquet</a>, '
        f'<a href="{esc(prefix)}table.md">table.md</a>, <a href="{esc(prefix)}results/">records</a></p>']
    if boards:
        out.append("<p class=\"sub\">Other boards: " + " · ".join(
            f'<a href="{esc(path)}index.html">{esc(title)}</a>' for path, title in boards) + "</p>")
    depth = next((p for p in plots if p.kind == "depth"), None)
    if depth is not None:
        out.append(_figure(depth, prefix, "Depth: each metric against the layer for releases evaluated at several "
                                          "layers, one line per release (colour: family); bars: ± stderr."))
    for i, site in enumerate(table.sites):
        out += _site_section(table, site, plots, prefix, i)
    out.append("<h2>Everything else</h2>")
    out += _all_metrics(table, prefix)
    if versions:
        out.append("<p class=\"small\">Versions: " + " · ".join(
            f'<a href="{esc(top)}{esc(v)}/index.html">{esc(v)}</a>' for v in versions) + "</p>")
    out += [f"<script>{SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------- groups
def render_groups_page(table: LeaderboardTable, version: str) -> str:
    """The version's comparability groups: task, version, config and corpus hashes, the config."""
    out = _head(f"sae-bench leaderboard {version}: comparability groups", script=False) + [
        f'<p class="small"><a href="index.html">← leaderboard {esc(version)}</a> · '
        '<a href="../versions.html">all versions</a></p>',
        f"<h1>Comparability groups of {esc(version)}</h1>",
        "<p class=\"sub\">A column holds numbers of one group only: same task, task version, config hash and "
        "corpus hash.</p>",
        "<table><thead><tr><th>column group</th><th>task</th><th>version</th><th>config hash</th>"
        "<th>corpus hash</th><th>corpus</th><th>rows</th></tr></thead><tbody>"]
    configs = []
    for key, label in sorted(table.groups.items(), key=lambda kv: kv[1]):
        records = [r for row in table.rows for r in row.records if key_of(r) == key]
        corpora = sorted({str(r.data["corpus"].get("id", "")) for r in records})
        out.append("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in (
            label, key.task, key.task_version, key.config_hash, key.corpus_hash, ", ".join(corpora), len(records)))
            + "</tr>")
        configs.append((label, records[0].data["task"].get("config", {}) if records else {}))
    out.append("</tbody></table>")
    out.append("<h2>Task configurations</h2>")
    for label, config in configs:
        out.append(f"<h3>{esc(label)}</h3>" + dl(sorted(config.items()) if isinstance(config, dict) else []))
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------- checkpoints
def _record_link(record: ResultRecord) -> str:
    return record_path(Path(RESULTS_FOLDER), record.checkpoint_id, record.hookpoint, record.task_name).as_posix()


def _metrics_table(table: LeaderboardTable, row: Row) -> str:
    parts = ["<table><thead><tr><th>task</th><th>metric</th><th>better</th><th class=\"num\">value</th>"
             "<th class=\"num\">± stderr</th><th class=\"num\">n</th><th>note</th></tr></thead><tbody>"]
    for record in sorted(row.records, key=lambda r: table.groups[key_of(r)]):
        counts = record.data["counts"]
        n = next((counts[k] for k in ("tokens", "test_texts", "examples_scored", "documents", "sequences")
                  if isinstance(counts.get(k), int)), "")
        group = table.groups[key_of(record)]
        for i, (name, entry) in enumerate(sorted(record.metrics.items())):
            value, stderr = number(entry, "value"), number(entry, "stderr")
            spec = record.metric_spec(name)
            better = None if spec is None else spec.higher_is_better
            parts.append(
                f"<tr><td>{esc(group) if i == 0 else ''}</td><td>{esc(name)}</td>"
                f"<td>{'' if better is None else ('higher' if better else 'lower')}</td>"
                f"<td class=\"num\">{'null' if value is None else esc(f'{value:.5g}')}</td>"
                f"<td class=\"num\">{'' if stderr is None else esc(f'{stderr:.2g}')}</td>"
                f"<td class=\"num\">{esc(n) if i == 0 else ''}</td><td>{esc(entry.get('reason') or '')}</td></tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _libraries(data: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(data.get("libraries", {}).items()))


def render_checkpoint_page(table: LeaderboardTable, row: Row, plots: list[Plot], version: str) -> str:
    """One row's page: provenance, every metric with its standard error, its plots, the sections its
    tasks declare (`views.PageSection`), notes and the records."""
    first = row.records[0].data
    ckpt, model = first["checkpoint"], first["model"]
    site = table.site_of(row)
    family = family_of(row)
    rank = (f"rank {row.rank} of {len(site.rows)} at {site.hookpoint}, {_ranking_words(site)}"
            if row.rank is not None else f"unranked at {site.hookpoint}")
    corpus = first["corpus"]
    out = _head(f"{row.checkpoint} @ {row.hookpoint} — sae-bench leaderboard {version}", script=False) + [
        f'<p class="small"><a href="../index.html#row-{row.row}">← leaderboard {esc(version)}</a></p>',
        f"<h1>{esc(row.checkpoint)} <span class=\"muted\">@ {esc(row.hookpoint)}</span></h1>{mismatch_marker(row)}",
        f'<p class="sub"><span class="swatch fam{table.families.index(family) % 10}"></span>{esc(family)} · '
        f"{esc(rank)}</p>",
        "<h2>Provenance</h2>",
        dl([("format", str(ckpt.get("format", ""))), ("d_in / d_sae", f"{ckpt.get('d_in')} / {ckpt.get('d_sae')}"),
             ("activation", ckpt.get("activation")), ("preprocessing", ckpt.get("preprocessing")),
             ("weights sha256", str(ckpt.get("sha256") or "")),
             ("checkpoint's own hookpoint", str(ckpt.get("hookpoint"))),
             ("model", f"{model.get('id', '')} (revision {model.get('revision') or 'none'})"),
             ("corpus", f"{corpus.get('id', '')}: {corpus.get('n_sequences')} sequences of {corpus.get('seq_len')} "
                        f"tokens, hash {str(corpus.get('hash', ''))[:16]}…"),
             ("tokens evaluated", compact(first["counts"])),
             ("harness / dtype / device", f"{first['harness_version']} / {first['dtype']} / {first['device']}"),
             ("libraries", _libraries(first)),
             ("measured", ", ".join(sorted({r.data["created_at"][:10] for r in row.records})))]),
        "<h2>Metrics</h2>", _metrics_table(table, row)]
    mine = [p for p in plots if p.row == row.row]
    figures = [(plot, declared.caption) for _task, declared in views.declared("row_plots")
               for plot in [next((p for p in mine if p.kind == declared.kind), None)] if plot]
    if figures:
        out.append("<h2>Distributions</h2><div class=\"site-row\">")
        out += [_figure(plot, "../", caption) for plot, caption in figures]
        out.append("</div>")
    for task, section in views.declared("page_sections"):  # each task's own part of the page
        record = views.record_of(row, task)
        if record is not None:
            out += views.resolve(section.render)(record)
    out.append("<h2>Records</h2><ul>")
    for record in sorted(row.records, key=lambda r: r.task_name):
        notes = "".join(f"<li>{esc(n)}</li>" for n in record.data.get("notes") or [])
        config = record.data["task"].get("config", {})
        out.append(f'<li><a href="../{esc(_record_link(record))}">{esc(record.task_name)}</a> '
                   f"v{esc(record.task_version)}, config {esc(record.config_hash)}: "
                   f"{esc(compact(config))}{'<ul>' + notes + '</ul>' if notes else ''}</li>")
    out += ["</ul>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------- versions
def render_index_page(versions: list[tuple[str, list[ComparabilityKey]]]) -> str:
    """The list of leaderboard versions with the comparability keys (hashes) of each (versions.html)."""
    out = _head("sae-bench leaderboard versions", script=False) + [
        '<p class="small"><a href="index.html">← leaderboard</a></p>',
        "<h1>sae-bench leaderboard versions</h1>",
        "<p>Each version holds numbers of one set of comparability keys (task, task version, config hash, corpus "
        "hash). A change of a task's meaning bumps its version and opens a new leaderboard version; older versions "
        "stay as they were. The front page shows the latest.</p>",
        "<table><thead><tr><th>version</th><th>task</th><th>task version</th><th>config hash</th><th>corpus hash</th>"
        "</tr></thead><tbody>"]
    for name, keys in versions:
        for i, key in enumerate(keys):
            link = f'<a href="{esc(name)}/index.html">{esc(name)}</a>' if i == 0 else ""
            out.append(f"<tr><td>{link}</td>" + "".join(f"<td>{esc(v)}</td>" for v in key) + "</tr>")
    out += ["</tbody></table>", "</body>", "</html>"]
    return "\n".join(out) + "\n"
