"""The absorption task: closed-form cases of its metric (a latent that is the letter's direction,
a planted absorber on a known share of words), feature splitting, SAEBench's prompt draws, and the
task end to end on the fixture model with planted SAEs, plus its bad-input answers."""

import json
import random

import pytest
import torch

from sae_bench.core.context import EvalContext, TokenizedCorpus
from sae_bench.core.errors import DataError, InputError
from sae_bench.fixtures import SAES_DIR, TINY_MODEL_DIR
from sae_bench.checkpoints.sae import ActivationSpec, SaeMetadata, SparseAutoencoder
from sae_bench.tasks.absorption.metric import f1_score, split_latents, word_absorption
from sae_bench.tasks.absorption.prompts import icl_prompt, probe_prompts
from sae_bench.tasks.absorption.vocab import read_words_file, seeded_subset, single_token_words

# The fixture tokenizer splits "{word} has the first letter:"; "{word}:" keeps the word at -2.
FIXTURE_OPTIONS = dict(prompt_template="{word}:", prompt_token_pos=-2, min_feats_for_eval=1, min_GT_probe_f1=0.0,
                       probe_epochs=20, k_sparse_probe_num_epochs=20, max_k_value=4)


def _relu_sae(W_enc, b_enc, W_dec):
    meta = SaeMetadata("planted", "planted", W_enc.shape[1], W_enc.shape[0], ActivationSpec("relu"))
    return SparseAutoencoder(W_enc, b_enc, W_dec, torch.zeros(W_enc.shape[1]), meta)


# ---------------------------------------------------------------- the metric in closed form
def test_latent_equal_to_the_direction_absorbs_nothing():
    d = 8
    p = torch.zeros(d); p[0] = 1.0
    decoder = torch.eye(4, d)  # latent 0 is the letter's direction, the others are orthogonal
    x = torch.rand(20, d) + 0.5
    codes = torch.zeros(20, 4); codes[:, 0] = x[:, 0]  # fires on every word with its full projection
    result = word_absorption(x, codes, 3.0 * p, decoder, [0])
    assert torch.equal(result.fraction, torch.zeros(20, dtype=torch.float64))
    assert not bool(result.full.any())


def test_planted_absorber_takes_its_share():
    d, n = 8, 40
    p = torch.zeros(d); p[0] = 1.0
    decoder = torch.zeros(3, d); decoder[0, 0] = 1.0; decoder[1, 0] = 1.0; decoder[2, 1] = 1.0
    x = torch.zeros(n, d); x[:, 0] = 2.0
    absorbed = torch.arange(n) % 4 == 0  # a known quarter of the words
    codes = torch.zeros(n, 3)
    codes[~absorbed, 0] = 2.0  # the main latent carries the whole projection
    codes[absorbed, 1] = 2.0  # the absorber carries it instead, the main latent is silent
    result = word_absorption(x, codes, p, decoder, [0])
    assert result.fraction.mean().item() == pytest.approx(absorbed.float().mean().item(), abs=1e-12)
    assert torch.equal(result.full, absorbed)


def test_partial_absorption_formula():
    p = torch.tensor([1.0, 0.0])
    decoder = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    x = torch.tensor([[1.0, 0.0]])
    codes = torch.tensor([[0.25, 0.75]])  # m = 0.25, A = 0.75, P = 1: fraction min(A, P - m)/(... + m) = 0.75
    result = word_absorption(x, codes, p, decoder, [0])
    assert result.fraction.item() == pytest.approx(0.75)
    assert not bool(result.full.item())  # the main latent fires


def test_split_latents_and_f1():
    assert split_latents([0.5, 0.9, 0.91, 0.99], [[1], [1, 2], [1, 2, 3], [1, 2, 3, 4]], 0.03) == [1, 2]
    assert split_latents([0.0, 0.0], [[7], [7, 8]], 0.03) == [7]  # k = 1 always counts
    truth = torch.tensor([True, True, False, False])
    assert f1_score(truth, torch.tensor([True, False, True, False])) == pytest.approx(0.5)
    assert f1_score(torch.zeros(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool)) == 0.0


# ---------------------------------------------------------------- SAEBench's draws
def test_prompts_follow_saebench_draw_order():
    words = [f" w{c}" for c in "abcdefghijklmnopqrstuvwxyz"] * 1
    rng = random.Random(3)
    train, test = probe_prompts(words, rng, template="{word} has the first letter:", n_examples=3, train_fraction=0.8)
    twin = random.Random(3)
    shuffled = twin.sample(words, len(words))
    assert [p.word for p in train] == shuffled[:20] and [p.word for p in test] == shuffled[20:]
    first = train[0]
    assert first.text.startswith("\n") and first.text.endswith(f"\n{first.word} has the first letter:")
    assert first.text.count(" has the first letter: W") == 3
    with pytest.raises(ValueError):
        icl_prompt(" a", [" a"], random.Random(0), template="{word}:", n_examples=1, max_attempts=5)


def test_vocab_is_deterministic_and_subsets_are_seeded(tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(TINY_MODEL_DIR))
    words = single_token_words(tok)
    assert words == single_token_words(tok) and len(words) > 100
    assert all(w.strip().isalpha() for w in words)
    sub = seeded_subset(words, 50, 1)
    assert sub == seeded_subset(words, 50, 1) and len(sub) == 50 and sub != seeded_subset(words, 50, 2)
    bad = tmp_path / "words.json"
    bad.write_text(json.dumps([" the", "not-a-word"]))
    with pytest.raises(DataError, match="not single-token"):
        read_words_file(str(bad), words)


# ---------------------------------------------------------------- end to end on the fixture model
@pytest.fixture(scope="module")
def task_cls():
    from sae_bench.core import registry

    registry.discover()
    return registry.get_task("absorption")


def _ctx(model, hookpoint="layers.2"):
    z = torch.zeros(0, 2, dtype=torch.int64)
    return EvalContext(model=model, hookpoint=hookpoint, corpus=TokenizedCorpus("none", "none", "none", z, z, z.bool(), 2),
                       activations=None, show_progress=False)


@pytest.fixture(scope="module")
def fixture_run(model, task_cls):
    from sae_bench import load_checkpoint

    ctx = _ctx(model)
    sae = load_checkpoint(str(SAES_DIR / "sparsify" / "tiny-gemma4-8x"), hookpoint="layers.2")
    out = task_cls(**FIXTURE_OPTIONS).run(sae, ctx)
    return ctx, out


def test_fixture_run_reports_every_metric(fixture_run, task_cls):
    ctx, out = fixture_run
    for name in ("mean_absorption_fraction", "mean_full_absorption", "mean_num_split_features"):
        assert out.metrics[name].value is not None and task_cls.metric_spec(name) is not None
    letters = [k.split("/")[1] for k in out.metrics if k.startswith("mean_absorption_fraction/")]
    assert letters and all(0.0 <= out.metrics[f"mean_absorption_fraction/{l}"].value <= 1.0 for l in letters)
    assert out.counts["letters_evaluated"] == len(letters)
    # letters the fixture vocabulary cannot split into both halves are named, not scored
    assert "letters_skipped" in out.artifacts and out.notes


def test_planted_letter_latent_absorbs_nothing(fixture_run, model, task_cls):
    """Latent 0 reads the unit first-letter direction of 'a' plus a bias larger than any word's
    projection, so it fires on every 'a' word with at least the whole probe projection (m ≥ P), and
    its decoder row is that direction; latent 1 never fires. For 'a': absorption 0, no full
    absorption, one split latent (latent 0)."""
    ctx, _ = fixture_run
    data = next(v for k, v in ctx.shared.items() if k.startswith("absorption/"))
    unit_a = data.probe_weight[0] / data.probe_weight[0].norm()
    reach = float((torch.cat([data.x_train, data.x_test]) @ unit_a).abs().max()) * 2 + 1.0
    W = torch.stack([unit_a, torch.zeros_like(unit_a)])
    sae = _relu_sae(W, torch.tensor([reach, -1.0]), torch.stack([unit_a, torch.roll(unit_a, 1)]))
    out = task_cls(**{**FIXTURE_OPTIONS, "max_k_value": 2}).run(sae, ctx)
    assert out.artifacts["per_letter"]["a"]["probe_true_positives"] > 0
    assert out.metrics["mean_absorption_fraction/a"].value == 0.0
    assert out.metrics["mean_full_absorption/a"].value == 0.0
    assert out.metrics["mean_num_split_features/a"].value == 1
    assert out.artifacts["per_letter"]["a"]["main_latents"] == [0]


def test_pooled_hookpoint_is_skipped(model, task_cls):
    from sae_bench import load_checkpoint

    sae = load_checkpoint(str(SAES_DIR / "ernos" / "tiny_sae.safetensors"))
    reason = task_cls().skip_reason(sae, _ctx(model, "pooled_final_norm"))
    assert reason and "pooled" in reason


def test_bad_options_are_one_line_errors(model, task_cls):
    with pytest.raises(InputError, match="prompt_template"):
        task_cls(prompt_template="no word here").check_inputs({})
    assert any("prompt_token_pos" in p for p in task_cls(prompt_token_pos=1).config.problems())
    from sae_bench import load_checkpoint

    sae = load_checkpoint(str(SAES_DIR / "sparsify" / "tiny-gemma4-8x"), hookpoint="layers.2")
    # SAEBench's default position (-6) is not the word with the fixture tokenizer: said, not computed
    reason = task_cls().skip_reason(sae, _ctx(model))
    assert reason and "prompt_token_pos=-6" in reason and "\n" not in reason
    assert task_cls(**FIXTURE_OPTIONS).skip_reason(sae, _ctx(model)) is None
    with pytest.raises(InputError, match="prompt_token_pos"):
        task_cls(max_words=60, probe_epochs=1).run(sae, _ctx(model))
    with pytest.raises(InputError, match="single-token alphabetic words"):
        task_cls(max_words=10, **FIXTURE_OPTIONS).run(sae, _ctx(model))


def test_too_few_good_letters_is_a_null_with_reason(fixture_run, model, task_cls):
    ctx, _ = fixture_run
    from sae_bench import load_checkpoint

    sae = load_checkpoint(str(SAES_DIR / "sparsify" / "tiny-gemma4-8x"), hookpoint="layers.2")
    out = task_cls(**{**FIXTURE_OPTIONS, "min_feats_for_eval": 20, "min_GT_probe_f1": 0.6}).run(sae, ctx)
    metric = out.metrics["mean_absorption_fraction"]
    assert metric.value is None and "min_feats_for_eval" in metric.reason


def test_sparse_probing_without_data_offline_is_skipped(model, monkeypatch):
    from sae_bench import load_checkpoint
    from sae_bench.core import registry

    registry.discover()
    task = registry.get_task("sparse_probing")()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sae = load_checkpoint(str(SAES_DIR / "sparsify" / "tiny-gemma4-8x"), hookpoint="layers.2")
    reason = task.skip_reason(sae, _ctx(model))
    assert reason and "data_dir" in reason


def test_prompt_activations_are_cached_on_disk(fixture_run, model, task_cls, tmp_path, monkeypatch):
    """With an activation cache folder, a second run at the hookpoint (fresh context, as in another
    process) reads the prompts' activations from disk — the model is never called — and every
    number equals the uncached run's."""
    from sae_bench import load_checkpoint
    from sae_bench.activations import ActivationSource

    sae = load_checkpoint(str(SAES_DIR / "sparsify" / "tiny-gemma4-8x"), hookpoint="layers.2")

    def cached_ctx():
        ctx = _ctx(model)
        ctx.activations = ActivationSource(model, "layers.2", ctx.corpus, cache_dir=tmp_path, show_progress=False)
        return ctx

    cold = task_cls(**FIXTURE_OPTIONS).run(sae, cached_ctx())
    memos = list(tmp_path.rglob("absorption-prompts-*.safetensors"))
    assert len(memos) >= 3  # train, test, and each evaluated letter's fresh prompts
    monkeypatch.setattr(type(model), "residual", lambda *a, **k: pytest.fail("the model ran despite the cache"))
    warm = task_cls(**FIXTURE_OPTIONS).run(sae, cached_ctx())
    uncached = fixture_run[1]
    for out in (cold, warm):
        assert {k: (m.value, m.stderr) for k, m in out.metrics.items()} == \
            {k: (m.value, m.stderr) for k, m in uncached.metrics.items()}
        assert out.artifacts == uncached.artifacts
