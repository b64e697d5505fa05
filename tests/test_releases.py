"""The release registry (one packaged data file), its CLI, `--release`/`NAME:LAYER` expansion, the model
default, and hub folders loaded from an offline cache fetching only the requested folder."""

import argparse

import pytest
import torch

from sae_bench.inputs import releases
from sae_bench import load_checkpoint
from sae_bench.cli import build_parser, main
from sae_bench.cli.run import run_config_from_args
from sae_bench.core.errors import InputError
from sae_bench.fixtures import EVAL_CORPUS_PATH, FIXTURES_DIR, TINY_MODEL_DIR
from sae_bench.models.identity import mismatch_problem, model_key
from sae_bench.records.results import read_record

COMMIT = "89abcdef0123456789abcdef0123456789abcdef"
SAE_ID = "tiny-gemma4/btk-mat-layer-2-k-8"
DECODERESEARCH = FIXTURES_DIR / "saes/decoderesearch-gemma-4-saes"


def test_listing_has_the_five_families(capsys):
    assert main(["releases"]) == 0
    out = capsys.readouterr().out
    for hub in ("rhizomatous/gemma-loupe", "MettaMazza/gemma4-sae", "decoderesearch/gemma-4-saes",
                "atawfeek/gemma-4-e4b-it-saes", "google/gemma-scope-2-1b-pt"):
        assert hub in out, hub
    assert len({r.hub for r in releases.releases().values()}) >= 5
    for fmt in ("sparsify", "ernos", "saelens", "gemma_scope"):
        assert f" {fmt} " in out


def test_release_expands_to_hub_paths():
    loupe = releases.expand("gemma-loupe", [6, 17, 28])
    assert [(c.ref, c.subfolder, c.hookpoint) for c in loupe] == [
        ("rhizomatous/gemma-loupe", f"sae-gemma-4-E2B-32x-1B/language_model.layers.{n}", f"layers.{n}")
        for n in (6, 17, 28)]
    assert {c.model for c in loupe} == {"google/gemma-4-E2B"}
    e2b = releases.expand("decoderesearch-gemma-4-e2b")
    assert [c.subfolder for c in e2b] == [f"gemma-4-e2b/btk-mat-layer-{n}-k-100" for n in (6, 17, 28)]
    (ernos,) = releases.expand("ernos")
    assert ernos.subfolder is None and ernos.hookpoint == "pooled_final_norm" and ernos.format == "ernos"
    assert releases.parse_short_ref("gemma-loupe:17") == releases.expand("gemma-loupe", [17])[0]
    with pytest.raises(InputError, match="unknown release; .*known: atawfeek"):  # never "no such file" (issue 22)
        releases.parse_short_ref("not-a-release:3")
    assert releases.parse_short_ref("sae.safetensors:3") is None  # a file name: left to the path checks
    with pytest.raises(InputError, match="publishes layers 6, 17, 28 only"):
        releases.expand("decoderesearch-gemma-4-e2b", [5])
    with pytest.raises(InputError, match="unknown release"):
        releases.expand("nope")


def _run_args(*argv) -> argparse.Namespace:
    return build_parser().parse_args(["run", *argv])


def test_cli_release_and_short_refs_expand_and_default_the_model():
    config, specs = run_config_from_args(_run_args("--release", "gemma-loupe", "--layers", "6,17,28",
                                                   "--corpus", "c.jsonl"))
    assert config.model == "google/gemma-4-E2B"
    assert [(s.ref, s.hookpoint, s.format, s.label, s.trained_on) for s in specs] == [
        ("rhizomatous/gemma-loupe", f"sae-gemma-4-E2B-32x-1B/language_model.layers.{n}", "sparsify",
         f"gemma-loupe:{n}", "google/gemma-4-E2B") for n in (6, 17, 28)]
    config, specs = run_config_from_args(_run_args("-c", "gemma-loupe:17", "--corpus", "c.jsonl"))
    assert config.model == "google/gemma-4-E2B" and specs[0].hookpoint.endswith("layers.17")
    config, _ = run_config_from_args(_run_args("-c", "gemma-loupe:17", "--model", "my/model", "--corpus", "c"))
    assert config.model == "my/model"  # an explicit --model wins (and the guard then checks it)
    with pytest.raises(InputError, match="--layers"):
        run_config_from_args(_run_args("--layers", "1", "--model", "m", "--corpus", "c"))
    with pytest.raises(InputError, match="layer numbers"):
        run_config_from_args(_run_args("--release", "gemma-loupe", "--layers", "6,x", "--corpus", "c"))


@pytest.mark.parametrize("a, b, same", [
    ("google/gemma-4-E2B", "/models/gemma-4-e2b/", True), ("google/gemma-4-E4B", "google/gemma-4-E4B-it", False),
    ("google/gemma-4-E2B", "google/gemma-4-E4B", False), ("tiny-gemma4", "fixtures/tiny-gemma4", True),
    ("x/gemma-3-270m-gguf", "/m/gemma-3-270m.gguf", True)])
def test_model_identity(a, b, same):
    assert (model_key(a) == model_key(b)) is same
    assert (mismatch_problem(a, b) is None) is same
    if not same and "it" in b:
        assert "base vs instruction-tuned" in mismatch_problem(a, b)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch, fake_cache):
    """An offline hub cache holding a decoderesearch-style repo with two SAE folders; records the
    allow_patterns of every snapshot_download (which really runs, from the cache)."""
    import huggingface_hub
    import huggingface_hub.constants as constants

    files = {}
    for sae_id in (SAE_ID, "tiny-gemma4/btk-mat-layer-3-k-8"):
        for name in ("cfg.json", "sae_weights.safetensors"):
            files[f"{sae_id}/{name}"] = DECODERESEARCH / SAE_ID / name
    fake_cache(tmp_path / "hub", "someone/tiny-gemma-4-saes", commit=COMMIT, files=files)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    calls = []
    real = huggingface_hub.snapshot_download

    def recording(repo_id, **kw):
        calls.append((repo_id, kw.get("allow_patterns")))
        return real(repo_id, **kw)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", recording)
    return calls


def test_hub_folder_from_offline_cache_fetches_only_it(hub_cache):
    sae = load_checkpoint("someone/tiny-gemma-4-saes", hookpoint=SAE_ID)
    local = load_checkpoint(DECODERESEARCH / SAE_ID)
    assert hub_cache == [("someone/tiny-gemma-4-saes", [f"{SAE_ID}/*"])]
    assert sae.metadata.format == "saelens" and sae.metadata.hookpoint == "blocks.2.hook_resid_post"
    assert sae.metadata.checkpoint_id == "someone/tiny-gemma-4-saes"
    assert torch.equal(sae.W_enc, local.W_enc) and sae.metadata.weights_sha256 == local.metadata.weights_sha256


def test_cli_hub_id_with_subfolder_runs_offline(hub_cache, tmp_path):
    argv = ["run", "--model", str(TINY_MODEL_DIR), "--corpus", str(EVAL_CORPUS_PATH), "--seq-len", "32",
            "--max-documents", "6", "--tasks", "reconstruction", "--no-cache", "--quiet",
            "--results", str(tmp_path / "results"), "-c", f"someone/tiny-gemma-4-saes@{SAE_ID}",
            "-c", "someone/tiny-gemma-4-saes@tiny-gemma4/btk-mat-layer-3-k-8"]
    assert main(argv) == 0
    records = [read_record(p) for p in sorted((tmp_path / "results").rglob("*.json"))]
    # two folders of one repo, both reading layers.2: the folder is part of each checkpoint's id
    assert sorted(r.checkpoint_id for r in records) == [f"someone/tiny-gemma-4-saes@{SAE_ID}",
                                                        "someone/tiny-gemma-4-saes@tiny-gemma4/btk-mat-layer-3-k-8"]
    for record in records:
        assert record.hookpoint == "layers.2" and record.data["checkpoint"]["hookpoint"] == "blocks.2.hook_resid_post"
    assert {c[1][0] for c in hub_cache} == {f"{SAE_ID}/*", "tiny-gemma4/btk-mat-layer-3-k-8/*"}
