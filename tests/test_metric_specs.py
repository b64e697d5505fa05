"""A task declares its metrics once (MetricSpec) and everything that ranks, gates, compares or
prints reads them: a toy task in one file, with one lower-is-better metric, is ranked on the
leaderboard page, gated and compared in that direction without touching any other file."""

from __future__ import annotations

import json
import shutil

import pytest

from sae_bench.core import registry
from sae_bench.cli import main
from sae_bench.analysis.compare import compare_records
from sae_bench.core.errors import InputError
from sae_bench.fixtures import EVAL_CORPUS_PATH, SAES_DIR, TINY_MODEL_DIR
from sae_bench.analysis.gate import gate
from sae_bench.records.results import iter_records, read_record, validate
from sae_bench import MetricSpec, Task, TaskOutput

TOY_TASK = '''
from sae_bench import Metric, MetricSpec, Task, TaskOutput, register_task


@register_task
class ToyTask(Task):
    name = "toy_spec_task"
    version = "1"
    description = "mean |W_enc|: a number that differs between checkpoints"
    metrics = (MetricSpec("toy_weight", "lower", "mean absolute encoder weight", "weight units", 0.001,
                          headline=1, ranking=1),)

    def run(self, sae, ctx):
        return TaskOutput(metrics={"toy_weight": Metric(float(sae.W_enc.abs().mean()), 1e-6)})
'''

CHECKPOINTS = [f"{SAES_DIR}/sparsify/tiny-gemma4-8x@layers.2", f"{SAES_DIR}/sparsify/untrained-8x@layers.2"]


@pytest.fixture
def scratch_registry(monkeypatch):
    """The toy task is registered for this test only (built-ins discovered first, into the real registry)."""
    registry.discover()
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))
    monkeypatch.setattr(registry, "_ORIGINS", dict(registry._ORIGINS))


def _run(tmp_path, results):
    argv = ["run", "--model", str(TINY_MODEL_DIR), "--corpus", str(EVAL_CORPUS_PATH), "--seq-len", "16",
            "--max-documents", "4", "--include-path", str(tmp_path / "plugin"), "--tasks", "toy_spec_task",
            "--results", str(results), "--no-cache", "--quiet"]
    for ref in CHECKPOINTS:
        argv += ["--checkpoint", ref]
    assert main(argv) == 0


def test_toy_task_is_ranked_gated_and_compared_by_its_declared_direction(tmp_path, scratch_registry, capsys):
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "toy.py").write_text(TOY_TASK)
    results = tmp_path / "results"
    _run(tmp_path, results)
    header = next(line for line in capsys.readouterr().out.splitlines() if line.split()[:2] == ["checkpoint", "hookpoint"])
    assert header.split()[-1] == "toy_weight"  # a headline column of the summary
    records = iter_records(results)
    values = {r.checkpoint_id: r.metric("toy_weight") for r in records}
    assert len(values) == 2 and len(set(values.values())) == 2
    assert records[0].data["metric_specs"]["toy_weight"]["direction"] == "lower"  # the record carries the spec

    # the leaderboard ranks by it, lowest first, and the page says so
    out = tmp_path / "board"
    assert main(["leaderboard", "build", "--results", str(results), "--out", str(out)]) == 0
    version = json.loads((out / "v1" / "version.json").read_text())
    assert version["ranked_by"] == "toy_spec_task/toy_weight" and version["higher_is_better"] is False
    best = min(values, key=values.get)
    import pandas as pd

    rows = pd.read_csv(out / "v1" / "rows.csv")
    assert rows.loc[rows["rank"] == 1, "checkpoint"].tolist() == [best]
    assert rows.loc[rows["rank"] == 2, "checkpoint"].tolist() == [max(values, key=values.get)]
    page = (out / "v1" / "index.html").read_text()
    assert "toy_weight ↓" in page and "ranked by toy_spec_task/toy_weight (lower is better)" in page

    # the gate fails a higher (worse) candidate, passes a lower one
    path = next(r.path for r in records if r.checkpoint_id == best)
    for delta, status in ((+0.01, "fail"), (-0.01, "pass")):
        data = read_record(path).data
        data["metrics"]["toy_weight"]["value"] += delta
        report = gate([read_record(path)], [validate(data)])
        row = (report.failures + report.passes)[0]
        assert (row.metric, row.status, row.rule) == ("toy_weight", status, "lower:0.001")
        compared = compare_records([read_record(path)], [validate(data)]).rows[0]
        assert (compared.direction, compared.better) == ("lower", "A" if delta > 0 else "B")

    # a copy of the results gates by the carried spec alone, with the task no longer registered
    registry._TASKS.pop("toy_spec_task")
    shutil.copytree(results, tmp_path / "copy")
    report = gate(iter_records(results), iter_records(tmp_path / "copy"))
    assert [r.rule for r in report.passes] == ["lower:0.001", "lower:0.001"]


def test_the_runner_refuses_an_undeclared_metric():
    from sae_bench.run.run_records import declared_specs

    class Sloppy(Task):
        name, version = "sloppy", "1"
        metrics = (MetricSpec("score_*", "higher", "a family of scores"),)

    output = TaskOutput(metrics={"score_a": (1.0, None), "surprise": (2.0, None)})
    with pytest.raises(InputError, match="task sloppy: reported metric 'surprise', which it does not declare"):
        declared_specs(Sloppy(), output)
    assert list(declared_specs(Sloppy(), TaskOutput(metrics={"score_a": (1.0, None)}))) == ["score_*"]


@pytest.mark.parametrize("kwargs, problem", [
    ({"direction": "up"}, "direction"),
    ({"min_effect": -1}, "min_effect"),
    ({"direction": "none", "ranking": 1}, "ranking metric needs a direction"),
    ({"definition": "two\nlines"}, "one non-empty line"),
])
def test_a_bad_spec_is_refused(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        MetricSpec(**{"name": "m", "direction": "higher", "definition": "d", **kwargs})


def test_a_record_with_a_malformed_spec_is_refused():
    from record_factories import make_record_data

    data = make_record_data("ckpt", "reconstruction", {"fvu": 0.5})
    data["metric_specs"] = {"fvu": {"name": "fvu", "direction": "sideways", "definition": "x"}}
    with pytest.raises(InputError, match="metric_specs\\['fvu'\\] is not a valid metric spec"):
        validate(data)


def test_a_parts_spec_covers_its_parts_without_headline_or_ranking():
    from sae_bench.core.task_api import find_spec

    spec = MetricSpec("acc", "higher", "accuracy", "fraction", 0.01, headline=3, ranking=2, parts=True)
    assert find_spec([spec], "acc") is spec
    part = find_spec([spec], "acc/hellaswag")
    assert (part.direction, part.min_effect, part.headline, part.ranking) == ("higher", 0.01, None, None)
    assert find_spec([spec], "accuracy") is None and find_spec([spec], "acc_x/y") is None


def test_a_record_carries_the_declared_spec_of_a_metric_with_parts_not_its_parts_view():
    """A part (`name/<part>`) is shown and ranked nowhere, but the metric itself keeps its headline
    and ranking in the record (the part sorted after it once overwrote them with None)."""
    from sae_bench.run.run_records import declared_specs

    class WithParts(Task):
        name, version = "with_parts", "1"
        metrics = (MetricSpec("score", "higher", "mean over parts", headline=7, ranking=3, parts=True),)

    specs = declared_specs(WithParts(), TaskOutput(metrics={"score": (0.5, None), "score/a": (0.4, None),
                                                            "score/b": (0.6, None)}))
    assert list(specs) == ["score"]
    assert (specs["score"].headline, specs["score"].ranking) == (7, 3)
