"""The CLI package: every option documented with its default, one checkpoint-reference parser,
run options declared once on RunConfig and validated in one place."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from sae_bench.cli import build_parser, main, subcommand_modules, subcommands
from sae_bench.core.errors import InputError
from sae_bench.core.options import flag_of, option_fields
from sae_bench import CheckpointSpec, RunConfig


def _parsers(parser: argparse.ArgumentParser, path=("sae-bench",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, path + (name,))


def test_every_option_has_help_and_shows_a_non_trivial_default():
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or not action.option_strings:
                continue
            where = f"{' '.join(path)} {action.option_strings[0]}"
            assert action.help, f"{where} has no help text"
            if action.default not in (None, [], False):
                assert "default" in action.help, f"{where} does not show its default {action.default!r}"


def test_subcommands_are_the_package_modules_and_the_tasks_commands():
    names = list(subcommands())
    assert names[:2] == ["run", "tasks"]
    assert {"compare", "gate", "leaderboard", "maxact", "fixtures"} <= set(names)
    assert subcommands()["maxact"] == "sae_bench.tasks.maxact_repro.command"  # the task's own folder
    assert [m.__name__ for m in subcommand_modules()] == list(subcommands().values())
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(names) == set(sub.choices)


def test_run_options_are_runconfig_fields_with_their_defaults():
    parser = build_parser()
    run = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["run"]
    flags = {s for a in run._actions for s in a.option_strings}
    for f in option_fields(RunConfig).values():
        assert flag_of(f) in flags
        if f.default not in (dataclasses.MISSING, None, False, True) and flag_of(f) != "--cache-dir":
            action = next(a for a in run._actions if flag_of(f) in a.option_strings)
            assert f"(default: {f.default})" in action.help or "default: the suite" in action.help


@pytest.mark.parametrize("text, ref, hookpoint", [
    ("org/repo", "org/repo", None),
    ("org/repo@layers.3", "org/repo", "layers.3"),
    ("a@b@layers.3", "a@b", "layers.3"),
    ("org/repo@", "org/repo", None),
])
def test_checkpoint_reference_parser(text, ref, hookpoint):
    spec = CheckpointSpec.parse(text)
    assert (spec.ref, spec.hookpoint) == (ref, hookpoint)


def test_an_existing_path_with_at_sign_is_a_reference(tmp_path):
    folder = tmp_path / "sae@v2"
    folder.mkdir()
    spec = CheckpointSpec.parse(str(folder))
    assert (spec.ref, spec.hookpoint) == (str(folder), None)


@pytest.mark.parametrize("field, value, message", [
    ("batch_size", 0, "--batch-size 0: must be a positive integer"),
    ("batch_size", True, "--batch-size True: must be a positive integer"),
    ("seq_len", 1, "--seq-len 1: must be an integer >= 2"),
    ("dtype", "float33", "--dtype float33: not a torch dtype"),
])
def test_runconfig_check_names_the_flag(tmp_path, field, value, message):
    config = RunConfig(model="m", corpus="c", results_dir=tmp_path, **{field: value})
    with pytest.raises(InputError) as err:
        config.check()
    assert str(err.value) == message


def test_cli_and_api_reject_the_same_value_with_the_same_line(tmp_path, capsys):
    code = main(["run", "--model", "m", "--corpus", "c", "--results", str(tmp_path), "--dtype", "float33"])
    assert code == 2
    assert capsys.readouterr().err.strip() == "sae-bench: error: --dtype float33: not a torch dtype"
    assert not any(tmp_path.iterdir())
