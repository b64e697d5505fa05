"""The static HTML pages: a version's index.html (sortable table, frontier plots, per-checkpoint
provenance) and the leaderboard's top-level index.html (the list of versions).

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
import html
import json
from pathlib import Path
from typing import Any, Iterable

from sae_bench.leaderboard_build.collect import ComparabilityKey, key_of
from sae_bench.leaderboard_build.plots import Plot
from sae_bench.leaderboard_build.table import (LeaderboardTable, Row, format_value, higher_is_better, number,
                                               MetricColumn, ranking_text)
from sae_bench.results import ResultRecord, record_path

ARTIFACT_PREVIEW_CHARS = 4000
RESULTS_FOLDER = "results"  # the version folder's snapshot of its records

STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 1.5em; color: #1d1d1d; background: #fff; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; } h3 { font-size: 1.05em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #c8c8c8; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
thead th { background: #eef2f6; position: sticky; top: 0; }
th button { font: inherit; font-weight: bold; border: 0; background: none; cursor: pointer; padding: 0; text-align: left; }
tbody tr:nth-child(even) { background: #f8f8f8; }
figure { display: inline-block; margin: 0 1em 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
section.ckpt { border-top: 1px solid #bbb; margin-top: 1.2em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.15em 1em; font-size: 0.85em; }
dt { font-weight: bold; } dd { margin: 0; word-break: break-all; }
pre { background: #f4f4f4; padding: 0.5em; white-space: pre-wrap; word-break: break-all; font-size: 0.8em; }
.muted { color: #666; }
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


def esc(value: Any) -> str:
    """Escape untrusted text for HTML text and (double-quoted) attribute values."""
    return html.escape(str(value), quote=True)


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


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False, default=str)


def _dl(items: Iterable[tuple[str, Any]]) -> str:
    parts = ["<dl>"]
    for label, value in items:
        text = value if isinstance(value, str) else _json(value)
        parts.append(f"<dt>{esc(label)}</dt><dd>{esc(text)}</dd>")
    parts.append("</dl>")
    return "".join(parts)


def _number_attr(value: float | None) -> str:
    return "" if value is None else repr(float(value))


# ------------------------------------------------------------------------------- the table
def _header_cell(label: str, key: str, numeric: bool, first: int = 1, title: str | None = None) -> str:
    title_attr = f' title="{esc(title)}"' if title else ""
    return (f'<th data-key="{esc(key)}" data-type="{"num" if numeric else "text"}" data-first="{first}" '
            f'aria-sort="none"{title_attr}><button type="button">{esc(label)}<span class="mark"></span></button></th>')


def _table(table: LeaderboardTable, columns: list[MetricColumn], table_id: str) -> list[str]:
    heads = [_header_cell("rank", "rank", True), _header_cell("#", "row", True),
             _header_cell("checkpoint", "checkpoint", False), _header_cell("hookpoint", "hookpoint", False),
             _header_cell("d_sae", "d_sae", True)]
    for column in columns:
        better = higher_is_better(column.metric)
        hint = "" if better is None else (" (higher is better)" if better else " (lower is better)")
        heads.append(_header_cell(column.name, column.name, True, first=-1 if better else 1,
                                  title=f"{column.name}{hint}; value ± standard error"))
    out = [f'<div class="scroll"><table class="sortable" id="{table_id}">', "<thead><tr>" + "".join(heads) + "</tr></thead>", "<tbody>"]
    for order, row in enumerate(table.rows):
        d_sae = row.records[0].data["checkpoint"].get("d_sae")
        d_sae = d_sae if isinstance(d_sae, int) and not isinstance(d_sae, bool) else None
        cells = [f'<td class="num" data-sort="{"" if row.rank is None else row.rank}">{"" if row.rank is None else row.rank}</td>',
                 f'<td class="num" data-sort="{row.row}">{row.row}</td>',
                 f'<td data-sort="{esc(row.checkpoint)}"><a href="#row-{row.row}">{esc(row.checkpoint)}</a></td>',
                 f'<td data-sort="{esc(row.hookpoint)}">{esc(row.hookpoint)}</td>',
                 f'<td class="num" data-sort="{"" if d_sae is None else d_sae}">{"" if d_sae is None else d_sae}</td>']
        for column in columns:
            entry = row.entry(column)
            reason = (entry or {}).get("reason")
            title = f' title="{esc(reason)}"' if reason else ""
            cells.append(f'<td class="num" data-sort="{_number_attr(number(entry, "value"))}"{title}>'
                         f"{esc(format_value(entry))}</td>")
        out.append(f'<tr data-order="{order}" data-row="{row.row}">' + "".join(cells) + "</tr>")
    out += ["</tbody></table></div>"]
    return out


def _all_metrics(table: LeaderboardTable) -> list[str]:
    if len(table.headline_columns()) == len(table.columns):
        return []
    return ([f"<details><summary>All {len(table.columns)} metric columns (rows.csv and rows.parquet hold them "
             "with their standard errors)</summary>"] + _table(table, table.columns, "all-metrics") + ["</details>"])


def _groups(table: LeaderboardTable) -> list[str]:
    out = ["<table><thead><tr><th>column group</th><th>task</th><th>task version</th><th>config hash</th>"
           "<th>corpus hash</th><th>corpus</th><th>rows</th><th>config</th></tr></thead><tbody>"]
    for key, label in sorted(table.groups.items(), key=lambda kv: kv[1]):
        records = [r for row in table.rows for r in row.records if key_of(r) == key]
        corpora = sorted({str(r.data["corpus"].get("id", "")) for r in records})
        config = records[0].data["task"].get("config", {}) if records else {}
        out.append("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in (
            label, key.task, key.task_version, key.config_hash, key.corpus_hash, ", ".join(corpora), len(records)))
            + f"<td><pre>{esc(_json(config))}</pre></td></tr>")
    out.append("</tbody></table>")
    return out


def _plots(plots: list[Plot]) -> list[str]:
    if not plots:
        return ['<p class="muted">No frontier plot: the results hold no l0 column together with an fvu or '
                "ce_loss_recovered column of the same corpus.</p>"]
    out = []
    for plot in plots:
        caption = (f"{plot.y.name} against {plot.x.name} (log x), {plot.points} rows"
                   + (f"; {plot.dropped} rows left out (a value missing, or L0 <= 0)" if plot.dropped else ""))
        out.append(f'<figure><img src="plots/{esc(plot.filename)}" alt="{esc(caption)}" width="640" height="440">'
                   f"<figcaption>{esc(caption)}</figcaption></figure>")
    return out


# ------------------------------------------------------------------------------- details
def _record_link(record: ResultRecord) -> str:
    return record_path(Path(RESULTS_FOLDER), record.checkpoint_id, record.hookpoint, record.task_name).as_posix()


def _metrics_table(record: ResultRecord) -> str:
    parts = ["<table><thead><tr><th>metric</th><th>value</th><th>stderr</th><th>reason</th></tr></thead><tbody>"]
    for name, entry in sorted(record.metrics.items()):
        value, stderr = number(entry, "value"), number(entry, "stderr")
        parts.append(f"<tr><td>{esc(name)}</td><td class=\"num\">{'null' if value is None else esc(repr(value))}</td>"
                     f"<td class=\"num\">{'' if stderr is None else esc(repr(stderr))}</td>"
                     f"<td>{esc(entry.get('reason') or '')}</td></tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _record_details(record: ResultRecord, group: str) -> list[str]:
    data = record.data
    task, corpus = data["task"], data["corpus"]
    out = [f'<h4>{esc(group)} <a href="{esc(_record_link(record))}">(record)</a></h4>',
           _dl([("task", f"{task['name']} version {task['version']}"), ("config hash", task["config_hash"]),
                ("config", task.get("config", {})),
                ("corpus", f"{corpus.get('id', '')} (hash {corpus['hash']}, seq_len {corpus.get('seq_len')}, "
                           f"{corpus.get('n_sequences')} sequences, tokenizer {corpus.get('tokenizer')})"),
                ("counts", data["counts"]), ("seed", str(data["seed"])),
                ("dtype / device", f"{data['dtype']} / {data['device']}"),
                ("harness version", data["harness_version"]), ("libraries", data["libraries"]),
                ("measured at", data["created_at"]),
                ("record file", _record_link(record))]),
           _metrics_table(record)]
    notes = data.get("notes") or []
    if notes:
        out.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    artifacts = data.get("artifacts") or {}
    if artifacts:
        text = _json(artifacts)
        shown = text if len(text) <= ARTIFACT_PREVIEW_CHARS else (
            text[:ARTIFACT_PREVIEW_CHARS] + f"\n... ({len(text) - ARTIFACT_PREVIEW_CHARS} more characters in the record file)")
        out.append(f"<details><summary>artifacts ({esc(', '.join(sorted(artifacts)))})</summary>"
                   f"<pre>{esc(shown)}</pre></details>")
    return out


def _details(table: LeaderboardTable, row: Row) -> list[str]:
    first = row.records[0].data
    ckpt, model = first["checkpoint"], first["model"]
    out = [f'<section class="ckpt" id="row-{row.row}">',
           f"<h3>#{row.row} {esc(row.checkpoint)} @ {esc(row.hookpoint)}</h3>",
           _dl([("checkpoint", row.checkpoint), ("format", str(ckpt.get("format", ""))),
                ("weights sha256", str(ckpt.get("sha256") or "")),
                ("d_in / d_sae", f"{ckpt.get('d_in')} / {ckpt.get('d_sae')}"),
                ("activation", ckpt.get("activation")), ("preprocessing", ckpt.get("preprocessing")),
                ("checkpoint's hookpoint", str(ckpt.get("hookpoint"))), ("evaluated at", row.hookpoint),
                ("source model (checkpoint)", str(ckpt.get("source_model"))),
                ("model", f"{model.get('id', '')} revision {model.get('revision') or '(none)'}"),
                ("rank", "unranked" if row.rank is None else str(row.rank))])]
    for record in sorted(row.records, key=lambda r: table.groups[key_of(r)]):
        out += _record_details(record, table.groups[key_of(record)])
    out.append("</section>")
    return out


def render_version_page(table: LeaderboardTable, plots: list[Plot], version: str) -> str:
    title = f"sae-bench leaderboard {version}"
    n_records = sum(len(r.records) for r in table.rows)
    out = _head(title, script=True) + [
        f"<h1>{esc(title)}</h1>",
        f"<p>{len(table.rows)} rows (checkpoint × hookpoint) from {n_records} result records, "
        f"{esc(ranking_text(table))}. Click a column header to sort (again to reverse). Cells: value ± standard "
        "error; <em>null</em>: the task reported no value (hover for the reason); <em>-</em>: not run. "
        'Files: <a href="rows.parquet">rows.parquet</a>, <a href="rows.csv">rows.csv</a>, '
        '<a href="table.md">table.md</a>, <a href="results/">results/</a> (the records), '
        '<a href="../index.html">all versions</a>.</p>',
        "<h2>Table</h2>"] + _table(table, table.headline_columns(), "leaderboard") + _all_metrics(table) + [
        "<h2>Frontier plots</h2>"] + _plots(plots) + [
        "<h2>Comparability groups</h2>",
        "<p>A column holds numbers of one group only: same task, task version, config hash and corpus hash.</p>"
    ] + _groups(table) + ["<h2>Checkpoints</h2>"]
    for row in sorted(table.rows, key=lambda r: r.row):
        out += _details(table, row)
    out += [f"<script>{SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


def render_index_page(versions: list[tuple[str, list[ComparabilityKey]]]) -> str:
    """The top-level list of leaderboard versions with the comparability keys of each."""
    out = _head("sae-bench leaderboards", script=False) + [
        "<h1>sae-bench leaderboards</h1>",
        "<p>Each version holds numbers of one set of comparability keys (task, task version, config hash, corpus "
        "hash). A change of a task's meaning bumps its version and opens a new leaderboard version; older versions "
        "stay as they were.</p>",
        "<table><thead><tr><th>version</th><th>task</th><th>task version</th><th>config hash</th><th>corpus hash</th>"
        "</tr></thead><tbody>"]
    for name, keys in versions:
        for i, key in enumerate(keys):
            link = f'<a href="{esc(name)}/index.html">{esc(name)}</a>' if i == 0 else ""
            out.append(f"<tr><td>{link}</td>" + "".join(f"<td>{esc(v)}</td>" for v in key) + "</tr>")
    out += ["</tbody></table>", "</body>", "</html>"]
    return "\n".join(out) + "\n"
