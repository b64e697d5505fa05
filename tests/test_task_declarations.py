"""Every built-in task reports exactly the metrics it declares, on the fixture: nothing undeclared
(no record may carry a metric nothing knows how to read), nothing declared and never reported (a
declaration without its computation, or a MetricSpec forgotten when a metric was added, is caught
here in seconds instead of after a model has loaded in someone's run). Driven by the registry:
a new task is covered without editing this file; a metric reported only under an option is
listed in OPTIONAL_RUNS with the option that turns it on."""

from __future__ import annotations

import pytest

from sae_bench import CheckpointSpec, RunConfig, evaluate

from sae_bench.core import registry
from sae_bench.fixtures import EVAL_CORPUS_PATH, FIXTURES_DIR, SAES_DIR, TINY_MODEL_DIR
from sae_bench.fixtures.build import SUITE_TASK_OPTIONS
from sae_bench.core.task_api import find_spec

# cheaper settings for this check only (the numbers do not matter here, which metrics appear does)
# (a task that needs an option to run at all, such as autointerp's judge, gets it here too)
# (tasks that need options to run at all on the tiny model take the fixture suite's: absorption, sparse probing)
CHEAP = {"downstream_lm_eval": {"limit": 8}, "probing": {"n_permutations": 9, "seq_len": 16},
         "autointerp": {"judge": "oracle", "n_latents": 4},
         "absorption": SUITE_TASK_OPTIONS["absorption"],
         "sparse_probing": {**SUITE_TASK_OPTIONS["sparse_probing"], "data_dir": str(FIXTURES_DIR / "sparse_probing")}}
# metrics a task reports only when an option asks for them: {task: its options with those turned on}
OPTIONAL_RUNS = {"spliced_loss": {"mean_ablation": True},
                 "sparse_probing": {**CHEAP["sparse_probing"], "dense_probes": True}}


def builtin_tasks() -> dict:
    return {name: cls for name, cls in registry.all_tasks().items() if cls.__module__.startswith("sae_bench.tasks.")}


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> dict[str, set[str]]:
    """Metric names each built-in task reported on one fixture checkpoint (default options, then
    the options of OPTIONAL_RUNS)."""
    with pytest.MonkeyPatch.context() as patch:  # the judge's answer cache in a temporary folder
        patch.setenv("SAE_BENCH_JUDGE_CACHE", str(tmp_path_factory.mktemp("judge-cache")))
        return _run_every_task(tmp_path_factory)


def _run_every_task(tmp_path_factory) -> dict[str, set[str]]:
    tasks = builtin_tasks()
    spec = CheckpointSpec(str(SAES_DIR / "sparsify/tiny-gemma4-8x"), hookpoint="layers.2")
    found: dict[str, set[str]] = {name: set() for name in tasks}
    cheap = {name: options for name, options in CHEAP.items() if name in tasks}
    runs = [(cheap, list(tasks))] + [({**cheap, name: options}, [name]) for name, options in OPTIONAL_RUNS.items()
                                      if name in tasks]
    for i, (options, names) in enumerate(runs):
        config = RunConfig(model=str(TINY_MODEL_DIR), corpus=str(EVAL_CORPUS_PATH), seq_len=32, max_documents=24,
                           results_dir=tmp_path_factory.mktemp(f"run{i}"), tasks=names, task_options=options,
                           show_progress=False)
        report = evaluate(config, [spec])
        assert not report.skipped, f"a built-in task did not run on the fixture: {report.skipped}"
        for record in report.records:
            found[record.task_name] |= set(record.metrics)
    return found


def test_every_builtin_task_ran(reported):
    assert all(reported.values()), {name: sorted(m) for name, m in reported.items()}


@pytest.mark.parametrize("name", sorted(builtin_tasks()))
def test_a_task_reports_exactly_what_it_declares(reported, name):
    cls = builtin_tasks()[name]
    undeclared = sorted(m for m in reported[name] if find_spec(cls.metrics, m) is None)
    assert not undeclared, f"{name} reports metrics it does not declare: {undeclared}"
    never = sorted(spec.name for spec in cls.metrics
                   if not any(find_spec((spec,), m) is not None for m in reported[name]))
    assert not never, (f"{name} declares metrics it never reported on the fixture: {never} (a metric reported "
                       "only under an option: add the option to OPTIONAL_RUNS)")
