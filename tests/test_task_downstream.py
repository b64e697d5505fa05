"""downstream_lm_eval: lm-eval accuracy clean vs spliced, offline on the tiny fixture model."""

import functools
import json

import pytest
import torch

from sae_bench.checkpoints.sae import ActivationSpec, SaeMetadata, SparseAutoencoder


@functools.lru_cache(maxsize=None)
def _ctx(hookpoint="layers.2"):
    from sae_bench.activations import ActivationSource
    from sae_bench.core.context import EvalContext
    from sae_bench.inputs.corpus import load_corpus
    from sae_bench.fixtures import EVAL_CORPUS_PATH, TINY_MODEL_DIR
    from sae_bench.models import ModelAdapter

    model = ModelAdapter.load(TINY_MODEL_DIR)
    corpus = load_corpus(EVAL_CORPUS_PATH, model.tokenizer, seq_len=64, max_documents=8)
    source = ActivationSource(model, hookpoint, corpus, show_progress=False)
    return EvalContext(model=model, hookpoint=hookpoint, corpus=corpus, activations=source, show_progress=False)


def _sae(W_enc, W_dec):
    F, d = W_enc.shape
    meta = SaeMetadata(checkpoint_id="test", format="test", d_in=d, d_sae=F, activation=ActivationSpec("relu"))
    return SparseAutoencoder(W_enc, torch.zeros(F), W_dec, torch.zeros(d), meta)


def identity_sae(d):
    both = torch.cat([torch.eye(d), -torch.eye(d)])  # relu(x) − relu(−x) = x exactly
    return _sae(both, both.clone())


def zero_sae(d):
    return _sae(torch.eye(d), torch.zeros(d, d))


def _task(**options):
    from sae_bench.tasks.downstream_lm_eval import DownstreamLmEvalTask

    return DownstreamLmEvalTask(**options)


def test_identity_sae_keeps_accuracy_and_zero_sae_is_measured():
    ctx = _ctx()
    task = _task(limit=30)
    out = task.run(identity_sae(ctx.model.d_model), ctx)
    m = out.metrics
    assert set(m) == {"acc_clean", "acc_spliced", "acc_delta"}
    assert m["acc_spliced"].value == m["acc_clean"].value
    assert m["acc_delta"].value == 0.0 and m["acc_delta"].stderr == 0.0
    assert 0.0 <= m["acc_clean"].value <= 1.0 and m["acc_clean"].stderr > 0
    assert out.counts["documents"] == 30
    assert out.artifacts["per_document"]["acc_delta"]["sae_bench_continuation"] == [0.0] * 30
    zero = task.run(zero_sae(ctx.model.d_model), ctx).metrics
    assert zero["acc_clean"] == m["acc_clean"]  # clean run memoised per hookpoint and config
    deltas = zero["acc_delta"]
    assert deltas.value == pytest.approx(zero["acc_spliced"].value - zero["acc_clean"].value)
    assert sum(k.startswith("downstream_lm_eval/clean") for k in ctx.shared) == 1


def test_splice_replaces_only_non_bos_positions():
    from sae_bench.tasks.downstream_lm_eval.lm_eval_bridge import sae_splice

    ctx = _ctx()
    model = ctx.model
    ids, mask = ctx.corpus.input_ids[:4], ctx.corpus.attention_mask[:4]
    with torch.no_grad():
        resid = model.residual(ctx.hookpoint, ids, mask)
        with sae_splice(model, ctx.hookpoint, zero_sae(model.d_model)):
            got = model.final_hidden(ids, mask)
        tok = model.tokenizer
        excluded = torch.isin(ids, torch.tensor([tok.bos_token_id, tok.pad_token_id, tok.eos_token_id]))
        expected = model.final_hidden_from(ctx.hookpoint, torch.where(excluded[..., None], resid, 0.0), ids, mask)
    attended = mask.bool()
    assert bool(excluded[:, 0].all())  # BOS is there and kept clean
    assert torch.allclose(got[attended], expected[attended], atol=1e-5)
    assert not model.model._forward_pre_hooks  # hook removed


def test_skip_for_pooled_and_options():
    class _C:
        is_pooled = True

    assert "pooled" in _task().skip_reason(None, _C())
    assert _task(lm_eval_tasks="a, b").config.task_names() == ["a", "b"]
    assert _task().config.task_names() == ["sae_bench_continuation"]


def test_local_task_dataset_is_built_from_the_fixture_corpus():
    import importlib.util

    from sae_bench.tasks.downstream_lm_eval.lm_eval_bridge import local_tasks_dir
    from sae_bench.fixtures import EVAL_CORPUS_PATH

    folder = local_tasks_dir() / "sae_bench_continuation"
    rows = [json.loads(line) for line in (folder / "continuation.jsonl").read_text().splitlines()]
    spec = importlib.util.spec_from_file_location("continuation_build", folder / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert build.build(EVAL_CORPUS_PATH) == rows  # the shipped file is what build.py makes
    corpus = [json.loads(line) for line in EVAL_CORPUS_PATH.read_text().splitlines()]
    assert len(rows) == len(corpus) == 100
    for row, doc in zip(rows, corpus):
        assert f"{row['context']} {row['choices'][row['label']]}" == " ".join(doc["text"].split())
        assert len(row["choices"]) == 4 and len(set(row["choices"])) == 4


@pytest.mark.slow
def test_unknown_lm_eval_task_is_an_input_error():
    from sae_bench.core.errors import InputError

    ctx = _ctx()
    with pytest.raises(InputError, match="not an lm-eval task"):
        _task(lm_eval_tasks="no_such_task_xyz", limit=2).run(identity_sae(ctx.model.d_model), ctx)


def test_on_fixture_sparsify_checkpoint():
    from sae_bench import load_checkpoint
    from sae_bench.fixtures import SAES_DIR

    ctx = _ctx()
    sae = load_checkpoint(SAES_DIR / "sparsify" / "tiny-gemma4-8x", hookpoint="layers.2")
    out = _task().run(sae, ctx)
    m = out.metrics
    assert all(v.value is not None and v.stderr is not None for v in m.values())
    assert m["acc_delta"].value == pytest.approx(m["acc_spliced"].value - m["acc_clean"].value)
    assert out.counts == {"documents": 100, "tasks": 1}
    assert m["acc_clean"].value > 0.4  # well above the 0.25 chance level: the task can detect damage
    untrained = load_checkpoint(SAES_DIR / "sparsify" / "untrained-8x", hookpoint="layers.2")
    worse = _task().run(untrained, ctx).metrics["acc_delta"]
    assert worse.value < m["acc_delta"].value and worse.value + 2 * worse.stderr < 0
