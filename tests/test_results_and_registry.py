"""Result records (validation, atomic writes) and the task registry (loud on duplicates)."""

import json
import math

import pytest

from sae_bench.core import registry
from sae_bench.core.errors import InputError, ResultError
from sae_bench.records.results import dumps, read_record, record_path, slug, validate, write_record


def minimal_record(**over):
    data = {
        "schema_version": 1, "harness_version": "0.1.0",
        "task": {"name": "reconstruction", "version": "1", "config": {}, "config_hash": "abc"},
        "checkpoint": {"id": "ckpt", "format": "sparsify", "sha256": "00"},
        "model": {"id": "m", "revision": "r"}, "hookpoint": "layers.1",
        "corpus": {"id": "c", "hash": "h"}, "counts": {"tokens": 3},
        "metrics": {"fvu": {"value": 0.5, "stderr": 0.1}},
        "seed": 0, "dtype": "float32", "device": "cpu", "libraries": {}, "timings": {},
        "created_at": "2026-11-22T00:00:00+00:00",
    }
    data.update(over)
    return data


def test_valid_record_round_trips(tmp_path):
    path = write_record(tmp_path, minimal_record())
    assert path == record_path(tmp_path, "ckpt", "layers.1", "reconstruction")
    assert read_record(path).metric("fvu") == 0.5
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize("bad, words", [
    ({"metrics": {"fvu": {"value": math.nan}}}, "NaN"),
    ({"metrics": {"fvu": {"value": None}}}, "without a reason"),
    ({"metrics": {"fvu": {"value": "0.5"}}}, "not a number"),
    ({"seed": "0"}, "seed"),
    ({"schema_version": 99}, "schema_version"),
])
def test_invalid_records_are_refused_with_one_line(tmp_path, bad, words):
    with pytest.raises(ResultError) as info:
        write_record(tmp_path, minimal_record(**bad))
    assert words in str(info.value) and "\n" not in str(info.value)
    assert not list(tmp_path.rglob("*.json"))


def test_malformed_json_names_the_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{not json")
    with pytest.raises(ResultError, match="r.json: malformed JSON"):
        read_record(path)
    path.write_text(json.dumps(minimal_record()).replace("0.5", "NaN"))
    with pytest.raises(ResultError):
        read_record(path)


def test_slug_cannot_escape_its_folder():
    for name in ["../../etc/passwd", "/abs/path", "a/../b", "..", ""]:
        s = slug(name)
        assert "/" not in s and s not in ("..", ".", "")


def test_dumps_is_canonical():
    assert dumps(minimal_record()) == dumps(json.loads(dumps(minimal_record())))


def test_builtin_tasks_are_registered_with_versions():
    tasks = registry.all_tasks()
    assert "reconstruction" in tasks and tasks["reconstruction"].version


def test_duplicate_task_names_are_an_error(tmp_path):
    (tmp_path / "dupe.py").write_text(
        "from sae_bench.core.registry import register_task\nfrom sae_bench.core.task_api import Task\n"
        "@register_task\nclass Again(Task):\n    name = 'reconstruction'\n    version = '9'\n")
    with pytest.raises(registry.DuplicateTaskError, match="registered twice"):
        registry.include_path(tmp_path)


def test_include_path_adds_tasks_and_broken_files_are_loud(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    (good / "extra.py").write_text(
        "from sae_bench.core.registry import register_task\nfrom sae_bench.core.task_api import MetricSpec, Task\n"
        "@register_task\nclass Extra(Task):\n    name = 'extra_test_task'\n    version = '1'\n"
        "    metrics = (MetricSpec('score', 'higher', 'a score'),)\n")
    registry.include_path(good)
    assert registry.get_task("extra_test_task").version == "1"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.py").write_text("import does_not_exist_anywhere\n")
    with pytest.raises(InputError, match="broken.py: task file failed to import"):
        registry.include_path(bad)


def test_a_task_without_metric_specs_is_refused_loudly(tmp_path):
    (tmp_path / "nometrics.py").write_text(
        "from sae_bench.core.registry import register_task\nfrom sae_bench.core.task_api import Task\n"
        "@register_task\nclass NoMetrics(Task):\n    name = 'no_metrics_task'\n    version = '1'\n")
    with pytest.raises(InputError, match="nometrics.py: .*needs `metrics`"):
        registry.include_path(tmp_path)


def test_unknown_task_lists_known_ones():
    with pytest.raises(InputError, match="known: .*reconstruction"):
        registry.get_task("no_such_task")
