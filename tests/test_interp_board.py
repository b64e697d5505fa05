"""Absorption and SAEBench-comparable sparse probing on the leaderboard: their specs rank, gate and
draw (absorption against L0), `--rank-by` chooses the ranking metric, and each checkpoint page
has the per-letter absorption and per-dataset probing sections."""

import json

import pytest

from record_factories import frontier_records, make_record_data, write_records
from sae_bench.core.errors import ResultError
from sae_bench.leaderboard_build.api import build_leaderboard
from sae_bench.core import registry

ROWS = {"ckpt/a": (8.0, 0.30, 0.90, 0.50, 0.80), "ckpt/b": (16.0, 0.20, 0.95, 0.10, 0.85),
        "ckpt/c": (32.0, 0.10, 0.97, 0.30, 0.70)}  # l0, fvu, ce_loss_recovered, absorption, sae_top_1


def _records():
    out = []
    for ckpt, (l0, fvu, ce, absorption, top1) in ROWS.items():
        out += frontier_records(ckpt, l0=l0, fvu=fvu, ce_loss_recovered=ce)
        out.append(make_record_data(ckpt, "absorption", {
            "mean_absorption_fraction": (absorption, 0.01), "mean_absorption_fraction/a": absorption,
            "mean_full_absorption": (absorption / 2, 0.01), "mean_num_split_features": (1.5, 0.1)},
            artifacts={"per_letter": {"a": {"probe_f1": 0.9, "probe_true_positives": 40, "main_latents": [3, 7],
                                            "absorption_fraction": absorption, "full_absorption_rate": absorption / 2}}}))
        out.append(make_record_data(ckpt, "sparse_probing", {
            "sae_top_1_test_accuracy": (top1, 0.01), "sae_top_1_test_accuracy/ag_news": top1},
            artifacts={"protocol": "saebench-0.6.0-sparse-probing", "data_dir": "fixtures/sparse_probing",
                       "per_dataset": {"ag_news": {"sae_top_1_test_accuracy": {"mean": top1, "per_class": {"0": top1}}}}}))
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interp_results")
    write_records(folder, _records())
    return folder


def test_specs_declare_directions_and_gate_defaults():
    registry.discover()
    absorption, probing = registry.get_task("absorption"), registry.get_task("sparse_probing")
    for task, metric, direction in ((absorption, "mean_absorption_fraction", "lower"),
                                    (absorption, "mean_full_absorption/q", "lower"),
                                    (absorption, "mean_num_split_features", "lower"),
                                    (probing, "sae_top_1_test_accuracy/ag_news", "higher"),
                                    (probing, "sae_top_20_test_accuracy", "higher"),
                                    (probing, "llm_top_5_test_accuracy/europarl", "none")):
        spec = task.metric_spec(metric)
        assert spec is not None and spec.direction == direction, metric
        assert direction == "none" or spec.min_effect > 0


def test_default_ranking_stays_ce_loss_recovered_and_rank_by_chooses(results, tmp_path):
    default = build_leaderboard(results, tmp_path / "default")
    assert default.ranked_by.endswith("ce_loss_recovered")
    chosen = build_leaderboard(results, tmp_path / "absorption", rank_by="mean_absorption_fraction")
    assert chosen.ranked_by == "absorption/mean_absorption_fraction"
    rows = (tmp_path / "absorption" / "v1" / "rows.csv").read_text().splitlines()
    header = rows[0].split(",")
    ranked = sorted((int(r.split(",")[header.index("rank")]), r.split(",")[header.index("checkpoint")]) for r in rows[1:])
    assert [c for _, c in ranked] == ["ckpt/b", "ckpt/c", "ckpt/a"]  # lower absorption is better
    assert json.loads((tmp_path / "absorption" / "v1" / "version.json").read_text())["rank_by"] == \
        "mean_absorption_fraction"
    by_probe = build_leaderboard(results, tmp_path / "probe", rank_by="sae_top_1_test_accuracy")
    assert by_probe.ranked_by == "sparse_probing/sae_top_1_test_accuracy"


def test_rank_by_refuses_unknown_or_directionless_metrics(results, tmp_path):
    with pytest.raises(ResultError, match="no metric"):
        build_leaderboard(results, tmp_path / "x", rank_by="nope")
    assert not (tmp_path / "x").exists()


def test_pages_and_frontier(results, tmp_path):
    build_leaderboard(results, tmp_path / "lb")
    version = tmp_path / "lb" / "v1"
    meta = json.loads((version / "version.json").read_text())
    titles = " ".join(f["title"] for f in meta["figures"] if f["kind"] == "frontier")
    assert "mean_absorption_fraction against L0" in titles and "sae_top_1_test_accuracy against L0" in titles
    page = next((version / "checkpoints").glob("*ckpt_a*.html"), None) or next((version / "checkpoints").glob("*.html"))
    html = page.read_text()
    assert "Feature absorption per letter" in html and "Sparse probing per dataset" in html
    assert "3, 7" in html and "saebench-0.6.0-sparse-probing" in html
    board = (version / "index.html").read_text()
    assert "mean_absorption_fraction" in board and "sae_top_1_test_accuracy" in board
