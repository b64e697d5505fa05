"""A suite file's task options: path options are relative to the suite's folder like its other paths, and
the command line overrides them option by option (never a whole task's options at once)."""

from __future__ import annotations

import json
import os

from sae_bench.cli import build_parser
from sae_bench.cli.run import run_config_from_args
from sae_bench.fixtures import SUITE_PATH
from sae_bench.runner import load_suite


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
    assert suite["task_options"]["sparse_probing"] == {"data_dir": "suites/data", "context_length": 32}
    assert suite["task_options"]["absorption"] == {"prompt_template": "{word}:"}  # not a path option
    monkeypatch.chdir(path.parent)
    assert load_suite(path)[0]["task_options"]["sparse_probing"]["data_dir"] == "data"


def test_the_command_line_overrides_a_suite_option_without_dropping_the_others(tmp_path, monkeypatch):
    monkeypatch.chdir(SUITE_PATH.parent.parent)
    args = build_parser().parse_args(["run", "--task-option", "absorption.max_words=20"])
    config, _ = run_config_from_args(args)
    suite_absorption = json.loads(SUITE_PATH.read_text())["task_options"]["absorption"]
    assert config.task_options["absorption"] == {**suite_absorption, "max_words": 20}
    assert config.task_options["sparse_probing"]["data_dir"] == os.path.join("fixtures", "sparse_probing")
