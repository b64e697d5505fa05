"""A suite file's task options: path options are relative to the suite's folder like its other paths (and
records store them without the checkout's place), and the command line overrides them option by option
(never a whole task's options at once)."""

from __future__ import annotations

import json

from sae_bench.cli import build_parser
from sae_bench.cli.run import run_config_from_args
from sae_bench.fixtures import SUITE_PATH
from sae_bench.run.config import load_suite


def _suite(tmp_path, task_options):
    folder = tmp_path / "suites"
    folder.mkdir()
    path = folder / "suite.json"
    path.write_text(json.dumps({"model": str(SUITE_PATH.parent / "tiny-gemma4"), "corpus": "c.jsonl",
                                "checkpoints": [], "task_options": task_options}))
    return path


def test_a_path_option_is_relative_to_the_suite_folder_and_others_are_kept(tmp_path, monkeypatch):
    path = _suite(tmp_path, {"sparse_probing": {"data_dir": "data", "context_length": 32},
                             "absorption": {"prompt_template": "{word}:"}})
    monkeypatch.chdir(tmp_path)
    suite, _ = load_suite(path)
    assert suite["task_options"]["sparse_probing"] == {"data_dir": str((path.parent / "data").resolve()),
                                                       "context_length": 32}
    assert suite["task_options"]["absorption"] == {"prompt_template": "{word}:"}  # not a path option


def test_a_recorded_path_option_does_not_depend_on_where_the_run_starts(tmp_path, monkeypatch):
    from sae_bench.core.registry import get_task

    config_cls = get_task("sparse_probing").Config
    inside = config_cls(data_dir=str(SUITE_PATH.parent / "sparse_probing"))
    hashes = set()
    for where in (SUITE_PATH.parent.parent, tmp_path):
        monkeypatch.chdir(where)
        assert inside.to_json()["data_dir"] == "fixtures/sparse_probing"
        hashes.add(inside.config_hash())
    assert len(hashes) == 1


def test_the_command_line_overrides_a_suite_option_without_dropping_the_others(tmp_path, monkeypatch):
    monkeypatch.chdir(SUITE_PATH.parent.parent)
    args = build_parser().parse_args(["run", "--task-option", "absorption.max_words=20"])
    config, _ = run_config_from_args(args)
    suite_absorption = json.loads(SUITE_PATH.read_text())["task_options"]["absorption"]
    assert config.task_options["absorption"] == {**suite_absorption, "max_words": 20}
    assert config.task_options["sparse_probing"]["data_dir"] == str((SUITE_PATH.parent / "sparse_probing").resolve())
