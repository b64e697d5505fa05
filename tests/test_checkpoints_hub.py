"""Hub checkpoints: only the hookpoint's files are requested, and a populated offline cache loads."""

import shutil

import pytest
import torch

import sae_bench.checkpoints.hub as hub
from sae_bench import load_checkpoint
from sae_bench.core.errors import CheckpointError, one_line
from sae_bench.fixtures import SAES_DIR

COMMIT = "0123456789abcdef0123456789abcdef01234567"
RUN = SAES_DIR / "sparsify/tiny-gemma4-8x"


@pytest.fixture
def offline(monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def test_sparsify_from_offline_cache(tmp_path, offline, fake_cache):
    files = {f"sae-run/layers.{i}/{n}": RUN / f"layers.{i}" / n for i in (1, 2) for n in ("cfg.json", "sae.safetensors")}
    fake_cache(tmp_path, "someone/tiny-loupe", commit=COMMIT, files=files)
    sae = load_checkpoint("someone/tiny-loupe", hookpoint="sae-run/layers.2", cache_dir=str(tmp_path))
    local = load_checkpoint(RUN, hookpoint="layers.2")
    assert sae.metadata.format == "sparsify" and sae.metadata.hookpoint == "layers.2"
    assert sae.metadata.checkpoint_id == "someone/tiny-loupe"
    assert sae.metadata.weights_sha256 == local.metadata.weights_sha256
    assert str(tmp_path) in sae.metadata.weights_path
    assert torch.equal(sae.W_enc, local.W_enc)
    pinned = load_checkpoint("someone/tiny-loupe", hookpoint="sae-run/layers.2", revision=COMMIT,
                             cache_dir=str(tmp_path))
    assert pinned.metadata.checkpoint_id == f"someone/tiny-loupe@{COMMIT}"
    assert pinned.metadata.extras["revision"] == COMMIT


def test_ernos_from_offline_cache(tmp_path, offline, fake_cache):
    ernos = SAES_DIR / "ernos"
    names = ("tiny_sae.safetensors", "sae_config.json", "feature_map.json")
    fake_cache(tmp_path, "someone/tiny-ernos", commit=COMMIT, files={n: ernos / n for n in names})
    sae = load_checkpoint("someone/tiny-ernos", format="ernos", cache_dir=str(tmp_path))
    assert sae.metadata.format == "ernos" and sae.feature_map is not None and len(sae.feature_map) == 27
    assert sae.metadata.source_model == "tiny-gemma4"


def test_missing_hookpoint_in_cache_is_one_line_error(tmp_path, offline, fake_cache):
    fake_cache(tmp_path, "someone/tiny-loupe", commit=COMMIT,
               files={"sae-run/layers.1/cfg.json": RUN / "layers.1/cfg.json"})
    with pytest.raises(CheckpointError) as info:
        load_checkpoint("someone/tiny-loupe", hookpoint="sae-run/layers.3", cache_dir=str(tmp_path))
    assert "someone/tiny-loupe" in str(info.value) and "\n" not in str(info.value)


def test_uncached_repo_offline_is_one_line_error(tmp_path, offline):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint("nobody/nothing", hookpoint="layers.2", cache_dir=str(tmp_path))
    assert str(info.value).startswith("nobody/nothing@main: cannot download") and "\n" not in str(info.value)


def test_only_the_hookpoint_files_are_requested(tmp_path, monkeypatch):
    calls = []
    snapshot = tmp_path / "snap"
    shutil.copytree(RUN / "layers.3", snapshot / "run/language_model.layers.3")

    def fake_snapshot_download(repo_id, *, revision=None, allow_patterns=None, cache_dir=None, **kw):
        calls.append((repo_id, revision, allow_patterns))
        return str(snapshot)

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot_download)
    sae = load_checkpoint("org/repo", hookpoint="run/language_model.layers.3", revision="v1")
    assert calls == [("org/repo", "v1", ["run/language_model.layers.3/*"])]
    assert sae.metadata.hookpoint == "language_model.layers.3"


def test_hub_id_without_hookpoint_is_refused_before_downloading(monkeypatch):
    monkeypatch.setattr("huggingface_hub.snapshot_download", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(CheckpointError, match="needs hookpoint="):
        load_checkpoint("org/repo")


@pytest.mark.parametrize("bad", ["../repo", "org/../../etc", "/etc/passwd", "org\\repo", "org/repo/extra", ".hidden/x"])
def test_traversal_hub_ids_never_reach_the_hub(bad, monkeypatch):
    monkeypatch.setattr("huggingface_hub.snapshot_download", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(bad, hookpoint="layers.2")
    assert one_line(bad) in str(info.value)  # named as the error line shows it (backslashes escaped)
    with pytest.raises(CheckpointError):
        hub.check_hub_id(bad)


def test_bad_revision(monkeypatch):
    monkeypatch.setattr("huggingface_hub.snapshot_download", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(CheckpointError, match="invalid revision"):
        load_checkpoint("org/repo", hookpoint="layers.2", revision="../../x")
