"""The leaderboard table: one row per checkpoint x hookpoint, one column per metric of each
comparability group, and the files it is written to (rows.parquet, rows.csv, table.md).

Columns:
- identity columns (`ID_COLUMNS`): rank, row (a stable row number, used by the plots and the
  page's anchors), checkpoint, hookpoint, format, d_in, d_sae, activation, model,
  model_revision, checkpoint_sha256, corpus;
- for every comparability group G and each metric m it reports: `G/m` (the value) and
  `G/m_stderr`. G is the task name when that task has one comparability key in the build,
  otherwise `task@v<version>.<config hash[:8]>.<corpus hash[:8]>`, so a column never holds numbers
  of two keys and rows are only ever compared within one key.

Sites: rows are ranked only against rows evaluated at the same hookpoint (a *site*), and only
within one column (one comparability key). A site's ranking column is, among the columns holding
a value for one of its rows, the one whose metric spec has the lowest `ranking` priority, ranked
in the direction the spec declares (`sae_bench.core.task_api.MetricSpec`, carried by the records);
competition ranking (ties share the smaller rank, "1224"), rows without a value
unranked and last. Sites are ordered by their number of rows (most first), then by name; rows by
site, then rank, then checkpoint.

Families: a row's family is its architecture, `format · activation kind` (e.g. "sparsify · topk");
the page groups rows by family and the plots colour them by family (`family_index`).

Output is byte-deterministic: parquet through pyarrow with an explicit schema and no pandas
metadata, CSV with "\n" line ends, no timestamps. This module never computes a metric: values
and standard errors are copied from the records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sae_bench.leaderboard_build.collect import Collection, ComparabilityKey, key_of
from sae_bench.records.results import ResultRecord
from sae_bench.core.task_api import MetricSpec

STDERR_SUFFIX = "_stderr"

ID_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("rank", pa.int64()),
    ("row", pa.int64()),
    ("checkpoint", pa.string()),
    ("hookpoint", pa.string()),
    ("format", pa.string()),
    ("d_in", pa.int64()),
    ("d_sae", pa.int64()),
    ("activation", pa.string()),
    ("model", pa.string()),
    ("model_revision", pa.string()),
    ("checkpoint_sha256", pa.string()),
    ("corpus", pa.string()),
)


@dataclass(frozen=True)
class MetricColumn:
    """One metric of one comparability group: `name` holds values, `stderr_name` standard errors."""

    group: str
    key: ComparabilityKey
    metric: str
    spec: MetricSpec | None = field(default=None, compare=False)  # as the task declares it (None: unknown)

    @property
    def higher_is_better(self) -> bool | None:
        return None if self.spec is None else self.spec.higher_is_better

    @property
    def name(self) -> str:
        return f"{self.group}/{self.metric}"

    @property
    def stderr_name(self) -> str:
        return self.name + STDERR_SUFFIX


@dataclass
class Row:
    row: int
    checkpoint: str
    hookpoint: str
    records: list[ResultRecord]
    rank: int | None = None

    def record_for(self, key: ComparabilityKey) -> ResultRecord | None:
        for record in self.records:
            if key_of(record) == key:
                return record
        return None

    def entry(self, column: MetricColumn) -> dict[str, Any] | None:
        record = self.record_for(column.key)
        return None if record is None else record.metrics.get(column.metric)


def family_of(row: "Row") -> str:
    """The row's architecture family: checkpoint format and activation kind."""
    ckpt = row.records[0].data["checkpoint"]
    act = ckpt.get("activation")
    kind = str(act.get("kind", "")) if isinstance(act, dict) else str(act or "")
    return " · ".join(p for p in (str(ckpt.get("format", "")), kind) if p) or "unknown"


@dataclass
class Site:
    """The rows evaluated at one hookpoint, ranked against each other only."""

    hookpoint: str
    rows: list["Row"]  # in rank order (unranked last)
    ranked_by: MetricColumn | None = None
    higher_is_better: bool | None = None


@dataclass
class LeaderboardTable:
    rows: list[Row]  # by site, then rank
    columns: list[MetricColumn]
    groups: dict[ComparabilityKey, str]  # key -> column group label
    ranked_by: MetricColumn | None = None
    higher_is_better: bool | None = None
    frame: pd.DataFrame = field(default=None, repr=False)  # type: ignore[assignment]
    sites: list[Site] = field(default_factory=list)

    @property
    def families(self) -> list[str]:
        """Every family of the build, sorted: a family's index picks its colour everywhere."""
        return sorted({family_of(r) for r in self.rows})

    def family_index(self, row: Row) -> int:
        return self.families.index(family_of(row))

    def site_of(self, row: Row) -> Site:
        return next(s for s in self.sites if s.hookpoint == row.hookpoint)

    def column(self, name: str) -> MetricColumn | None:
        return next((c for c in self.columns if c.name == name), None)

    def headline_columns(self) -> list[MetricColumn]:
        """The headline metrics (specs with a `headline` position, in that order) present in the
        build, or every column when none is; the other columns are in "all metrics" and the files."""
        chosen = [c for c in self.columns if c.spec is not None and c.spec.headline is not None]
        return sorted(chosen, key=lambda c: (c.spec.headline, c.group)) or list(self.columns)


def group_labels(keys: list[ComparabilityKey]) -> dict[ComparabilityKey, str]:
    """Column group label per key: the task name, qualified only where a task has several keys."""
    per_task: dict[str, list[ComparabilityKey]] = {}
    for key in sorted(keys):
        per_task.setdefault(key.task, []).append(key)
    labels: dict[ComparabilityKey, str] = {}
    for task, task_keys in per_task.items():
        if len(task_keys) == 1:
            labels[task_keys[0]] = task
            continue
        short = {k: f"{task}@v{k.task_version}.{k.config_hash[:8]}.{k.corpus_hash[:8]}" for k in task_keys}
        if len(set(short.values())) < len(task_keys):
            short = {k: f"{task}@v{k.task_version}.{k.config_hash}.{k.corpus_hash}" for k in task_keys}
        labels.update(short)
    return labels


def _activation(data: dict[str, Any]) -> str:
    act = data["checkpoint"].get("activation")
    if not isinstance(act, dict):
        return str(act or "")
    kind = str(act.get("kind", ""))
    if act.get("k") is not None:
        return f"{kind} k={act['k']}"
    if act.get("threshold") is not None and not isinstance(act["threshold"], (list, dict)):
        return f"{kind} threshold={act['threshold']}"
    return kind


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def number(entry: dict[str, Any] | None, field_name: str) -> float | None:
    if entry is None:
        return None
    value = entry.get(field_name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _ranking_column(columns: list[MetricColumn], rows: list[Row] | None = None,
                    rank_by: str | None = None) -> tuple[MetricColumn | None, bool | None]:
    """The column (with a value in one of `rows`, when given) whose spec has the lowest `ranking`, and
    its direction; columns are sorted, so the first key of a task wins a tie. With `rank_by` (a
    metric, or `group/metric`), the first column of that metric instead."""
    if rank_by is not None:
        chosen = [c for c in columns if rank_by in (c.metric, c.name)
                  and (rows is None or any(number(r.entry(c), "value") is not None for r in rows))]
        return (chosen[0], chosen[0].higher_is_better) if chosen else (None, None)
    candidates = [c for c in columns if c.spec is not None and c.spec.ranking is not None
                  and (rows is None or any(number(r.entry(c), "value") is not None for r in rows))]
    if not candidates:
        return None, None
    best = min(candidates, key=lambda c: c.spec.ranking)
    return best, best.higher_is_better


def check_rank_by(columns: list[MetricColumn], rank_by: str) -> None:
    """A chosen ranking metric must exist in the build and declare a direction (one-line error)."""
    from sae_bench.core.errors import ResultError

    found = [c for c in columns if rank_by in (c.metric, c.name)]
    if not found:
        raise ResultError("--rank-by", f"no metric {rank_by!r} in these records")
    if found[0].higher_is_better is None:
        raise ResultError("--rank-by", f"{rank_by!r} has no better direction (its spec says 'none'): cannot rank by it")


def _spec(records: list[ResultRecord], metric: str) -> MetricSpec | None:
    """The first spec the records (of one comparability key) give for `metric`."""
    return next((spec for r in records if (spec := r.metric_spec(metric)) is not None), None)


def _rank_site(site: Site) -> None:
    column, higher = site.ranked_by, site.higher_is_better
    if column is not None:
        scored = [v for r in site.rows if (v := number(r.entry(column), "value")) is not None]
        for row_ in site.rows:
            value = number(row_.entry(column), "value")
            if value is not None:
                row_.rank = 1 + sum(1 for v in scored if (v > value if higher else v < value))
    site.rows.sort(key=lambda r: (r.rank is None, r.rank or 0, r.checkpoint))


def build_table(collection: Collection, rank_by: str | None = None) -> LeaderboardTable:
    """`rank_by`: rank every site by this metric instead of the specs' ranking priority."""
    groups = group_labels(collection.keys)
    columns = sorted((MetricColumn(groups[k], k, m, _spec([r for r in records if m in r.metrics], m))
                      for k, records in collection.by_key().items() for m in {m for r in records for m in r.metrics}),
                     key=lambda c: (c.group, c.metric))
    rows = [Row(i + 1, ckpt, hp, records) for i, ((ckpt, hp), records) in enumerate(collection.by_row().items())]
    if rank_by is not None:
        check_rank_by(columns, rank_by)
    ranked_by, higher = _ranking_column(columns, rank_by=rank_by)
    by_site: dict[str, list[Row]] = {}
    for row_ in rows:
        by_site.setdefault(row_.hookpoint, []).append(row_)
    sites = []
    for hookpoint, site_rows in sorted(by_site.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        site = Site(hookpoint, site_rows, *_ranking_column(columns, site_rows, rank_by))
        _rank_site(site)
        sites.append(site)
    rows = [r for site in sites for r in site.rows]
    table = LeaderboardTable(rows=rows, columns=columns, groups=groups, ranked_by=ranked_by, higher_is_better=higher,
                             sites=sites)
    table.frame = to_frame(table)
    return table


def _schema(table: LeaderboardTable) -> pa.Schema:
    fields = [pa.field(name, kind) for name, kind in ID_COLUMNS]
    for column in table.columns:
        fields += [pa.field(column.name, pa.float64()), pa.field(column.stderr_name, pa.float64())]
    return pa.schema(fields)


def to_frame(table: LeaderboardTable) -> pd.DataFrame:
    data: dict[str, list[Any]] = {name: [] for name, _ in ID_COLUMNS}
    for column in table.columns:
        data[column.name] = []
        data[column.stderr_name] = []
    for row in table.rows:
        first = row.records[0].data
        ids = {
            "rank": row.rank, "row": row.row, "checkpoint": row.checkpoint, "hookpoint": row.hookpoint,
            "format": str(first["checkpoint"].get("format", "")),
            "d_in": _int_or_none(first["checkpoint"].get("d_in")),
            "d_sae": _int_or_none(first["checkpoint"].get("d_sae")),
            "activation": _activation(first), "model": str(first["model"].get("id", "")),
            "model_revision": str(first["model"].get("revision") or ""),
            "checkpoint_sha256": str(first["checkpoint"].get("sha256") or ""),
            "corpus": ", ".join(sorted({str(r.data["corpus"].get("id", "")) for r in row.records})),
        }
        for name, value in ids.items():
            data[name].append(value)
        for column in table.columns:
            entry = row.entry(column)
            data[column.name].append(number(entry, "value"))
            data[column.stderr_name].append(number(entry, "stderr"))
    frame = pd.DataFrame(data)
    for name, kind in ID_COLUMNS:
        if kind == pa.int64():
            frame[name] = frame[name].astype("Int64")
    for column in table.columns:
        for name in (column.name, column.stderr_name):
            frame[name] = frame[name].astype("float64")
    return frame


def write_parquet(table: LeaderboardTable, path: Path) -> None:
    """Fixed schema, no pandas metadata (no index, no library versions), deterministic bytes."""
    schema = _schema(table)
    arrays = []
    for f in schema:
        values = [None if (v is pd.NA or (isinstance(v, float) and math.isnan(v))) else v
                  for v in table.frame[f.name].tolist()]
        arrays.append(pa.array(values, type=f.type))
    arrow = pa.Table.from_arrays(arrays, schema=schema)
    pq.write_table(arrow, path, compression="snappy", store_schema=True, write_statistics=False)


def write_csv(table: LeaderboardTable, path: Path) -> None:
    text = table.frame.to_csv(index=False, lineterminator="\n", na_rep="")
    path.write_text(text, encoding="utf-8", newline="")


# ------------------------------------------------------------------------------- markdown
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]|"})


def md_escape(text: Any) -> str:
    """Untrusted text for a Markdown table cell: HTML-escaped (so no tag survives a renderer),
    Markdown punctuation backslash-escaped, newlines flattened."""
    import html

    flat = " ".join(str(text).split())
    return html.escape(flat, quote=True).translate(_MD_SPECIAL)


def format_value(entry: dict[str, Any] | None, stderr_digits: int = 2, sep: str = " ± ") -> str:
    """`value ± stderr` (4 and `stderr_digits` significant digits), `null` for a null metric, `-` when absent."""
    if entry is None:
        return "-"
    value, stderr = number(entry, "value"), number(entry, "stderr")
    if value is None:
        return "null"
    return f"{value:.4g}" if stderr is None else f"{value:.4g}{sep}{stderr:.{stderr_digits}g}"


def ranking_text(table: LeaderboardTable) -> str:
    if table.ranked_by is None:
        return ranking_text_for(None)
    return f"ranked by {table.ranked_by.name} ({'higher' if table.higher_is_better else 'lower'} is better)"


def ranking_text_for(column_name: str | None) -> str:
    return "unranked (no ranking metric present)" if column_name is None else f"ranked by {column_name}"


def _markdown_table(table: LeaderboardTable, columns: list[MetricColumn]) -> list[str]:
    header = ["rank", "#", "checkpoint", "hookpoint"] + [c.name for c in columns]
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |",
             "|" + "|".join("---" if i < 4 else "--:" for i in range(len(header))) + "|"]
    for row in table.rows:
        cells = ["" if row.rank is None else str(row.rank), str(row.row), md_escape(row.checkpoint),
                 md_escape(row.hookpoint)] + [md_escape(format_value(row.entry(c))) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_markdown(table: LeaderboardTable, version: str) -> str:
    headline = table.headline_columns()
    lines = [f"# sae-bench leaderboard {md_escape(version)}", "",
             f"{len(table.rows)} rows (checkpoint x hookpoint), {md_escape(ranking_text(table))}; rows without "
             "that metric are unranked. Cells: value ± standard error; `null`: the task reported no value "
             "(the reason is in index.html); `-`: not run.", ""]
    lines += _markdown_table(table, headline)
    if len(headline) < len(table.columns):
        lines += ["", "## All metrics", ""] + _markdown_table(table, table.columns)
    lines += ["", "## Comparability groups", "",
              "Numbers are compared only within a group: same task, task version, config hash and corpus hash.", "",
              "| group | task | version | config hash | corpus hash |", "|---|---|---|---|---|"]
    for key, label in sorted(table.groups.items(), key=lambda kv: kv[1]):
        lines.append("| " + " | ".join(md_escape(x) for x in (label, key.task, key.task_version, key.config_hash,
                                                                 key.corpus_hash)) + " |")
    return "\n".join(lines) + "\n"
