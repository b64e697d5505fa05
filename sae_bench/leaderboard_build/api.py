"""The leaderboard's Python API: `build_leaderboard(results_dir, out_dir) -> BuildReport` and
`rebuild_all(out_dir, into=None)`. The CLI (`sae-bench leaderboard build|rebuild`) calls these.

A build reads and validates every record first (a bad record raises a one-line ResultError naming
its file, and nothing is written), chooses the version folder (see `versioning`), renders the
whole folder into a hidden staging folder beside it, then moves it into place (rename; an
existing folder of the same key set is renamed away first and deleted after), and finally
rewrites index.json and the top-level index.html atomically.

A version folder:
    results/<checkpoint>-<hash>/<hookpoint>/<task>.json   the records (canonical JSON), for rebuilds
    rows.parquet, rows.csv, table.md                the table (`table`)
    plots/*.svg                                     depth, frontiers per site, per-row histograms (`plots`)
    index.html                                      the leaderboard page (`page.render_board`)
    checkpoints/<row>-<checkpoint>-<hookpoint>.html one page per row (`page.render_checkpoint_page`)
    groups.html                                     the comparability groups with hashes and configs
    version.json                                    key set, ranking, counts, sha256 of every file
The top level holds index.json, versions.html (every version with its keys) and index.html: the
board of the latest version (links into its folder).
Everything is a function of the records alone (no clock, sorted everywhere), so the same records
give the same bytes. This module never computes a metric.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from sae_bench.core.errors import ResultError
from sae_bench.records.results import pid_alive
from sae_bench.leaderboard_build import page, plots, table, versioning
from sae_bench.leaderboard_build.collect import Collection, ComparabilityKey, collect
from sae_bench.records.results import atomic_write_text, dumps, record_path

VERSION_FILE = "version.json"
RESULTS_FOLDER = page.RESULTS_FOLDER
_STAGING = re.compile(r"^\.(?:staging|old)\.pid(\d+)\.")


@dataclass
class BuildReport:
    version: str
    created: bool  # True: a new version was opened; False: an existing one was rebuilt in place
    folder: Path
    keys: tuple[ComparabilityKey, ...]
    rows: int
    records: int
    ranked_by: str | None
    plots: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256

    def summary(self) -> str:
        how = "new version" if self.created else "rebuilt in place"
        return (f"leaderboard {self.version} ({how}): {self.rows} rows from {self.records} records, "
                f"{len(self.keys)} comparability keys, {table.ranking_text_for(self.ranked_by)} -> {self.folder}")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _remove_stale_staging(out_dir: Path) -> None:
    for path in out_dir.glob(".*.pid*"):
        match = _STAGING.match(path.name)
        if match and path.is_dir() and int(match.group(1)) != os.getpid() and not pid_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)


def render_version(collection: Collection, version: str, folder: Path, rank_by: str | None = None) -> BuildReport:
    """Write one complete version folder into `folder` (which must not exist yet); `rank_by` chooses
    the ranking metric (recorded in version.json, so rebuilds rank alike)."""
    folder.mkdir(parents=True)
    for record in collection.records:
        target = record_path(folder / RESULTS_FOLDER, record.checkpoint_id, record.hookpoint, record.task_name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dumps(record.data), encoding="utf-8", newline="")
    board = table.build_table(collection, rank_by)
    table.write_parquet(board, folder / "rows.parquet")
    table.write_csv(board, folder / "rows.csv")
    (folder / "table.md").write_text(table.render_markdown(board, version), encoding="utf-8", newline="")
    drawn = plots.draw_all(board, folder / "plots")
    (folder / "index.html").write_text(page.render_board(board, drawn, version), encoding="utf-8", newline="")
    (folder / "groups.html").write_text(page.render_groups_page(board, version), encoding="utf-8", newline="")
    (folder / page.CHECKPOINTS_FOLDER).mkdir()
    for row in board.rows:
        (folder / page.checkpoint_page(row)).write_text(page.render_checkpoint_page(board, row, drawn, version),
                                                       encoding="utf-8", newline="")
    files = {p.relative_to(folder).as_posix(): _sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    keys = versioning.key_set(k for k in collection.keys)
    meta = {"version": version, "keys": [k.to_json() for k in keys],
            "groups": {board.groups[k]: k.to_json() for k in keys},
            "ranked_by": None if board.ranked_by is None else board.ranked_by.name,
            "higher_is_better": board.higher_is_better, "rows": len(board.rows), "records": len(collection.records),
            "plots": [p.filename for p in drawn], "sites": [s.hookpoint for s in board.sites],
            "figures": [p.to_json() for p in drawn], "files": files}
    if rank_by is not None:
        meta["rank_by"] = rank_by
    (folder / VERSION_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                                       encoding="utf-8", newline="")
    return BuildReport(version=version, created=False, folder=folder, keys=keys, rows=len(board.rows),
                       records=len(collection.records), ranked_by=meta["ranked_by"],
                       plots=meta["plots"], files=files)


def _write_top_level(out_dir: Path, index: versioning.LeaderboardIndex) -> None:
    """index.json, versions.html, and the front page: the latest version's board (rendered from
    that version's own records, so it never depends on which version was built last)."""
    atomic_write_text(out_dir / versioning.INDEX_FILE, index.dumps())
    atomic_write_text(out_dir / "versions.html",
                      page.render_index_page([(v.name, list(v.keys)) for v in index.versions]))
    latest = index.versions[-1].name
    meta = json.loads((out_dir / latest / VERSION_FILE).read_text(encoding="utf-8"))
    board = table.build_table(collect(out_dir / latest / RESULTS_FOLDER), meta.get("rank_by"))
    drawn = [plots.Plot.from_json(p) for p in meta.get("figures", [])]
    atomic_write_text(out_dir / "index.html", page.render_board(board, drawn, latest, prefix=f"{latest}/",
                                                                versions=[v.name for v in index.versions],
                                                                boards=index.boards))


def link_board(out_dir: str | os.PathLike, path: str, title: str) -> None:
    """List another leaderboard (folder `path`, relative to `out_dir`, ending in '/') on the front page
    of `out_dir` (index.json's `boards`; an existing entry for `path` gets the new title)."""
    out_dir = Path(out_dir)
    index = versioning.load_index(out_dir)
    if not index.versions:
        raise ResultError(out_dir / versioning.INDEX_FILE, "no leaderboard here to link from: build one first")
    problem = versioning.board_path_problem(path)
    if problem:
        raise ResultError(path, problem)
    boards = [(p, t) for p, t in index.boards if p != path] + [(path, title)]
    _write_top_level(out_dir, versioning.LeaderboardIndex(index.versions, sorted(boards)))


def build_leaderboard(results_dir: str | os.PathLike, out_dir: str | os.PathLike,
                      rank_by: str | None = None) -> BuildReport:
    """Validate the records under `results_dir` and build (or rebuild) their version in `out_dir`;
    `rank_by` ranks every site by that metric instead of ce_loss_recovered (the specs' priority)."""
    out_dir = Path(out_dir)
    collection = collect(results_dir)  # raises before anything is written
    if rank_by is not None:
        table.check_rank_by(table.build_table(collection).columns, rank_by)
    if out_dir.exists() and not out_dir.is_dir():
        raise ResultError(out_dir, "leaderboard output exists and is not a folder")
    index = versioning.load_index(out_dir)
    keys = versioning.key_set(collection.keys)
    name, created = versioning.choose_version(index, keys)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out_dir)
    staging = out_dir / f".staging.pid{os.getpid()}.{name}"
    old = out_dir / f".old.pid{os.getpid()}.{name}"
    target = out_dir / name
    if created and target.exists():
        raise ResultError(target, "exists but is not listed in index.json: refusing to overwrite it")
    try:
        report = render_version(collection, name, staging, rank_by)
        moved_away = target.exists()
        if moved_away:
            os.replace(target, old)
        try:
            os.replace(staging, target)
        except BaseException:
            if moved_away:  # put the previous folder back rather than lose it
                os.replace(old, target)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    _write_top_level(out_dir, versioning.with_version(index, name, keys))
    report.folder, report.created = target, created
    return report


def rebuild_all(out_dir: str | os.PathLike, into: str | os.PathLike | None = None) -> list[BuildReport]:
    """Rebuild every version of the leaderboard in `out_dir` from its own `results/` snapshot, in
    index order, into `into` (default: in place). Rebuilding into an empty folder reproduces the
    whole leaderboard, version names included."""
    out_dir = Path(out_dir)
    index_path = out_dir / versioning.INDEX_FILE
    if not index_path.exists():
        raise ResultError(index_path, "no leaderboard index to rebuild from")
    index = versioning.load_index(out_dir)
    target = Path(into) if into is not None else out_dir
    reports = []
    for entry in index.versions:
        version_file = out_dir / entry.name / VERSION_FILE
        meta = json.loads(version_file.read_text(encoding="utf-8")) if version_file.exists() else {}
        report = build_leaderboard(out_dir / entry.name / RESULTS_FOLDER, target, meta.get("rank_by"))
        if report.version != entry.name:
            raise ResultError(out_dir / entry.name, f"rebuilt as {report.version}: its records no longer have the "
                                                    "key set listed in index.json")
        reports.append(report)
    if index.boards and target != out_dir:  # the links to other boards are part of the front page
        for path, title in index.boards:
            link_board(target, path, title)
    return reports
