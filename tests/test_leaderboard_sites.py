"""The leaderboard's sites, families and plots: rows are ranked only against rows at the same
hookpoint; families colour the plots; the Pareto front and rank labels; the depth plot's lines."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from record_factories import frontier_records, make_record_data, write_records  # noqa: E402

from sae_bench.leaderboard_build import build_leaderboard  # noqa: E402
from sae_bench.leaderboard_build.collect import collect  # noqa: E402
from sae_bench.leaderboard_build.plots import layer_of, pareto_front, releases, site_kind  # noqa: E402
from sae_bench.leaderboard_build.table import build_table  # noqa: E402


def test_pareto_front_keeps_only_undominated_points():
    points = [(8, 0.30), (16, 0.20), (16, 0.25), (32, 0.22), (64, 0.10), (4, 0.50)]
    assert pareto_front(points, lower_is_better=True) == [(4, 0.50), (8, 0.30), (16, 0.20), (64, 0.10)]
    assert pareto_front([(8, 0.9), (16, 0.8), (32, 0.95)], lower_is_better=False) == [(8, 0.9), (32, 0.95)]


def test_layers_and_site_kinds():
    assert [layer_of(h) for h in ("layers.2", "language_model.layers.17", "blocks.4.hook_resid_post",
                                  "pooled_final_norm")] == [2, 17, 4, None]
    assert site_kind("layers.3.mlp_out") == "mlp_out" and site_kind("layers.3") == ""


def _board(tmp_path, records):
    write_records(tmp_path / "results", records)
    return build_table(collect(tmp_path / "results"))


def test_rows_are_ranked_only_within_their_hookpoint(tmp_path):
    records = []
    for name, hp, ce in (("a", "layers.1", 0.99), ("b", "layers.1", 0.90), ("a", "layers.2", 0.80),
                         ("b", "layers.2", 0.85), ("c", "layers.2", 0.70)):
        records += frontier_records(name, l0=8.0, fvu=0.2, ce_loss_recovered=ce, hookpoint=hp)
    records.append(make_record_data("pooled", "reconstruction", {"fvu": 0.3}, hookpoint="pooled_final_norm"))
    records.append(make_record_data("pooled2", "reconstruction", {"fvu": 0.1}, hookpoint="pooled_final_norm"))
    board = _board(tmp_path, records)
    ranks = {(r.checkpoint, r.hookpoint): r.rank for r in board.rows}
    assert ranks == {("a", "layers.1"): 1, ("b", "layers.1"): 2, ("b", "layers.2"): 1, ("a", "layers.2"): 2,
                     ("c", "layers.2"): 3, ("pooled2", "pooled_final_norm"): 1, ("pooled", "pooled_final_norm"): 2}
    assert [s.hookpoint for s in board.sites] == ["layers.2", "layers.1", "pooled_final_norm"]  # most rows first
    by_site = {s.hookpoint: s.ranked_by.name for s in board.sites}
    assert by_site == {"layers.2": "spliced_loss/ce_loss_recovered", "layers.1": "spliced_loss/ce_loss_recovered",
                       "pooled_final_norm": "reconstruction/fvu"}  # no spliced loss there: the next preference


def test_depth_lines_per_release_and_site_kind(tmp_path):
    records = []
    for layer in (1, 2, 3):
        records += frontier_records("release", l0=8.0, fvu=0.1 * layer, ce_loss_recovered=0.9,
                                    hookpoint=f"layers.{layer}")
        records += frontier_records("release", l0=8.0, fvu=0.1, ce_loss_recovered=0.9,
                                    hookpoint=f"layers.{layer}.mlp_out")
    records += frontier_records("single", l0=8.0, fvu=0.1, ce_loss_recovered=0.9, hookpoint="layers.1")
    lines = releases(_board(tmp_path, records))
    assert {k: [r.hookpoint for r in v] for k, v in lines.items()} == {
        "release": ["layers.1", "layers.2", "layers.3"],
        "release · mlp_out": ["layers.1.mlp_out", "layers.2.mlp_out", "layers.3.mlp_out"]}


def test_page_tables_plots_and_labels(tmp_path):
    records = []
    # Six rows on top of each other at one L0: labels must find free spots or say they did not.
    for i in range(6):
        records += frontier_records(f"ck{i}", l0=16.0, fvu=0.2 + 0.001 * i, ce_loss_recovered=0.9 - 0.001 * i)
    records += frontier_records("far", l0=64.0, fvu=0.05, ce_loss_recovered=0.97, fmt="saelens")
    write_records(tmp_path / "results", records)
    report = build_leaderboard(tmp_path / "results", tmp_path / "board")
    svg = (tmp_path / "board" / "v1" / "plots" / "frontier-1-layers.2.svg").read_text()
    assert '<g id="legend_1">' in svg and "Pareto front" in svg and "saelens · topk" in svg and "sparsify · topk" in svg
    labels = re.findall(r"font-size: 8px[^>]*>([0-9,]+)(?: ×\d+)?</text>", svg)
    figures = {f["filename"]: f for f in json.loads(
        (tmp_path / "board" / "v1" / "version.json").read_text())["figures"]}
    frontier = figures["plots/frontier-1-layers.2.svg"]
    shown = {int(x) for label in labels for x in label.split(",")}
    assert shown | set(frontier["unlabelled"]) == set(range(1, 8))  # every rank labelled, or said to be missing
    page = (tmp_path / "board" / "v1" / "index.html").read_text()
    board = page.split('<table class="board"')[1].split("</table>")[0]
    head = board.split("</thead>")[0]
    assert head.index('class="rankcol"') < head.index("fvu")  # the ranking column leads
    assert "sparsify · topk (6)" in board and "saelens · topk (1)" in board  # grouped by family
    assert report.rows == 7
