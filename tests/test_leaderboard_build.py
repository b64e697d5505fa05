"""Leaderboard build: grouping by comparability key, ranking, versions, byte-identical rebuilds,
bad input, escaping of untrusted text. Synthetic records from tests/record_factories.py."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from record_factories import frontier_records, make_record_data, write_records  # noqa: E402

from sae_bench import cli  # noqa: E402
from sae_bench.core.errors import EXIT_BAD_INPUT, ResultError  # noqa: E402
from sae_bench.records.results import record_path  # noqa: E402
from sae_bench.leaderboard_build import build_leaderboard, rebuild_all  # noqa: E402
from sae_bench.leaderboard_build.collect import collect  # noqa: E402
from sae_bench.leaderboard_build.table import build_table, group_labels  # noqa: E402

SCRIPT_ID = "<script>alert(1)</script>"


def tree(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under `folder`."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def three_checkpoints(results: Path, **common) -> None:
    records = []
    for name, l0, fvu, ce in (("alpha", 8.0, 0.30, 0.80), ("beta", 16.0, 0.20, 0.90), ("gamma", 32.0, 0.10, 0.95)):
        records += frontier_records(name, l0=l0, fvu=fvu, ce_loss_recovered=ce, **common)
    write_records(results, records)


@pytest.fixture
def results(tmp_path) -> Path:
    folder = tmp_path / "results"
    three_checkpoints(folder)
    return folder


def test_build_writes_every_file_and_ranks_by_ce_loss_recovered(results, tmp_path):
    out = tmp_path / "board"
    report = build_leaderboard(results, out)
    assert (report.version, report.created, report.rows, report.records) == ("v1", True, 3, 9)
    files = set(tree(out / "v1"))
    assert {"rows.parquet", "rows.csv", "table.md", "index.html", "version.json",
            "groups.html", "plots/frontier-1-layers.2.svg",
            record_path(Path("results"), "alpha", "layers.2", "reconstruction").as_posix()} <= files
    assert sum(f.startswith("checkpoints/") and f.endswith(".html") for f in files) == 3  # a page per row
    index = json.loads((out / "index.json").read_text())
    assert [v["name"] for v in index["versions"]] == ["v1"] and len(index["versions"][0]["keys"]) == 3
    frame = pq.read_table(out / "v1" / "rows.parquet").to_pandas()
    assert list(frame["checkpoint"]) == ["gamma", "beta", "alpha"]  # higher ce_loss_recovered first
    assert list(frame["rank"]) == [1, 2, 3]
    assert list(frame["reconstruction/fvu"]) == [0.10, 0.20, 0.30]
    assert frame["reconstruction/fvu_stderr"].tolist() == pytest.approx([0.001, 0.002, 0.003])
    meta = json.loads((out / "v1" / "version.json").read_text())
    assert meta["ranked_by"] == "spliced_loss/ce_loss_recovered" and meta["higher_is_better"] is True
    assert meta["files"]["rows.csv"] == hashlib.sha256((out / "v1" / "rows.csv").read_bytes()).hexdigest()


def test_parquet_has_fixed_schema_and_no_pandas_metadata(results, tmp_path):
    build_leaderboard(results, tmp_path / "board")
    arrow = pq.read_table(tmp_path / "board" / "v1" / "rows.parquet")
    assert b"pandas" not in (arrow.schema.metadata or {})
    assert str(arrow.schema.field("rank").type) == "int64"
    assert str(arrow.schema.field("sparsity/l0").type) == "double"
    assert arrow.column_names[:4] == ["rank", "row", "checkpoint", "hookpoint"]


def test_ranking_ties_missing_values_and_fvu_fallback(tmp_path):
    folder = tmp_path / "results"
    write_records(folder, [
        *frontier_records("a", l0=4.0, fvu=0.2), *frontier_records("b", l0=8.0, fvu=0.1),
        *frontier_records("c", l0=9.0, fvu=0.2),
        make_record_data("d", "sparsity", {"l0": 3.0}),  # no fvu: unranked, last
    ])
    board = build_table(collect(folder))
    assert board.ranked_by.name == "reconstruction/fvu" and board.higher_is_better is False
    assert [(r.checkpoint, r.rank) for r in board.rows] == [("b", 1), ("a", 2), ("c", 2), ("d", None)]


def test_a_task_with_two_comparability_keys_gets_separate_columns(tmp_path):
    folder = tmp_path / "results"
    write_records(folder, [
        make_record_data("a", "reconstruction", {"fvu": 0.2}, config_hash="aaaaaaaaaaaaaaaa"),
        make_record_data("b", "reconstruction", {"fvu": 0.1}, config_hash="bbbbbbbbbbbbbbbb"),
        make_record_data("c", "reconstruction", {"fvu": 0.3}, config_hash="bbbbbbbbbbbbbbbb", corpus_hash="other000"),
    ])
    collection = collect(folder)
    assert len(collection.keys) == 3
    board = build_table(collection)
    names = [c.name for c in board.columns]
    assert len(names) == 3 and all(n.startswith("reconstruction@v1.") and n.endswith("/fvu") for n in names)
    # Every column holds the numbers of exactly one key: no row has two values, no column mixes keys.
    for column in board.columns:
        keys = {r.record_for(column.key).comparability_key() for r in board.rows if r.entry(column) is not None}
        assert len(keys) == 1
    # Ranked within the first key only; the other rows are unranked.
    assert sum(r.rank is not None for r in board.rows) == 1
    assert group_labels(collection.keys)[collection.keys[0]] != group_labels(collection.keys)[collection.keys[1]]


def test_rebuild_is_byte_identical_in_place_in_a_fresh_folder_and_from_the_snapshot(results, tmp_path):
    out = tmp_path / "board"
    build_leaderboard(results, out)
    first = tree(out)
    again = build_leaderboard(results, out)
    assert again.created is False and tree(out) == first
    build_leaderboard(results, tmp_path / "fresh")
    assert tree(tmp_path / "fresh") == first
    reports = rebuild_all(out, into=tmp_path / "replayed")
    assert [r.version for r in reports] == ["v1"] and tree(tmp_path / "replayed") == first
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_task_version_bump_opens_a_new_version_and_leaves_the_old_one_untouched(results, tmp_path):
    out = tmp_path / "board"
    build_leaderboard(results, out)
    v1 = tree(out / "v1")
    bumped = tmp_path / "results_v2"
    records = []
    for name, l0, fvu, ce in (("alpha", 8.0, 0.5, 0.7), ("delta", 64.0, 0.05, 0.97)):
        records += frontier_records(name, l0=l0, fvu=fvu, ce_loss_recovered=ce)
    for data in records:
        if data["task"]["name"] == "reconstruction":
            data["task"]["version"], data["task"]["config_hash"] = "2", "f" * 16
    write_records(bumped, records)
    report = build_leaderboard(bumped, out)
    assert (report.version, report.created) == ("v2", True)
    assert tree(out / "v1") == v1  # byte for byte
    index = json.loads((out / "index.json").read_text())
    assert [v["name"] for v in index["versions"]] == ["v1", "v2"]
    assert {"task": "reconstruction", "task_version": "2", "config_hash": "f" * 16,
            "corpus_hash": "c0ffee00c0ffee00"} in index["versions"][1]["keys"]
    # The first key set again: v1 is rebuilt in place (identical bytes), v2 is not touched.
    v2 = tree(out / "v2")
    assert build_leaderboard(results, out).version == "v1"
    assert tree(out / "v1") == v1 and tree(out / "v2") == v2
    top = (out / "index.html").read_text()
    assert 'href="v1/index.html"' in top and 'href="v2/index.html"' in top
    # The whole leaderboard replays from the records stored in it.
    rebuild_all(out, into=tmp_path / "replayed")
    assert tree(tmp_path / "replayed") == tree(out)


@pytest.mark.parametrize("breakage", ["json", "nan", "missing_key", "null_without_reason"])
def test_invalid_record_is_a_one_line_error_naming_the_file_and_writes_nothing(results, tmp_path, capsys, breakage):
    bad = record_path(results, "alpha", "layers.2", "reconstruction")
    text = bad.read_text()
    if breakage == "json":
        bad.write_text(text[:-20])
    elif breakage == "nan":
        bad.write_text(text.replace('"value": 0.3', '"value": NaN'))
    elif breakage == "missing_key":
        data = json.loads(text)
        del data["corpus"]
        bad.write_text(json.dumps(data))
    else:
        data = json.loads(text)
        data["metrics"]["fvu"] = {"value": None, "stderr": None}
        bad.write_text(json.dumps(data))
    out = tmp_path / "board"
    with pytest.raises(ResultError) as caught:
        build_leaderboard(results, out)
    assert str(bad) in str(caught.value) and "\n" not in str(caught.value)
    assert not out.exists()
    code = cli.main(["leaderboard", "build", "--results", str(results), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and err.count("\n") == 1 and str(bad) in err
    assert not out.exists()


def test_invalid_record_leaves_an_existing_leaderboard_unchanged(results, tmp_path):
    out = tmp_path / "board"
    build_leaderboard(results, out)
    before = tree(out)
    (results / "broken.json").write_text("{")
    with pytest.raises(ResultError, match="broken.json"):
        build_leaderboard(results, out)
    assert tree(out) == before


def test_rows_must_describe_the_same_weights_and_cells_must_be_unique(tmp_path):
    folder = tmp_path / "results"
    write_records(folder, [make_record_data("a", "reconstruction", {"fvu": 0.2}, sha256="1" * 64),
                           make_record_data("a", "sparsity", {"l0": 4.0}, sha256="2" * 64)])
    with pytest.raises(ResultError, match="checkpoint sha256"):
        collect(folder)
    dup = tmp_path / "dup"
    write_records(dup / "one", [make_record_data("a", "reconstruction", {"fvu": 0.2})])
    write_records(dup / "two", [make_record_data("a", "reconstruction", {"fvu": 0.3})])
    with pytest.raises(ResultError, match="second record"):
        collect(dup)
    clash = tmp_path / "clash"
    write_records(clash / "one", [make_record_data("a/b", "reconstruction", {"fvu": 0.2})])
    write_records(clash / "two", [make_record_data("a:b", "reconstruction", {"fvu": 0.3})])
    assert len(collect(clash).records) == 2  # names whose slugs coincide no longer share a stored path
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultError, match="no result records"):
        collect(tmp_path / "empty")


def test_untrusted_text_is_escaped_everywhere(tmp_path):
    folder = tmp_path / "results"
    evil_task = "recon<b>struction"
    records = frontier_records(SCRIPT_ID, l0=4.0, fvu=0.2, ce_loss_recovered=0.9, hookpoint="layers.<i>2</i>",
                               model_id="m<script>x()</script>")
    records += frontier_records("plain", l0=8.0, fvu=0.1, ce_loss_recovered=0.95)
    records.append(make_record_data("plain", evil_task, {"fvu|<svg onload=alert(1)>": 0.5},
                                    notes=["<img src=x onerror=alert(1)>"],
                                    artifacts={"contexts": ["</pre><script>alert(2)</script>"],
                                               "labels": {"7": "<a href=javascript:alert(3)>x</a>"}}))
    write_records(folder, records)
    out = tmp_path / "board"
    build_leaderboard(folder, out)
    page = (out / "v1" / "index.html").read_text()
    markdown = (out / "v1" / "table.md").read_text()
    for raw in (SCRIPT_ID, "<script>x()</script>", "<i>2</i>", "<b>struction", "<svg onload", "<img src=x",
                "<script>alert(2)", "<a href=javascript"):
        assert raw not in page and raw not in markdown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown
    assert page.count("<script") == 1  # ours only
    plain_page = next((out / "v1" / "checkpoints").glob("*-plain-*.html")).read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in plain_page  # the record's note, escaped
    # Markdown: a pipe in a name cannot open a new cell; every table line has the header's cell count.
    main_table = markdown.split("## All metrics")[1].split("## Comparability")[0]
    lines = [line for line in main_table.splitlines() if line.startswith("| ")]
    assert len(lines) == 3 and "\\|&lt;svg" in lines[0]
    assert len({line.replace("\\|", "").count(" | ") for line in lines}) == 1
    for svg in (out / "v1" / "plots").glob("*.svg"):
        assert "<script" not in svg.read_text()
    top = (out / "versions.html").read_text()
    assert "<b>struction" not in top and "recon&lt;b&gt;struction" in top
    for other in [out / "index.html", out / "v1" / "groups.html", *(out / "v1" / "checkpoints").glob("*.html")]:
        text = other.read_text()
        for raw in (SCRIPT_ID, "<script>x()</script>", "<i>2</i>", "<b>struction", "<svg onload", "<img src=x"):
            assert raw not in text, (other, raw)


def test_no_frontier_data_means_no_plots_and_a_note(tmp_path):
    folder = tmp_path / "results"
    write_records(folder, [make_record_data("a", "reconstruction", {"fvu": 0.2})])
    report = build_leaderboard(folder, tmp_path / "board")
    assert not any("frontier" in p for p in report.plots)
    assert "frontier" not in (tmp_path / "board" / "v1" / "index.html").read_text()


def test_cli_build_and_rebuild(results, tmp_path, capsys):
    out = tmp_path / "board"
    assert cli.main(["leaderboard", "build", "--results", str(results), "--out", str(out)]) == 0
    assert "leaderboard v1 (new version): 3 rows from 9 records" in capsys.readouterr().out
    before = tree(out)
    assert cli.main(["leaderboard", "rebuild", "--out", str(out)]) == 0
    assert "v1 (rebuilt in place)" in capsys.readouterr().out and tree(out) == before
