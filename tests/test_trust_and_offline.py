"""Issue 6, item 4: remote code stays off unless asked for, HF_HUB_OFFLINE=1 means no network at
all, and a hub checkpoint run fetches only the requested hookpoint's files.

(The loader-level allow_patterns check is tests/test_checkpoints_hub.py::
test_only_the_hookpoint_files_are_requested; here the same is checked through `sae-bench run`.)
"""

from __future__ import annotations

import json
import re
import shutil
import socket

import pytest

from sae_bench.cli import main
from sae_bench.core.errors import EXIT_BAD_INPUT, InputError
from sae_bench.fixtures import EVAL_CORPUS_PATH, SAES_DIR, TINY_MODEL_DIR
from sae_bench.models import ModelAdapter

PREFIX = "sae-bench: error: "
RUN = SAES_DIR / "sparsify/tiny-gemma4-8x"


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith(PREFIX) and "Traceback" not in stderr, stderr
    assert sum(line.startswith(PREFIX) for line in lines) == 1, stderr
    return lines[-1]


def run_argv(tmp_path, *extra, model=str(TINY_MODEL_DIR), checkpoint=f"{RUN}@layers.2"):
    return ["run", "--model", model, "--corpus", str(EVAL_CORPUS_PATH), "--seq-len", "32", "--max-documents", "4",
            "--tasks", "sparsity", "-c", checkpoint, "--results", str(tmp_path / "results"), "--no-cache",
            "--quiet", *extra]


def results_in(tmp_path):
    folder = tmp_path / "results"
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.json")) if folder.exists() else []


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to resolve a host or open a connection fails the test."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE=1 as the user sets it, with an empty hub cache."""
    import huggingface_hub.constants as constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache / "hub"))
    return cache


# ---------------------------------------------------------------------------- trust_remote_code
@pytest.fixture
def recorded_from_pretrained(monkeypatch):
    """Record the kwargs of every transformers from_pretrained call the loader makes (then delegate)."""
    import transformers

    calls = []
    for cls_name in ("AutoConfig", "AutoTokenizer", "AutoModelForCausalLM"):
        cls = getattr(transformers, cls_name)
        real = cls.from_pretrained.__func__

        def wrapped(klass, *args, _real=real, _name=cls_name, **kwargs):
            calls.append((_name, kwargs))
            return _real(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(wrapped))
    return calls


def test_adapter_load_defaults_trust_remote_code_off(recorded_from_pretrained):
    ModelAdapter.load(TINY_MODEL_DIR)
    names = {name for name, _ in recorded_from_pretrained}  # the model loader calls AutoConfig again itself
    assert names == {"AutoConfig", "AutoTokenizer", "AutoModelForCausalLM"}
    assert all(kwargs.get("trust_remote_code") is False for _, kwargs in recorded_from_pretrained)


def test_adapter_load_passes_trust_remote_code_when_asked(recorded_from_pretrained):
    ModelAdapter.load(TINY_MODEL_DIR, trust_remote_code=True)
    assert recorded_from_pretrained and all(kw.get("trust_remote_code") is True for _, kw in recorded_from_pretrained)


@pytest.fixture
def recorded_model_load(monkeypatch):
    """ModelAdapter.load records its kwargs and stops the command with an InputError."""
    calls = []

    def load(cls, ref, **kwargs):
        calls.append(kwargs)
        raise InputError(str(ref), "stopped by the test")

    monkeypatch.setattr(ModelAdapter, "load", classmethod(load))
    return calls


@pytest.mark.parametrize("flag, expected", [((), False), (("--trust-remote-code",), True)])
def test_cli_trust_remote_code_flag(flag, expected, recorded_model_load, tmp_path, capsys):
    assert main(run_argv(tmp_path, *flag)) == EXIT_BAD_INPUT
    assert "stopped by the test" in one_error_line(capsys.readouterr().err)
    assert [kw["trust_remote_code"] for kw in recorded_model_load] == [expected]


def test_maxact_cli_never_trusts_remote_code(recorded_model_load, tmp_path, capsys):
    from sae_bench.fixtures import MAXACT_DIR

    argv = ["maxact", "repro", "--model", str(TINY_MODEL_DIR), "--checkpoint", f"{RUN}@layers.2",
            "--parquet", str(MAXACT_DIR / "tiny-gemma4-8x_layers.2.parquet"), "--quiet"]
    assert main(argv) == EXIT_BAD_INPUT
    assert recorded_model_load and recorded_model_load[0].get("trust_remote_code", False) is False


def remote_code_model(tmp_path, model_type: str):
    """A copy of the fixture model whose config.json points (auto_map) at custom code that, if ever
    imported, leaves a marker file."""
    folder = tmp_path / "remote-code-model"
    shutil.copytree(TINY_MODEL_DIR, folder)
    marker = tmp_path / "REMOTE_CODE_RAN"
    code = (f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
            "from transformers import PretrainedConfig\n"
            f"class EvilConfig(PretrainedConfig):\n    model_type = {model_type!r}\n")
    (folder / "evil_code.py").write_text(code)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_type"] = model_type
    cfg["auto_map"] = {"AutoConfig": "evil_code.EvilConfig", "AutoModelForCausalLM": "evil_code.EvilModel"}
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder, marker


def test_custom_code_model_is_refused_without_the_flag(tmp_path, capsys, no_network):
    folder, marker = remote_code_model(tmp_path, "sae_bench_evil_remote")
    assert main(run_argv(tmp_path, model=str(folder))) == EXIT_BAD_INPUT
    line = one_error_line(capsys.readouterr().err)
    assert str(folder) in line and "trust_remote_code" in line, line
    assert not marker.exists(), "custom code was executed"
    assert results_in(tmp_path) == []


def test_auto_map_is_ignored_for_a_builtin_model_type(tmp_path):
    """A known model_type with an auto_map loads the library's own class; the custom code never runs."""
    folder, marker = remote_code_model(tmp_path, "gemma4_text")
    adapter = ModelAdapter.load(folder)
    assert type(adapter.model).__module__.startswith("transformers.models.gemma4")
    assert not marker.exists(), "custom code was executed"


# ---------------------------------------------------------------------------- HF_HUB_OFFLINE=1
def test_offline_uncached_model_id_exit_2_without_network(tmp_path, capsys, offline, no_network):
    assert main(run_argv(tmp_path, model="sae-bench-test/not-cached-model")) == EXIT_BAD_INPUT
    line = one_error_line(capsys.readouterr().err)
    assert "sae-bench-test/not-cached-model" in line and "offline" in line.lower(), line
    assert no_network == [] and results_in(tmp_path) == []


def test_offline_uncached_checkpoint_id_exit_2_without_network(tmp_path, capsys, offline, no_network):
    assert main(run_argv(tmp_path, checkpoint="sae-bench-test/not-cached-sae@layers.2")) == EXIT_BAD_INPUT
    line = one_error_line(capsys.readouterr().err)
    assert "sae-bench-test/not-cached-sae" in line and "cannot download" in line, line
    assert no_network == [] and results_in(tmp_path) == []


# ---------------------------------------------------------------------------- only the hookpoint's files
def test_cli_hub_checkpoint_fetches_only_its_hookpoint(tmp_path, monkeypatch, capsys, no_network):
    snapshot = tmp_path / "snapshot"
    shutil.copytree(RUN / "layers.2", snapshot / "sae-run/layers.2")
    calls = []

    def fake_snapshot_download(repo_id, *, revision=None, allow_patterns=None, cache_dir=None, **kw):
        calls.append((repo_id, allow_patterns))
        return str(snapshot)

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot_download)
    assert main(run_argv(tmp_path, checkpoint="someone/tiny-loupe@sae-run/layers.2")) == 0
    assert calls and all(call == ("someone/tiny-loupe", ["sae-run/layers.2/*"]) for call in calls)
    [found] = results_in(tmp_path)
    assert re.fullmatch(r"someone_tiny-loupe-[0-9a-f]{8}/layers\.2/sparsity\.json", found), found


def test_the_flag_does_run_custom_code(tmp_path, monkeypatch):
    """The counterpart (so the marker checks above can fail): with trust_remote_code the code runs."""
    import transformers.dynamic_module_utils as dmu

    monkeypatch.setattr(dmu, "HF_MODULES_CACHE", str(tmp_path / "hf-modules"))
    folder, marker = remote_code_model(tmp_path, "sae_bench_evil_remote")
    with pytest.raises(InputError):  # the fake code has no model class; its import already ran
        ModelAdapter.load(folder, trust_remote_code=True)
    assert marker.exists()
