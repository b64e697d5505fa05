"""SAEBench-comparable sparse probing: the protocol in closed form (a planted concept latent is
probed perfectly at k = 1), SAEBench's draws, the task on the fixture model and local dataset
copies, and its bad-input answers (missing column, a class with one text, unknown dataset)."""

import json
import shutil

import pytest
import torch

from sae_bench.core.context import EvalContext, TokenizedCorpus
from sae_bench.core.errors import DataError, InputError
from sae_bench.fixtures import SAES_DIR, TINY_MODEL_DIR
from sae_bench.tasks.sparse_probing.datasets import load_dataset_classes
from sae_bench.tasks.sparse_probing.probes import (balanced_binary, dense_probe_accuracies, k_sparse_accuracies,
                                                   top_k_dims)

DATA = TINY_MODEL_DIR.parent / "sparse_probing"
SMALL = dict(data_dir=str(DATA), probe_train_set_size=16, probe_test_set_size=8, context_length=32)


def _planted(n, gen, classes=3, dims=20):
    out = {}
    for c in range(classes):
        x = torch.rand(n, dims, generator=gen) * 0.1
        x[:, c] = 1.0 + torch.rand(n, generator=gen)  # latent c fires on class c only
        out[str(c)] = x
    return out


def test_planted_concept_latent_probes_perfectly_at_k1():
    gen = torch.Generator().manual_seed(0)
    accuracies = k_sparse_accuracies(_planted(30, gen), _planted(10, gen), 1, torch.Generator().manual_seed(42))
    assert accuracies == {"0": 1.0, "1": 1.0, "2": 1.0}


def test_dense_probe_separates_a_planted_concept():
    gen = torch.Generator().manual_seed(0)
    assert dense_probe_accuracies(_planted(30, gen), _planted(10, gen), torch.Generator().manual_seed(1)) == \
        {"0": 1.0, "1": 1.0, "2": 1.0}


def test_dense_probe_is_a_linear_layer_trained_with_adamw_as_written_out_here():
    """An independent transcription of the definition (nn.Linear, torch.optim.AdamW, BCEWithLogits,
    per-epoch permutation, best test accuracy, patience), on the same draws: the same numbers."""
    gen = torch.Generator().manual_seed(5)
    train = {c: torch.randn(40, 12, generator=gen) + (i * 0.3) for i, c in enumerate("xyz")}
    test = {c: torch.randn(12, 12, generator=gen) + (i * 0.3) for i, c in enumerate("xyz")}
    ours = dense_probe_accuracies(train, test, torch.Generator().manual_seed(9), batch_size=16, epochs=30, patience=4)

    def by_hand():
        draws = torch.Generator().manual_seed(9)
        out = {}
        for name in train:
            xt, yt = balanced_binary(train, name, draws)
            xs, ys = balanced_binary(test, name, draws)
            probe = torch.nn.Linear(12, 1)
            with torch.no_grad():  # the same two draws nn.Linear makes from the global generator
                torch.nn.init.kaiming_uniform_(probe.weight, a=5 ** 0.5, generator=draws)
                probe.bias.uniform_(-1 / 12 ** 0.5, 1 / 12 ** 0.5, generator=draws)
            opt = torch.optim.AdamW(probe.parameters(), lr=1e-2)
            best, stale = 0.0, 0
            for _ in range(30):
                perm = torch.randperm(len(xt), generator=draws)
                for i in range(0, len(xt), 16):
                    b = perm[i:i + 16]
                    loss = torch.nn.BCEWithLogitsLoss()(probe(xt[b]).squeeze(-1), yt[b].float())
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                with torch.no_grad():
                    acc = ((probe(xs).squeeze(-1) > 0).long() == ys).float().mean().item()
                best, stale = (acc, 0) if acc > best else (best, stale + 1)
                if stale >= 4:
                    break
            out[name] = best
        return out

    assert ours == by_hand()


def test_balanced_binary_and_top_k():
    vectors = {"a": torch.arange(8.0)[:, None].repeat(1, 3), "b": -torch.ones(5, 3), "c": torch.zeros(5, 3)}
    rows, labels = balanced_binary(vectors, "a", torch.Generator().manual_seed(1))
    assert int(labels.sum()) == 8 and len(labels) == 16
    assert sorted(rows[labels == 1][:, 0].tolist()) == list(range(8))
    x = torch.tensor([[5.0, 0.0, 1.0], [5.0, 0.0, 1.0], [0.0, 0.0, 0.9], [0.0, 0.0, 0.9]])
    assert top_k_dims(x, torch.tensor([1, 1, 0, 0]), 2).tolist() == [0, 2]  # kept in index order


def test_dataset_draws_are_seeded_and_balanced():
    train, test = load_dataset_classes("LabHC/bias_in_bios_class_set1", str(DATA), 16, 8, 42)
    assert list(train) == ["0", "1", "2", "6", "9"] and all(len(v) == 8 for v in train.values())
    assert all(len(v) == 4 for v in test.values())
    again, _ = load_dataset_classes("LabHC/bias_in_bios_class_set1", str(DATA), 16, 8, 42)
    assert again == train
    train, test = load_dataset_classes("Helsinki-NLP/europarl", str(DATA), 16, 8, 42)
    assert list(train) == ["en", "fr", "de", "es", "nl"] and all(len(v) == 8 for v in train.values())
    assert not set(train["en"]) & set(test["en"])


def test_missing_column_and_one_text_class_are_one_line_errors(tmp_path):
    broken = tmp_path / "fancyzhx" / "ag_news"
    broken.mkdir(parents=True)
    for split in ("train", "test"):
        rows = [json.loads(l) for l in (DATA / "fancyzhx" / "ag_news" / f"{split}.jsonl").read_text().splitlines()]
        (broken / f"{split}.jsonl").write_text("".join(json.dumps({"body": r["text"], "label": r["label"]}) + "\n"
                                                       for r in rows))
    with pytest.raises(DataError, match="missing column.*text") as err:
        load_dataset_classes("fancyzhx/ag_news", str(tmp_path), 16, 8, 42)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="rows, .* needed"):
        load_dataset_classes("fancyzhx/ag_news", str(DATA), 400, 8, 42)
    with pytest.raises(InputError, match="unknown dataset"):
        load_dataset_classes("someone/else", str(DATA), 16, 8, 42)
    with pytest.raises(InputError, match="no local copy"):
        load_dataset_classes("fancyzhx/ag_news", str(tmp_path / "empty"), 16, 8, 42)


def test_bucketed_batches_cover_every_text_once_by_length_within_the_token_budget():
    from sae_bench.tasks.sparse_probing import _batches

    lengths = [5, 40, 17, 128, 16, 9, 33, 100, 3, 24]
    assert _batches(lengths, 4, 128, "saebench") == [([0, 1, 2, 3], 128), ([4, 5, 6, 7], 128), ([8, 9], 128)]
    batches = _batches(lengths, 1, 128, "bucketed")  # 128 token rows per forward
    assert sorted(i for batch, _ in batches for i in batch) == list(range(len(lengths)))
    for batch, width in batches:
        assert all(lengths[i] <= width and width == min(128, max(16, -(-lengths[i] // 8) * 8)) for i in batch)
        assert len(batch) * width <= 128
    assert [width for _, width in batches] == sorted(width for _, width in batches)
    assert batches[0] == ([8, 0, 5, 4], 16)  # 3, 5, 9, 16 tokens: width 16, 8 texts would fit, 4 exist


def test_both_paddings_pool_the_same_vectors(model):
    """padding="saebench" (every text padded to the context length, no padding mask, sums over the
    zero-filled rows) and "bucketed" (texts of similar length together) pool the same means (equal
    up to float rounding, and bit for bit on the real model: docs/metrics.md); the saebench means
    equal a plain padded-row reference computed here from the model's own forward."""
    from sae_bench.tasks.sparse_probing import _extract

    texts = {"a": ["one short text", "a somewhat longer text about things", "x"], "b": ["another", "two words"]}
    ctx = _ctx(model)
    wide, tight = _extract(ctx, texts, 48, "t", "saebench"), _extract(ctx, texts, 48, "t", "bucketed")
    for name in texts:
        assert torch.allclose(wide.raw_means()[name], tight.raw_means()[name], atol=1e-5)
    wide = _extract(ctx, texts, 16, "t", "saebench")
    tok = model.tokenizer
    enc = tok(texts["a"], truncation=True, max_length=16, padding="max_length", return_tensors="pt")
    with torch.no_grad():
        resid = model.residual("layers.2", enc.input_ids, torch.ones_like(enc.input_ids)).float()
    special = torch.tensor(sorted({tok.bos_token_id, tok.eos_token_id, tok.pad_token_id} - {None}))
    keep = (~torch.isin(enc.input_ids, special)).float()
    reference = (resid * keep[:, :, None]).sum(dim=1) / keep.sum(dim=1)[:, None]
    assert torch.equal(wide.raw_means()["a"], reference)
    from sae_bench.core import registry

    registry.discover()
    with pytest.raises(InputError, match="padding"):
        registry.get_task("sparse_probing")(padding="left").check_inputs({})


def _ctx(model):
    z = torch.zeros(0, 2, dtype=torch.int64)
    return EvalContext(model=model, hookpoint="layers.2", corpus=TokenizedCorpus("none", "none", "none", z, z, z.bool(), 2),
                       activations=None, show_progress=False)


def test_task_on_the_fixtures(model):
    from sae_bench import load_checkpoint
    from sae_bench.core import registry

    registry.discover()
    cls = registry.get_task("sparse_probing")
    sae = load_checkpoint(str(SAES_DIR / "sparsify" / "tiny-gemma4-8x"), hookpoint="layers.2")
    task = cls(datasets=("fancyzhx/ag_news", "Helsinki-NLP/europarl"), **SMALL)
    task.check_inputs({})
    ctx = _ctx(model)
    out = task.run(sae, ctx)
    for k in (1, 2, 5):
        metric = out.metrics[f"sae_top_{k}_test_accuracy"]
        assert 0.5 <= metric.value <= 1.0 and cls.metric_spec(f"sae_top_{k}_test_accuracy") is not None
        assert out.metrics[f"sae_top_{k}_test_accuracy/ag_news"].value is not None
    assert out.artifacts["protocol"] == "saebench-0.6.0-sparse-probing"
    assert out.artifacts["datasets"] == ["fancyzhx/ag_news", "Helsinki-NLP/europarl"]
    assert out.counts["classes"] == 9
    assert "sae_test_accuracy" not in out.metrics  # dense probes only on request
    dense = cls(datasets=("fancyzhx/ag_news",), dense_probes=True, **SMALL).run(sae, ctx)
    assert 0.5 <= dense.metrics["sae_test_accuracy"].value <= 1.0
    assert dense.metrics["llm_test_accuracy/ag_news"].value is not None
    assert dense.metrics["sae_top_1_test_accuracy/ag_news"].value == out.metrics["sae_top_1_test_accuracy/ag_news"].value
    with pytest.raises(DataError, match="1 text"):  # a class with one example: said, not computed
        cls(datasets=("fancyzhx/ag_news",), **{**SMALL, "probe_train_set_size": 2}).run(sae, ctx)
    with pytest.raises(InputError, match="unknown dataset"):
        cls(datasets=("nope/nope",)).check_inputs({})


def test_pooled_activations_are_cached_on_disk(model, tmp_path, monkeypatch):
    """With an activation cache folder, a second run (fresh context) reads the texts' activations
    from disk — the model never runs — and its numbers equal an uncached run's."""
    from sae_bench import load_checkpoint
    from sae_bench.core import registry
    from sae_bench.activations import ActivationSource

    registry.discover()
    sae = load_checkpoint(str(SAES_DIR / "sparsify" / "tiny-gemma4-8x"), hookpoint="layers.2")
    task = registry.get_task("sparse_probing")(datasets=("fancyzhx/ag_news",), **SMALL)

    def cached_ctx():
        ctx = _ctx(model)
        ctx.activations = ActivationSource(model, "layers.2", ctx.corpus, cache_dir=tmp_path, show_progress=False)
        return ctx

    uncached = task.run(sae, _ctx(model))
    cold = task.run(sae, cached_ctx())
    assert len(list(tmp_path.rglob("sparse-probing-texts-*.safetensors"))) == 2  # train and test texts
    monkeypatch.setattr(type(model), "residual", lambda *a, **k: pytest.fail("the model ran despite the cache"))
    warm = task.run(sae, cached_ctx())
    for out in (cold, warm):
        assert {k: m.value for k, m in out.metrics.items()} == {k: m.value for k, m in uncached.metrics.items()}
        assert out.artifacts["per_dataset"] == uncached.artifacts["per_dataset"]
