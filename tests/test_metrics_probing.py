"""Probing metrics against closed forms, plus the probe-set loader's errors."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sae_bench.core.errors import DataError
from sae_bench.metrics.probing import (
    auroc, confirmed_fractions, fraction_metric, label_check, permutation_p_value, pooled_accuracy,
    ProbeResult, select_by_mean_difference, sparse_probe,
)
from sae_bench.tasks.probing.probe_set import load_probe_set


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- AUROC closed forms
def test_auroc_perfect_reversed_and_ties():
    y = [1, 1, 1, 0, 0]
    assert auroc([5, 4, 3, 2, 1], y) == 1.0
    assert auroc([1, 2, 3, 4, 5], y) == 0.0
    assert auroc([7, 7, 7, 7, 7], y) == 0.5


def test_auroc_hand_computed_with_ties():
    # positives {2, 1}, negatives {1, 0}: pairs (2>1) 1, (2>0) 1, (1=1) 0.5, (1>0) 1 -> 3.5/4
    assert auroc([2, 1, 1, 0], [1, 1, 0, 0]) == pytest.approx(0.875)
    # positives {1}, negatives {1, 1, 2}: 0.5 + 0.5 + 0 -> 1/3
    assert auroc([1, 1, 1, 2], [1, 0, 0, 0]) == pytest.approx(1 / 3)


def test_auroc_columns_and_undefined():
    scores = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert np.allclose(auroc(scores, [1, 0]), [1.0, 0.0])
    assert auroc([1, 2], [1, 1]) is None
    with pytest.raises(ValueError):
        auroc([1, 2], [1, 2])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 3), st.booleans()), min_size=2, max_size=30))
def test_auroc_symmetry_and_pairwise_definition(pairs):
    s = np.array([p[0] for p in pairs], dtype=float)  # small integers: many ties
    y = np.array([int(p[1]) for p in pairs])
    if y.sum() in (0, len(y)):
        assert auroc(s, y) is None
        return
    a = auroc(s, y)
    assert a == pytest.approx(1.0 - auroc(-s, y))
    pos, neg = s[y == 1], s[y == 0]
    pairwise = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    assert a == pytest.approx(pairwise)


# ----------------------------------------------------------------------------- permutation p-value
def test_permutation_p_value_bounds_and_planted_signal():
    y = np.array([1] * 10 + [0] * 10)
    planted = y.astype(float) * 3.0
    p = permutation_p_value(planted, y, 199, gen())
    # perfect separation: only permutations that pick exactly the positives tie (prob 1/184756)
    assert 1 / 200 <= p <= 2 / 200
    flat = np.ones(20)  # every permutation ties -> p = 1
    assert permutation_p_value(flat, y, 50, gen()) == 1.0


def test_permutation_p_value_is_roughly_uniform_under_the_null():
    rng = np.random.default_rng(0)
    y = np.array([1] * 8 + [0] * 8)
    ps = [permutation_p_value(rng.normal(size=16), y, 99, gen(i)) for i in range(200)]
    assert 0.02 <= np.mean(np.array(ps) < 0.05) <= 0.10  # nominal 0.05


def test_label_check_confirms_planted_feature_and_rejects_random_one():
    rng = np.random.default_rng(1)
    cats = ["joy"] * 20 + ["code"] * 20
    y = np.array(([1] * 10 + [0] * 10) * 2)
    planted = np.where((np.array(cats) == "joy") & (y == 1), 2.0, 0.0)  # fires exactly on joy positives
    random = rng.exponential(size=40)
    acts = np.stack([planted, random, planted], axis=1)
    features = [(7, "joy feature", "joy"), (9, "code feature", "code"), (11, "absent", "poetry")]
    checks = label_check(acts, y, cats, features, n_permutations=200, generator=gen())
    assert checks[0].auroc == 1.0 and checks[0].p_value < 0.05 and checks[0].confirmed
    assert not checks[1].confirmed and checks[1].auroc < 0.9
    assert checks[2].confirmed is None and checks[2].auroc is None  # category has no probe texts
    fractions = confirmed_fractions(checks)
    assert fractions[""].value == 0.5 and fractions[""].stderr == pytest.approx(0.5 / np.sqrt(2))
    assert fractions["joy"].value == 1.0 and fractions["code"].value == 0.0
    assert fractions["poetry"].value is None and "poetry" in fractions["poetry"].reason


def test_fraction_metric_binomial_se():
    m = fraction_metric(3, 12, "x")
    assert m.value == 0.25 and m.stderr == pytest.approx(np.sqrt(0.25 * 0.75 / 12))
    assert fraction_metric(0, 0, "nothing").reason == "nothing"


# ----------------------------------------------------------------------------- sparse probing
def _planted_probe_data(n_latents=50, planted=17, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array([1, 0] * 20)
    x = rng.exponential(0.3, size=(40, n_latents)) * (rng.random((40, n_latents)) < 0.3)
    x[:, planted] = y * 2.0 + rng.normal(0, 0.05, size=40).clip(0)
    is_train = np.arange(40) < 28
    return x, y, is_train


def test_mean_difference_selection_and_ties():
    x, y, train = _planted_probe_data()
    assert select_by_mean_difference(x[train], y[train], 1).tolist() == [17]
    flat = np.zeros((4, 5))
    assert select_by_mean_difference(flat, [1, 0, 1, 0], 3).tolist() == [0, 1, 2]
    assert len(select_by_mean_difference(flat, [1, 0, 1, 0], 99)) == 5


def test_k_sparse_probe_picks_planted_latent_and_is_permutation_invariant():
    x, y, train = _planted_probe_data()
    result = sparse_probe(x, y, train, "c", 1, seed=0)
    assert result.selected == [17] and result.accuracy == 1.0 and result.n_test == 12
    perm = np.random.default_rng(3).permutation(x.shape[1])
    permuted = sparse_probe(x[:, perm], y, train, "c", 1, seed=0)
    assert perm[permuted.selected[0]] == 17 and permuted.accuracy == result.accuracy
    for k in (2, 5, 20):
        a = sparse_probe(x, y, train, "c", k, seed=0)
        b = sparse_probe(x[:, perm], y, train, "c", k, seed=0)
        assert sorted(perm[b.selected].tolist()) == sorted(a.selected) and a.accuracy == b.accuracy
    dense = sparse_probe(x[:, 15:20], y, train, "c", None, seed=0)  # few columns: no overfitting
    assert dense.selected is None and dense.accuracy == 1.0


def test_probe_on_noise_is_near_chance():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 10))
    y = np.array([1, 0] * 200)
    acc = sparse_probe(x, y, np.arange(400) < 200, "c", 5, seed=0).accuracy
    assert 0.38 <= acc <= 0.62


def test_pooled_accuracy_stratified_se():
    results = [ProbeResult("a", 1, 1.0, 10, [0]), ProbeResult("b", 1, 0.5, 10, [0])]
    m = pooled_accuracy(results)
    assert m.value == 0.75 and m.stderr == pytest.approx(np.sqrt(10 * 0.25) / 20)
    assert pooled_accuracy([]).value is None


# ----------------------------------------------------------------------------- probe set loader
def test_shipped_probe_set_covers_feature_map_categories():
    probe_set = load_probe_set()
    fixture_map = json.loads((__import__("sae_bench.fixtures", fromlist=["SAES_DIR"]).SAES_DIR
                              / "ernos" / "feature_map.json").read_text())
    used = {m["category"] for m in fixture_map["mappings"].values()}
    assert used <= set(probe_set.categories)
    for category in ("safety:powerseeking", "emotion:positivelow", "emotion:negativelow", "emotion:ambiguous"):
        assert category in probe_set.categories
    for count in probe_set.counts().values():
        assert count == {"train_pos": 10, "train_neg": 10, "test_pos": 6, "test_neg": 6}
    assert len(set(probe_set.texts)) == len(probe_set.texts)


@pytest.mark.parametrize("line, message", [
    ("not json", "not valid JSON"),
    ('{"text": "a", "category": "c", "label": 1}', "missing key(s) split"),
    ('{"text": "a", "category": "c", "label": 2, "split": "train"}', "'label' must be 1 or 0"),
    ('{"text": "a", "category": "c", "label": true, "split": "train"}', "'label' must be 1 or 0"),
    ('{"text": "", "category": "c", "label": 1, "split": "train"}', "'text' must be a non-empty string"),
    ('{"text": "a", "category": "c", "label": 1, "split": "dev"}', "'split' must be 'train' or 'test'"),
])
def test_probe_set_errors_name_file_and_line(tmp_path, line, message):
    good = '{"text": "ok", "category": "c", "label": 0, "split": "train"}'
    path = tmp_path / "probes.jsonl"
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(DataError) as info:
        load_probe_set(path)
    assert str(info.value).startswith(f"{path}:2: ") and message in str(info.value)
    assert "\n" not in str(info.value)


def test_probe_set_needs_both_classes_in_both_splits(tmp_path):
    path = tmp_path / "p.jsonl"
    rows = [{"text": f"t{i}", "category": "c", "label": i % 2, "split": "train"} for i in range(4)]
    rows.append({"text": "t9", "category": "c", "label": 1, "split": "test"})
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DataError, match="has no test_neg"):
        load_probe_set(path)
    with pytest.raises(DataError, match="not found"):
        load_probe_set(tmp_path / "missing.jsonl")


def test_probe_set_ships_as_package_data():
    """The wheel carries tasks/probing/data/*.jsonl via the recursive package-data patterns
    (checked once by building a wheel; here the cheap invariant that keeps it so)."""
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"]["sae_bench.tasks"] == "tasks"
    shipped = load_probe_set().path
    relative = Path(shipped).resolve().relative_to((root / "tasks").resolve()).as_posix()
    patterns = config["package-data"].get("*", []) + config["package-data"].get("sae_bench.tasks", [])
    assert any(fnmatch.fnmatch(relative, p) for p in patterns), (relative, patterns)
