"""The Gemma SAE family layouts load exactly as their own code computes them (issue 14).

References are written here from the published semantics, sharing no code with the loaders:
SAELens 6 JumpReLU (relu(pre) * (pre > threshold), x - b_dec when apply_b_dec_to_input), the Gemma
Scope 2 tutorial (x @ w_enc + b_enc, JumpReLU, x_hat = codes @ w_dec + b_dec + x @ affine_skip_connection)
and sparsify's own SparseCoder for transcoders.
"""

import json

import pytest
import torch
from safetensors.torch import load_file

from sae_bench.checkpoints import detect_format, load_checkpoint
from sae_bench.checkpoints.formats.gemma_scope import parse_folder_name, parse_width
from sae_bench.core.errors import CheckpointError
from sae_bench.fixtures import FIXTURES_DIR, FORMATS_SUITE_PATH

FORMATS = {c["path"]: c for c in json.loads(FORMATS_SUITE_PATH.read_text())["checkpoints"]}
DECODERESEARCH = FIXTURES_DIR / "saes/decoderesearch-gemma-4-saes/tiny-gemma4/btk-mat-layer-2-k-8"
IT_CONTINUATION = FIXTURES_DIR / "saes/gemma-4-it-saes/tiny-gemma4-it/btk-mat-layer-2-k-8"
GS_SAE = FIXTURES_DIR / "saes/gemma-scope-2-tiny/resid_post/layer_2_width_256_l0_small"
GS_TRANSCODER = FIXTURES_DIR / "saes/gemma-scope-2-tiny/transcoder/layer_2_width_256_l0_small"
SPARSIFY_TRANSCODER = FIXTURES_DIR / "saes/sparsify/tiny-gemma4-transcoder"


def _x(d=64, n=40, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) * 3


def test_fixtures_are_in_the_formats_suite():
    for path in (DECODERESEARCH, GS_SAE, GS_TRANSCODER, SPARSIFY_TRANSCODER):
        assert path.relative_to(FIXTURES_DIR).as_posix() in FORMATS
    assert sorted(p.name for p in DECODERESEARCH.iterdir()) == ["cfg.json", "sae_weights.safetensors"]
    assert sorted(p.name for p in GS_SAE.iterdir()) == ["params.safetensors"]


def test_saelens6_decoderesearch_folder():
    cfg = json.loads((DECODERESEARCH / "cfg.json").read_text())
    assert cfg["architecture"] == "jumprelu" and "hook_name" not in cfg
    assert cfg["metadata"]["hook_name"] == "blocks.2.hook_resid_post" and cfg["metadata"]["model_name"] == "tiny-gemma4"
    sae = load_checkpoint(DECODERESEARCH)
    assert detect_format(DECODERESEARCH) == "saelens"
    assert sae.metadata.hookpoint == "blocks.2.hook_resid_post" and sae.metadata.source_model == "tiny-gemma4"
    raw = load_file(DECODERESEARCH / "sae_weights.safetensors")
    assert raw["threshold"].unique().numel() == 1  # BatchTopK saved as JumpReLU: one threshold for all latents
    x = _x()
    pre = (x - raw["b_dec"]) @ raw["W_enc"] + raw["b_enc"]
    codes = torch.relu(pre) * (pre > raw["threshold"])
    expected = codes @ raw["W_dec"] + raw["b_dec"]
    x_hat, got = sae.reconstruct(x)
    assert torch.allclose(got.to_dense(), codes, atol=1e-5) and torch.allclose(x_hat, expected, atol=1e-4)
    it = load_checkpoint(IT_CONTINUATION)
    assert it.metadata.source_model == "tiny-gemma4-it" and it.metadata.format == "saelens"


def test_saelens_hub_subfolder_names_no_hookpoint():
    """`REPO@model/sae_id`: the subfolder is only where the files are; the cfg's hook_name is where it reads."""
    root = DECODERESEARCH.parent.parent
    sae = load_checkpoint(root, hookpoint="tiny-gemma4/btk-mat-layer-2-k-8")
    assert sae.metadata.hookpoint == "blocks.2.hook_resid_post"


@pytest.mark.parametrize("name, expected", [
    ("layer_12_width_16k_l0_small", {"layer": 12, "width": 16384, "l0": "small"}),
    ("layer_7_width_1m_l0_big", {"layer": 7, "width": 1 << 20, "l0": "big"}),
    ("layer_3_width_262k_l0_medium", {"layer": 3, "width": 262144, "l0": "medium"}),
    ("layer_2_width_256_l0_71", {"layer": 2, "width": 256, "l0": 71}),
    ("something_else", {}),
])
def test_gemma_scope_folder_names(tmp_path, name, expected):
    assert parse_folder_name(tmp_path / name) == expected
    assert parse_folder_name(tmp_path / "transcoder" / name)["site"] == "transcoder"
    assert parse_width("65k") == 65536 and parse_width("x") is None


def test_gemma_scope_sae_matches_the_tutorial():
    raw = load_file(GS_SAE / "params.safetensors")
    assert set(raw) == {"w_enc", "b_enc", "threshold", "w_dec", "b_dec"}
    sae = load_checkpoint(GS_SAE)
    assert sae.metadata.format == "gemma_scope" and sae.metadata.hookpoint == "layers.2"
    assert sae.metadata.output_hookpoint is None and sae.d_sae == 256
    assert sae.metadata.extras["l0"] == "small"
    x = _x(seed=1)
    pre = x @ raw["w_enc"] + raw["b_enc"]
    expected = ((pre > raw["threshold"]) * torch.relu(pre)) @ raw["w_dec"] + raw["b_dec"]
    assert torch.allclose(sae.reconstruct(x)[0], expected, atol=1e-4)


def test_gemma_scope_transcoder_uses_the_untransposed_skip():
    raw = load_file(GS_TRANSCODER / "params.safetensors")
    assert "affine_skip_connection" in raw
    tc = load_checkpoint(GS_TRANSCODER)
    assert tc.is_transcoder and (tc.metadata.hookpoint, tc.metadata.output_hookpoint) == ("layers.2.mlp_in",
                                                                                       "layers.2.mlp_out")
    x = _x(seed=2)
    pre = x @ raw["w_enc"] + raw["b_enc"]
    expected = ((pre > raw["threshold"]) * torch.relu(pre)) @ raw["w_dec"] + raw["b_dec"] + x @ raw["affine_skip_connection"]
    assert torch.allclose(tc.reconstruct(x)[0], expected, atol=1e-4)
    assert not torch.allclose(raw["affine_skip_connection"], raw["affine_skip_connection"].T)


def test_gemma_scope_needs_a_layer_and_checks_the_width(tmp_path):
    bad = tmp_path / "resid_post" / "width_256_l0_small"
    bad.mkdir(parents=True)
    (bad / "params.safetensors").write_bytes((GS_SAE / "params.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="layer"):
        load_checkpoint(bad)
    assert load_checkpoint(bad, layer=3).metadata.hookpoint == "layers.3"
    wrong = tmp_path / "resid_post" / "layer_2_width_16k_l0_small"
    wrong.mkdir(parents=True)
    (wrong / "params.safetensors").write_bytes((GS_SAE / "params.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="width 16384"):
        load_checkpoint(wrong)
    assert load_checkpoint(wrong, width=256, site="mlp_out").metadata.hookpoint == "layers.2.mlp_out"


def test_sparsify_transcoder_matches_sparsify():
    from sparsify import SparseCoder

    tc = load_checkpoint(SPARSIFY_TRANSCODER, hookpoint="layers.2.mlp")
    assert tc.is_transcoder and (tc.metadata.hookpoint, tc.metadata.output_hookpoint) == ("layers.2.mlp_in",
                                                                                       "layers.2.mlp")
    assert tc.metadata.source_model == "tiny-gemma4"  # from the run's config.json
    coder = SparseCoder.load_from_disk(SPARSIFY_TRANSCODER / "layers.2.mlp", device="cpu")
    assert coder.cfg.transcode and coder.W_skip is not None
    x = _x(seed=3)
    with torch.no_grad():
        enc = coder.encode(x)
        expected = coder.decode(enc.top_acts, enc.top_indices) + x @ coder.W_skip.mT
    assert torch.allclose(tc.reconstruct(x)[0], expected, atol=1e-4)


def test_sparsify_transcoder_only_at_mlp_hookpoints(tmp_path):
    import shutil

    shutil.copytree(SPARSIFY_TRANSCODER / "layers.2.mlp", tmp_path / "layers.2")
    with pytest.raises(CheckpointError, match="MLP hookpoints"):
        load_checkpoint(tmp_path, hookpoint="layers.2")


def test_formats_suite_is_what_the_builder_writes():
    from sae_bench.fixtures.build import MODEL_NAME
    from sae_bench.fixtures.format_saes import formats_suite, paths

    assert json.loads(FORMATS_SUITE_PATH.read_text()) == formats_suite(MODEL_NAME)
    for rel in paths(MODEL_NAME).values():
        assert (FIXTURES_DIR / rel).is_dir(), rel
