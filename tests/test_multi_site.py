"""One model pass for many sites (issue 24): a run with checkpoints at three hookpoints gives the
numbers of three one-site runs, fills each site's cache as a one-site run would, scores the
spliced-loss clean run once for all sites, and refuses a memory budget no site fits."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sae_bench.core.errors import InputError
from sae_bench.fixtures import FIXTURES_DIR
from sae_bench.run.config import CheckpointSpec, RunConfig
from sae_bench.run.runner import evaluate

TASKS = ["reconstruction", "sparsity", "spliced_loss"]
SITES = ("layers.1", "layers.2", "layers.3")
SAE = str(FIXTURES_DIR / "saes/sparsify/tiny-gemma4-8x")


def _config(tmp: Path, name: str, cache: str | None, **kw) -> RunConfig:
    kw = {"tasks": TASKS, "task_options": {"spliced_loss": {"mean_ablation": True}}, **kw}
    return RunConfig(model=str(FIXTURES_DIR / "tiny-gemma4"), corpus=str(FIXTURES_DIR / "corpus/eval.jsonl"),
                     results_dir=tmp / name, seq_len=32, max_documents=12, batch_size=4,
                     cache_dir=(tmp / cache) if cache else None, show_progress=False, **kw)


def _numbers(report) -> dict[tuple[str, str, str], float | None]:
    out = {}
    for record in report.records:
        data = record.data
        for name, metric in data["metrics"].items():
            out[(data["hookpoint"], data["task"]["name"], name)] = metric["value"]
    return out


def _same(a: dict, b: dict, rtol: float = 1e-6) -> list[str]:
    assert a.keys() == b.keys()
    bad = []
    for key in a:
        x, y = a[key], b[key]
        if (x is None) != (y is None) or (x is not None and not math.isclose(x, y, rel_tol=rtol, abs_tol=1e-9)):
            bad.append(f"{key}: {x} vs {y}")
    return bad


def _specs(sites=SITES) -> list[CheckpointSpec]:
    return [CheckpointSpec(ref=SAE, hookpoint=site, format="sparsify", label=f"sae-{site}") for site in sites]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multi_site")
    together = evaluate(_config(tmp, "together", "cache_together"), _specs())
    alone = {}
    for site in SITES:
        alone.update(_numbers(evaluate(_config(tmp, f"alone_{site}", f"cache_{site}"), _specs([site]))))
    return tmp, together, alone


def test_three_sites_in_one_pass_equal_three_one_site_runs(runs):
    _tmp, together, alone = runs
    numbers = _numbers(together)
    assert {hp for hp, _, _ in numbers} == set(SITES)
    assert _same(numbers, alone) == []


def test_the_multi_site_pass_fills_each_sites_cache_for_a_later_one_site_run(runs, monkeypatch):
    tmp, together, _alone = runs
    from sae_bench.activations import source as source_module

    def no_forward(*_args, **_kw):
        raise AssertionError("a one-site run after the multi-site pass must read its activations from the cache")

    monkeypatch.setattr(source_module.ActivationSource, "_extract_batch", no_forward)
    config = _config(tmp, "later_one_site", "cache_together", task_options={}, tasks=["reconstruction"])
    later = _numbers(evaluate(config, _specs(["layers.2"])))
    first = _numbers(together)
    assert later[("layers.2", "reconstruction", "fvu")] == first[("layers.2", "reconstruction", "fvu")]


def test_clean_run_is_scored_once_for_all_sites(tmp_path, monkeypatch):
    """One shared scoring pass: the lm_head sees the clean states once per chunk, not once per site."""
    from sae_bench.models.adapter import ModelAdapter

    calls = {"n": 0}
    real = ModelAdapter.logits_from_hidden

    def counting(self, hidden, out=None):
        calls["n"] += 1
        return real(self, hidden, out)

    monkeypatch.setattr(ModelAdapter, "logits_from_hidden", counting)
    config = _config(tmp_path, "count", None, task_options={"spliced_loss": {"mean_ablation": True,
                                                                              "chunk_positions": 100_000}},
                     tasks=["spliced_loss"])
    evaluate(config, _specs())
    batches = 3  # 12 documents, batch_size 4; one chunk per batch
    # per batch: 1 clean + per site (zero, mean, spliced) = 1 + 3 * 3 products (three independent sites: 12)
    assert calls["n"] == batches * (1 + 3 * 3)


def test_memory_budget_groups_sites_and_refuses_one_that_cannot_fit(tmp_path, capsys):
    from sae_bench.activations.multi_site import group_sites

    assert group_sites([1, 2, 3], per_site=10, budget=25) == [[1, 2], [3]]
    assert group_sites([1, 2, 3], per_site=10, budget=10) == [[1], [2], [3]]
    with pytest.raises(InputError, match="one site needs about"):
        group_sites([1], per_site=11, budget=10)
    with pytest.raises(InputError, match="--site-memory-gb"):
        evaluate(_config(tmp_path, "tiny_budget", None, site_memory_gb=1e-5), _specs())
    assert not (tmp_path / "tiny_budget").exists() or not any((tmp_path / "tiny_budget").rglob("*.json"))


def test_groups_under_a_small_budget_give_the_same_numbers(runs, tmp_path):
    _tmp, together, _alone = runs
    from sae_bench.activations.multi_site import site_bytes
    from sae_bench.inputs.corpus import load_corpus
    from sae_bench.models import ModelAdapter

    model = ModelAdapter.load(str(FIXTURES_DIR / "tiny-gemma4"))
    corpus = load_corpus(str(FIXTURES_DIR / "corpus/eval.jsonl"), model.tokenizer, seq_len=32, max_documents=12)
    two_sites = 2 * site_bytes(corpus, model.d_model, model.dtype) / 1e9
    grouped = evaluate(_config(tmp_path, "grouped", None, site_memory_gb=two_sites * 1.01), _specs())
    assert _same(_numbers(grouped), _numbers(together)) == []
