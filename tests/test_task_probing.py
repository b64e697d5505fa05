"""The probing task end to end on the fixture model: ErnOS (pooled, with feature map) and
sparsify (token hookpoint, no map), a planted oracle latent, memoisation and input errors."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from sae_bench.core.context import EvalContext, TokenizedCorpus
from sae_bench.core.errors import DataError
from sae_bench.fixtures import SAES_DIR, TINY_MODEL_DIR
from sae_bench.tasks.probing.probe_set import load_probe_set
from sae_bench.checkpoints.sae import SparseAutoencoder

ERNOS = SAES_DIR / "ernos" / "tiny_sae.safetensors"
SPARSIFY = SAES_DIR / "sparsify" / "tiny-gemma4-8x"


@pytest.fixture(scope="module")
def task_cls():
    from sae_bench.core import registry

    registry.discover()
    return registry.get_task("probing")


def _empty_corpus():  # the probing task tokenises its own texts
    z = torch.zeros(0, 2, dtype=torch.int64)
    return TokenizedCorpus("none", "none", "none", z, z, z.bool(), 2)


def _ctx(model, hookpoint, **kwargs):
    return EvalContext(model=model, hookpoint=hookpoint, corpus=_empty_corpus(), activations=None,
                       show_progress=False, **kwargs)


def _load(ref, hookpoint=None):
    from sae_bench import load_checkpoint

    return load_checkpoint(str(ref), hookpoint=hookpoint)


@pytest.fixture(scope="module")
def pooled_ctx(model):
    return _ctx(model, "pooled_final_norm")


def test_ernos_with_feature_map(task_cls, pooled_ctx):
    sae = _load(ERNOS)
    assert sae.feature_map is not None
    out = task_cls(n_permutations=50).run(sae, pooled_ctx)
    m = out.metrics
    map_categories = {e.category for e in sae.feature_map.entries}
    for category in map_categories:
        metric = m[f"label_confirmed_fraction/{category}"]
        assert 0.0 <= metric.value <= 1.0 and metric.stderr is not None
    assert 0.0 <= m["label_confirmed_fraction"].value <= 1.0
    assert 0.0 <= m["label_auroc_mean"].value <= 1.0
    checks = out.artifacts["label_check"]
    assert [c["sae_index"] for c in checks] == [e.sae_index for e in sae.feature_map.entries]
    assert all(c["n_pos"] == 16 and c["n_neg"] == 16 and 1 / 51 <= c["p_value"] <= 1 for c in checks)
    confirmed = [c for c in checks if c["confirmed"]]
    assert m["label_confirmed_fraction"].value == pytest.approx(len(confirmed) / len(checks))
    for k in (1, 2, 5, 20):
        for name in (f"sae_accuracy_k{k}", f"raw_accuracy_k{k}"):
            assert 0.0 <= m[name].value <= 1.0 and m[name].stderr > 0
    assert 0.0 <= m["raw_accuracy_dense"].value <= 1.0
    assert out.counts["texts"] == 544 and out.counts["labelled_features"] == len(checks)
    assert any("batch standardisation" in note for note in out.notes)
    json.dumps(out.artifacts)  # records must be JSON


def _oracle_sae(base: SparseAutoencoder, ctx, category: str) -> SparseAutoencoder:
    """Latent 0 := the in-sample mean-difference direction of `category` in the SAE's input space,
    thresholded at the midpoint; latent 1 := dead. Both labelled with `category`."""
    probe_set = load_probe_set()
    from sae_bench.tasks.probing import _extract  # the task's own extraction: same space

    acts = _extract(ctx, probe_set, 64)
    x_in, _ = base.preprocess(acts.pooled)
    rows = probe_set.rows(category)
    y = torch.tensor([probe_set.items[i].label for i in rows], dtype=torch.bool)
    x = x_in[rows]
    w = x[y].mean(0) - x[~y].mean(0)
    W_enc = torch.zeros(2, base.d_in)
    W_enc[0] = w
    b_enc = torch.tensor([-(x @ w).median().item(), -1.0])
    from types import SimpleNamespace

    fmap = SimpleNamespace(path="oracle_map.json", entries=(
        SimpleNamespace(sae_index=0, label="oracle", category=category),
        SimpleNamespace(sae_index=1, label="dead", category=category)))
    meta = dataclasses.replace(base.metadata, d_sae=2, checkpoint_id="oracle")
    return SparseAutoencoder(W_enc, b_enc, torch.zeros(2, base.d_in), torch.zeros(base.d_in), meta,
                             subtract_decoder_bias=False, feature_map=fmap)


def test_planted_oracle_latent_is_confirmed_and_dead_latent_is_not(task_cls, pooled_ctx):
    oracle = _oracle_sae(_load(ERNOS), pooled_ctx, "emotion:positivehigh")
    out = task_cls(n_permutations=100, k_values=[1]).run(oracle, pooled_ctx)
    first, dead = out.artifacts["label_check"]
    assert first["auroc"] >= 0.8 and first["confirmed"], first
    assert dead["auroc"] == 0.5 and not dead["confirmed"]
    assert out.metrics["label_confirmed_fraction/emotion:positivehigh"].value == 0.5
    assert out.artifacts["per_category"]["emotion:positivehigh"]["sae_latents_k1"] == [0]


def test_sparsify_token_hookpoint_without_map_and_memo(task_cls, model, monkeypatch):
    ctx = _ctx(model, "layers.2", seed=3)
    calls = []
    original = model.residual
    monkeypatch.setattr(model, "residual", lambda *a, **k: calls.append(1) or original(*a, **k))
    sae = _load(SPARSIFY, hookpoint="layers.2")
    out = task_cls().run(sae, ctx)
    m = out.metrics
    assert m["label_confirmed_fraction"].value is None
    assert m["label_confirmed_fraction"].reason == "checkpoint has no feature map"
    assert m["label_auroc_mean"].value is None
    for k in (1, 2, 5, 20):
        assert 0.0 <= m[f"sae_accuracy_k{k}"].value <= 1.0
    assert out.counts["tokens"] > out.counts["texts"]
    assert "max over kept tokens" in out.artifacts["text_representation"]
    n_calls = len(calls)
    assert n_calls > 0
    again = task_cls(k_values=[1]).run(sae, ctx)  # same hookpoint: raw activations come from the memo
    assert len(calls) == n_calls
    for name in ("sae_accuracy_k1", "raw_accuracy_k1", "raw_accuracy_dense"):
        assert again.metrics[name] == m[name]
    untrained = _load(SAES_DIR / "sparsify" / "untrained-8x", hookpoint="layers.2")
    other = task_cls(k_values=[1]).run(untrained, ctx)
    assert len(calls) == n_calls
    assert other.metrics["raw_accuracy_dense"] == m["raw_accuracy_dense"]  # baseline is checkpoint-free


def test_feature_outside_d_sae_is_an_error_naming_the_map(task_cls, pooled_ctx):
    from types import SimpleNamespace

    sae = _load(ERNOS)
    sae.feature_map = SimpleNamespace(path="my_map.json", entries=(
        SimpleNamespace(sae_index=sae.d_sae + 5, label="x", category="meta"),))
    with pytest.raises(DataError, match=r"^my_map\.json: feature \d+ \('x'\) is outside"):
        task_cls().run(sae, pooled_ctx)


def test_replacement_probe_set_and_bad_one(task_cls, pooled_ctx, tmp_path):
    rows = []
    for i, (category, word) in enumerate([("numbers", "seven"), ("animals", "horse")] * 8):
        for label, text in ((1, f"The {word} number {i} here."), (0, f"A plain line {i} of text.")):
            rows.append({"text": text, "category": category, "label": label,
                         "split": "test" if i >= 12 else "train", "note": "extra keys are fine"})
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    sae = _load(ERNOS)
    out = task_cls(probe_set=str(path), n_permutations=20, k_values=[1, 2]).run(sae, pooled_ctx)
    assert out.counts["texts"] == 32 and set(out.artifacts["per_category"]) == {"numbers", "animals"}
    assert out.metrics["label_confirmed_fraction"].value is None  # no map category has texts
    assert "untested" in out.notes[0]
    assert set(k for k in out.metrics if "accuracy" in k) == {
        "sae_accuracy_k1", "sae_accuracy_k2", "raw_accuracy_k1", "raw_accuracy_k2", "raw_accuracy_dense"}
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "category": "c", "label": "yes", "split": "train"}\n')
    with pytest.raises(DataError, match="bad.jsonl:1: 'label' must be 1 or 0"):
        task_cls(probe_set=str(tmp_path / "bad.jsonl")).run(sae, pooled_ctx)


def test_same_seed_same_numbers(task_cls, model, pooled_ctx):
    sae = _load(ERNOS)
    shared = pooled_ctx.shared  # reuse the extracted activations; the seed is what matters here
    a = task_cls(n_permutations=30, k_values=[2]).run(sae, _ctx(model, "pooled_final_norm", seed=7, shared=shared))
    b = task_cls(n_permutations=30, k_values=[2]).run(sae, _ctx(model, "pooled_final_norm", seed=7, shared=shared))
    assert a.metrics == b.metrics
    assert np.isfinite([v.value for v in a.metrics.values() if v.value is not None]).all()


def test_runner_writes_a_valid_probing_record(tmp_path):
    from sae_bench.fixtures import EVAL_CORPUS_PATH
    from sae_bench.records.results import read_record
    from sae_bench import CheckpointSpec, RunConfig, evaluate

    config = RunConfig(model=str(TINY_MODEL_DIR), corpus=str(EVAL_CORPUS_PATH), results_dir=tmp_path,
                       seq_len=16, max_documents=2, tasks=["probing"], show_progress=False,
                       task_options={"probing": {"n_permutations": 20, "k_values": [1, 2]}})
    report = evaluate(config, [CheckpointSpec(str(ERNOS), hookpoint="pooled_final_norm", format="ernos")])
    (record,) = report.records
    again = read_record(next(tmp_path.rglob("probing.json")))
    assert again.metrics == record.metrics
    assert "label_confirmed_fraction/safety:deception" in record.metrics
    assert record.data["task"]["config"]["k_values"] == [1, 2]
    assert record.data["artifacts"]["probe_set"]["sha256"] == load_probe_set().sha256


@pytest.mark.parametrize("kind", ["relu", "topk"])
def test_per_text_max_matches_a_naive_loop(kind):
    from sae_bench.checkpoints.sae import ActivationSpec, SaeMetadata
    from sae_bench.tasks.probing import PerTextActivations, sae_per_text

    g = torch.Generator().manual_seed(0)
    d, F = 6, 20
    meta = SaeMetadata("t", "x", d, F, ActivationSpec(kind, k=3 if kind == "topk" else None))
    sae = SparseAutoencoder(torch.randn(F, d, generator=g), torch.randn(F, generator=g) - 0.5,
                            torch.randn(F, d, generator=g), torch.zeros(d), meta)
    lengths = torch.tensor([3, 1, 5, 2, 4])
    tokens = torch.randn(int(lengths.sum()), d, generator=g)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
    acts = PerTextActivations(None, tokens, offsets)
    dense = sae.encode(tokens).to_dense()
    expected = torch.stack([dense[offsets[i]:offsets[i + 1]].max(0).values for i in range(5)])
    for batch in (1, 2, 5):
        assert torch.allclose(sae_per_text(sae, acts, batch), expected, atol=1e-5)  # matmul batching
    means = torch.stack([tokens[offsets[i]:offsets[i + 1]].mean(0) for i in range(5)])
    assert torch.allclose(acts.raw_per_text(), means, atol=1e-6)


def test_permuting_latents_changes_nothing(task_cls, pooled_ctx):
    from types import SimpleNamespace

    sae = _load(ERNOS)
    perm = torch.randperm(sae.d_sae, generator=torch.Generator().manual_seed(1))
    where = torch.argsort(perm)  # old latent i now sits at where[i]
    fmap = SimpleNamespace(path="p.json", entries=tuple(
        SimpleNamespace(sae_index=int(where[e.sae_index]), label=e.label, category=e.category)
        for e in sae.feature_map.entries))
    permuted = SparseAutoencoder(sae.W_enc[perm], sae.b_enc[perm], sae.W_dec[perm], sae.b_dec, sae.metadata,
                                 subtract_decoder_bias=sae.subtract_decoder_bias, feature_map=fmap)
    task = task_cls(n_permutations=40, k_values=[1, 2, 5])
    a, b = task.run(sae, pooled_ctx), task.run(permuted, pooled_ctx)
    assert a.metrics.keys() == b.metrics.keys()
    for name in a.metrics:
        assert a.metrics[name].value == pytest.approx(b.metrics[name].value, abs=1e-9), name
    for category, entry in a.artifacts["per_category"].items():
        assert [int(where[i]) for i in entry["sae_latents_k5"]] == b.artifacts["per_category"][category]["sae_latents_k5"]
