"""compare: side-by-side differences with paired/unpaired intervals, and the decoder dictionary match."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from record_factories import make_record_data, write_records
from sae_bench.cli import main
from sae_bench.analysis.compare import Z_95, compare_checkpoints, compare_records, dictionary_match, resolve_side
from sae_bench.core.errors import InputError
from sae_bench.fixtures import EVAL_CORPUS_PATH, SAES_DIR, TINY_MODEL_DIR
from sae_bench.records.results import validate

TRAINED = SAES_DIR / "sparsify" / "tiny-gemma4-8x"
UNTRAINED = SAES_DIR / "sparsify" / "untrained-8x"


def rec(ckpt="sae", task="reconstruction", metrics=None, **kw):
    return validate(make_record_data(ckpt, task, metrics or {"fvu": (0.2, 0.001)}, **kw))


def decoder(folder, hookpoint="layers.2"):
    return load_file(str(folder / hookpoint / "sae.safetensors"))["W_dec"]


def test_identical_records_have_zero_differences():
    records = [rec(metrics={"fvu": (0.2, 0.01), "cossim": (0.9, 0.01), "l2_ratio": (0.95, 0.01)},
                   artifacts={"per_sequence": {"cossim": [0.8, 0.9, 1.0]}}),
               rec(task="sparsity", metrics={"l0": (8.0, 0.0), "dead_fraction": None})]
    out = compare_records(records, [validate(dict(r.data)) for r in records])
    assert out.differing() == [] and not out.refused
    numeric = [r for r in out.rows if r.diff is not None]
    assert len(numeric) == 4 and all(r.diff == 0 and r.better == "same" for r in numeric)
    by_metric = {r.metric: r for r in out.rows}
    assert by_metric["cossim"].paired and by_metric["cossim"].ci_low == by_metric["cossim"].ci_high == 0
    assert not by_metric["fvu"].paired and by_metric["fvu"].se_diff == pytest.approx(math.sqrt(2) * 0.01)
    assert by_metric["dead_fraction"].diff is None and "not defined" in by_metric["dead_fraction"].reason


def test_paired_interval_matches_hand_computation():
    a_seq = [0.90, 0.80, 0.85, 0.95, 0.70]
    b_seq = [0.92, 0.83, 0.86, 0.99, 0.71]
    a = rec(metrics={"cossim": (0.84, 0.04)}, artifacts={"per_sequence": {"cossim": a_seq}})
    b = rec(metrics={"cossim": (0.862, 0.04)}, artifacts={"per_sequence": {"cossim": b_seq}})
    row = compare_records([a], [b]).rows[0]
    deltas = [0.02, 0.03, 0.01, 0.04, 0.01]
    mean = sum(deltas) / 5
    sd = math.sqrt(sum((d - mean) ** 2 for d in deltas) / 4)
    se = sd / math.sqrt(5)
    assert row.paired and row.n_pairs == 5
    assert row.diff == pytest.approx(0.022)
    assert row.se_diff == pytest.approx(se)
    assert (row.ci_low, row.ci_high) == pytest.approx((0.022 - Z_95 * se, 0.022 + Z_95 * se))
    assert row.better == "B"  # cossim: higher is better, interval above 0
    # the unpaired interval would contain 0 and call it a tie
    unpaired = compare_records([rec(metrics={"cossim": (0.84, 0.04)})], [rec(metrics={"cossim": (0.862, 0.04)})])
    assert not unpaired.rows[0].paired and unpaired.rows[0].better == "~"
    assert "unpaired" in unpaired.format() and "paired" in compare_records([a], [b]).format()


def test_paired_only_on_same_sequences():
    a = rec(metrics={"mse": (1.0, 0.1)}, artifacts={"per_sequence": {"mse": [1.0, 2.0, None, 0.5]}})
    b_short = rec(metrics={"mse": (1.1, 0.1)}, artifacts={"per_sequence": {"mse": [1.0, 2.0, 3.0]}})
    assert not compare_records([a], [b_short]).rows[0].paired
    b_null = rec(metrics={"mse": (1.1, 0.1)}, artifacts={"per_sequence": {"mse": [1.5, 2.0, 7.0, None]}})
    row = compare_records([a], [b_null]).rows[0]
    assert row.paired and row.n_pairs == 2  # sequences null on either side are left out
    assert row.se_diff == pytest.approx(0.25)  # deltas [0.5, 0]: sd 0.354 / sqrt(2)
    assert row.better == "~"  # 0.1 ± 0.49 contains 0


def test_refused_pairs_say_why():
    out = compare_records([rec(version=1)], [rec(version=2)])
    assert out.rows == [] and out.refused == ["layers.2: reconstruction: task version 1 vs 2"]
    assert "not compared: layers.2: reconstruction: task version 1 vs 2" in out.format()
    out = compare_records([rec(), rec(task="sparsity", metrics={"l0": 3.0})], [rec()])
    assert out.refused == ["layers.2: sparsity: only in A"] and len(out.rows) == 1


def test_better_side_follows_direction():
    out = compare_records([rec(metrics={"fvu": (0.3, 0.001), "explained_variance": (0.7, 0.001), "l0": (10, 0.1)})],
                          [rec(metrics={"fvu": (0.2, 0.001), "explained_variance": (0.8, 0.001), "l0": (20, 0.1)})])
    assert {r.metric: r.better for r in out.rows} == {"fvu": "B", "explained_variance": "B", "l0": "-"}
    out = compare_records([rec(metrics={"fvu": (0.2, 0.001)})], [rec(metrics={"fvu": (0.3, 0.001)})])
    assert out.rows[0].better == "A"


# -------------------------------------------------------------------------------- dictionary
def test_dictionary_match_closed_form_and_chunking():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-1.0, 0.0]])
    b = torch.tensor([[3.0, 0.0], [0.6, 0.8]])
    # max cosines: 1, 0.8, (0.6+0.8)/sqrt(2) = 0.98995, -0.6 (signed: the flipped direction does not match)
    expected = [1.0, 0.8, 1.4 / math.sqrt(2), -0.6]
    for chunk in (1, 2, 3, 100):
        m = dictionary_match(a, b, threshold=0.9, chunk_elements=chunk)
        assert m.share_matched == pytest.approx(0.5) and (m.n_a, m.n_b) == (4, 2)
        assert m.mean_max_cos == pytest.approx(sum(expected) / 4)
    with pytest.raises(InputError, match="input width"):
        dictionary_match(a, torch.zeros(3, 5))


def test_dictionary_match_of_fixture_decoders():
    w = decoder(TRAINED)
    same = dictionary_match(w, w.clone())
    assert same.share_matched == 1.0 and same.mean_max_cos == pytest.approx(1.0, abs=1e-6)
    permuted = w[torch.randperm(w.shape[0], generator=torch.Generator().manual_seed(0))] * 3.0  # rows reordered, rescaled
    assert dictionary_match(w, permuted, chunk_elements=4096).share_matched == 1.0
    untrained = dictionary_match(w, decoder(UNTRAINED))
    assert untrained.share_matched < 0.05 and untrained.mean_max_cos < 0.6
    assert dictionary_match(w, -w).share_matched == 0.0


# ------------------------------------------------------------------------------------ sides
def test_resolve_side(tmp_path):
    paths = write_records(tmp_path / "res", [make_record_data("sae", "reconstruction", {"fvu": 0.2})])
    assert len(resolve_side(str(paths[0])).records) == 1
    assert len(resolve_side(str(tmp_path / "res")).records) == 1
    side = resolve_side(f"{TRAINED}@layers.2")
    assert side.is_checkpoint and side.ref == str(TRAINED) and side.hookpoint == "layers.2"
    assert resolve_side(str(TRAINED)).is_checkpoint  # a folder with weights is a checkpoint even with cfg.json
    assert resolve_side("org/some-sae").is_checkpoint


def test_cli_compare_result_folders(tmp_path, capsys):
    a = tmp_path / "a"
    b = tmp_path / "b"
    write_records(a, [make_record_data("x", "reconstruction", {"fvu": (0.2, 0.001)})])
    write_records(b, [make_record_data("y", "reconstruction", {"fvu": (0.3, 0.001)})])
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "fvu" in out and "+0.1" in out and "result files were given" in out
    assert main(["compare", str(a), str(b), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["rows"][0]["diff"] == pytest.approx(0.1) and payload["rows"][0]["better"] == "A"
    assert main(["compare", f"{TRAINED}@layers.2", str(b)]) == 2  # a checkpoint needs --model/--corpus
    assert "--model" in capsys.readouterr().err
    assert main(["compare", str(a), str(b), "--threshold", "1.5"]) == 2
    assert "--threshold 1.5" in capsys.readouterr().err


def test_compare_checkpoint_with_itself(tmp_path):
    ref = f"{TRAINED}@layers.2"
    out = compare_checkpoints(ref, ref, model=str(TINY_MODEL_DIR), corpus=str(EVAL_CORPUS_PATH),
                              tasks=["reconstruction", "sparsity"], seq_len=32, max_documents=24,
                              results_dir=tmp_path / "results")
    assert {r.task for r in out.rows} == {"reconstruction", "sparsity"} and not out.refused
    assert out.differing() == []
    assert all(r.diff == 0 for r in out.rows if r.diff is not None)
    assert any(r.paired for r in out.rows)
    assert out.dictionary.share_matched == 1.0 and out.dictionary.mean_max_cos == pytest.approx(1.0, abs=1e-6)
    # B was evaluated separately (its own record), not a copy of A's
    assert len(list((tmp_path / "results").rglob("*.json"))) == 4


def test_cli_compare_trained_with_untrained(tmp_path, capsys):
    code = main(["compare", f"{TRAINED}@layers.2", f"{UNTRAINED}@layers.2", "--model", str(TINY_MODEL_DIR),
                 "--corpus", str(EVAL_CORPUS_PATH), "--tasks", "reconstruction", "--seq-len", "32",
                 "--max-documents", "24", "--quiet", "--json", "--results", str(tmp_path / "r")])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    fvu = next(r for r in payload["rows"] if r["metric"] == "fvu")
    assert fvu["diff"] > 0 and fvu["better"] == "A"
    assert payload["dictionary"]["share_matched"] < 0.05
