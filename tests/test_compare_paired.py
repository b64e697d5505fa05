"""Paired comparisons from per-sequence ratio terms, the compare printout and HTML report, and the
tidy results.parquet of a run (it round-trips to the records)."""

from __future__ import annotations

import json
import math
import random
import re

import pandas as pd
import pytest

from sae_bench.cli import main
from sae_bench.analysis.compare import compare_records
from sae_bench.fixtures import EVAL_CORPUS_PATH, SAES_DIR, TINY_MODEL_DIR
from sae_bench.analysis.pairing import paired_terms_se
from sae_bench.records.results import iter_records
from sae_bench.records.results_table import COLUMNS, FILE_NAME

TRAINED = SAES_DIR / "sparsify" / "tiny-gemma4-8x"
UNTRAINED = SAES_DIR / "sparsify" / "untrained-8x"
TASKS = ["reconstruction", "sparsity", "spliced_loss"]
WHOLE_CORPUS = {"dead_fraction", "dense_fraction"}  # fractions of latents: no per-sequence terms


def test_paired_se_of_plain_means_is_the_sd_of_the_differences():
    rng = random.Random(0)
    a = [rng.gauss(1.0, 0.3) for _ in range(50)]
    b = [x + rng.gauss(0.2, 0.05) for x in a]
    ones = [1.0] * 50
    deltas = [y - x for x, y in zip(a, b)]
    mean = sum(deltas) / 50
    expected = math.sqrt(sum((d - mean) ** 2 for d in deltas) / 49) / math.sqrt(50)
    assert paired_terms_se((a, ones), (b, ones)) == pytest.approx(expected, rel=1e-12)


def test_paired_se_of_ratios_cancels_what_both_sides_share():
    rng = random.Random(1)
    den = [rng.uniform(10, 60) for _ in range(40)]
    num = [d * rng.uniform(0.1, 0.3) for d in den]
    assert paired_terms_se((num, den), (num, den)) == 0.0
    # B's numerators are A's plus a constant share of the denominator: the ratio moves by exactly
    # 0.05 on every sequence, so the paired difference has no noise at all.
    shifted = [a + 0.05 * d for a, d in zip(num, den)]
    assert paired_terms_se((num, den), (shifted, den)) == pytest.approx(0.0, abs=1e-15)
    # Against one side whose contributions vanish (a_i = R b_i), the paired se is the other's own se.
    flat = [0.4 * d for d in den]
    ratio = sum(num) / sum(den)
    own = math.sqrt(sum((x - ratio * d) ** 2 for x, d in zip(num, den)) / (40 * 39)) / (sum(den) / 40)
    assert paired_terms_se((num, den), (flat, den)) == pytest.approx(own, rel=1e-12)
    assert paired_terms_se((num[:1], den[:1]), (num[:1], den[:1])) is None  # one sequence: no se


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two checkpoints evaluated by one run on the same tokens, through the CLI."""
    results = tmp_path_factory.mktemp("paired") / "results"
    argv = ["run", "--quiet", "--model", str(TINY_MODEL_DIR), "--corpus", str(EVAL_CORPUS_PATH),
            "--checkpoint", f"{TRAINED}@layers.2", "--checkpoint", f"{UNTRAINED}@layers.2",
            "--max-documents", "16", "--seq-len", "32", "--tasks", ",".join(TASKS), "--results", str(results),
            "--no-cache"]
    assert main(argv) == 0
    return results


def _side(results, name):
    return [r for r in iter_records(results) if r.checkpoint_id.endswith(name)]


def test_two_checkpoints_on_the_same_tokens_have_every_metric_paired(two_runs):
    out = compare_records(_side(two_runs, "tiny-gemma4-8x"), _side(two_runs, "untrained-8x"))
    assert {r.task for r in out.rows} == set(TASKS) and not out.refused
    unpaired = {r.metric: r.reason for r in out.rows if not r.paired}
    assert unpaired == {m: "no per-sequence terms" for m in WHOLE_CORPUS}
    paired = {r.metric: r for r in out.rows if r.paired}
    for metric in ("fvu", "explained_variance", "cossim", "mse", "l0", "l1", "ce_loss_recovered", "kl_score",
                   "delta_ce", "kl_spliced"):
        assert paired[metric].n_pairs == 16, metric
    # ce_clean is the model's, not the SAE's: identical on both sides, paired with a zero interval
    assert paired["ce_clean"].diff == 0 and paired["ce_clean"].se_diff == 0 and paired["ce_clean"].better == "same"
    assert paired["fvu"].better == "A" and paired["ce_loss_recovered"].better == "A"
    # explained_variance = 1 − fvu: its paired difference has the same standard error
    assert paired["explained_variance"].se_diff == pytest.approx(paired["fvu"].se_diff, rel=1e-9)


def test_compare_printout_labels_every_column_and_explains_its_symbols(two_runs, capsys):
    a, b = (str(p.parent) for p in (next(two_runs.rglob("reconstruction.json")),
                                    sorted(two_runs.rglob("reconstruction.json"))[-1]))
    assert main(["compare", a, b, "--wide"]) == 0
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if line.startswith("hookpoint"))
    assert re.split(r"\s{2,}", header.strip()) == ["hookpoint", "task", "metric", "A", "B", "B-A", "95% CI of B-A",
                                                   "pairing", "better"]
    assert "paired n=16" in text and "unpaired: no per-sequence terms" in text
    for symbol in ("~ the interval contains 0", "same: identical values", "- the metric has no better direction"):
        assert symbol in text
    # a folder holding both checkpoints against itself: a checkpoint column
    assert main(["compare", str(two_runs), str(two_runs), "--wide"]) == 0
    text = capsys.readouterr().out
    assert next(line for line in text.splitlines() if line.startswith("checkpoint")).split()[:2] == [
        "checkpoint", "hookpoint"]


def test_compare_printout_fits_100_columns_with_a_table_per_task(two_runs, capsys):
    a, b = (str(p.parent) for p in (next(two_runs.rglob("reconstruction.json")),
                                    sorted(two_runs.rglob("reconstruction.json"))[-1]))
    assert main(["compare", a, b]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines[2:]) <= 100  # A:/B: name the folders the user gave, as given
    header = next(line for line in lines if line.startswith("metric"))
    assert re.split(r"\s{2,}", header.strip()) == ["metric", "A", "B", "B-A", "95% CI", "pairing", "better"]
    assert any(line.endswith("· reconstruction") for line in lines)  # a heading per hookpoint x task
    assert "  unpaired (" in "\n".join(lines) and any("paired n=16" in line for line in lines)
    assert any(line.startswith("A, B: values (--wide adds standard errors)") for line in lines)


def test_compare_html_report_draws_per_sequence_differences(two_runs, tmp_path, capsys):
    a, b = sorted(str(p.parent) for p in two_runs.rglob("reconstruction.json"))
    report = tmp_path / "compare.html"
    assert main(["compare", a, b, "--html", str(report)]) == 0
    assert f"report: {report}" in capsys.readouterr().out
    page = report.read_text()
    assert page.count("<svg") == len(TASKS)  # one figure of per-sequence differences per task
    same = re.findall(r"Identical on every sequence: ([^.<]*)\.", page)  # the model's numbers, not the SAE's
    assert {"ce_clean", "ce_zero", "kl_zero"} <= set(", ".join(same).split(", "))
    assert page.count('id="legend_') >= 10  # a legend in every panel
    assert "B−A per sequence (16)" in page and "<script" not in page


def test_results_parquet_round_trips_to_the_records(two_runs):
    frame = pd.read_parquet(two_runs / FILE_NAME)
    assert list(frame.columns) == [name for name, _ in COLUMNS]
    records = iter_records(two_runs)
    assert len(frame) == sum(len(r.metrics) for r in records)
    for record in records:
        rows = frame[(frame.checkpoint == record.checkpoint_id) & (frame.hookpoint == record.hookpoint)
                     & (frame.task == record.task_name)].set_index("metric")
        assert set(rows.index) == set(record.metrics)
        for metric, entry in record.metrics.items():
            row = rows.loc[metric]
            assert row.value == entry["value"] and (pd.isna(row.stderr) if entry.get("stderr") is None
                                                    else row.stderr == entry["stderr"])
            assert (row.task_version, row.config_hash, row.corpus_hash, row.checkpoint_sha256) == (
                record.task_version, record.config_hash, record.corpus_hash, record.data["checkpoint"]["sha256"])
            assert row.n == record.data["counts"]["tokens"]
    pivot = frame.pivot_table(index=["checkpoint", "hookpoint"], columns="metric", values="value")
    assert pivot.loc[(next(r.checkpoint_id for r in records if r.checkpoint_id.endswith("untrained-8x")),
                      "layers.2"), "fvu"] > 0.3
    assert json.loads(json.dumps(frame.dtypes.astype(str).to_dict()))["value"] == "float64"
