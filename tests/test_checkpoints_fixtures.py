"""Every fixture checkpoint loads through load_checkpoint with the right shapes, semantics and metadata."""

import hashlib

import pytest
import torch
from safetensors.torch import load_file

from sae_bench.checkpoints import FeatureMap, load_checkpoint
from sae_bench.fixtures import SAES_DIR, load_suite
from sae_bench.checkpoints.sae import InputPreprocessing

F, D, K = 512, 64, 8
SPARSIFY_L2 = SAES_DIR / "sparsify/tiny-gemma4-8x/layers.2"
SAELENS = SAES_DIR / "saelens"
ERNOS = SAES_DIR / "ernos"


def inputs(n=64, seed=0, scale=3.0):
    return torch.randn(n, D, generator=torch.Generator().manual_seed(seed)) * scale


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("entry", load_suite()["checkpoints"], ids=lambda c: c["path"].split("saes/")[-1])
def test_every_suite_checkpoint_loads_with_full_metadata(entry):
    sae = load_checkpoint(entry["path"], hookpoint=entry["hookpoint"], format=entry["format"])
    auto = load_checkpoint(entry["path"], hookpoint=entry["hookpoint"])  # format detected
    m = sae.metadata
    assert (sae.d_in, sae.d_sae, m.d_in, m.d_sae) == (D, F, D, F)
    assert m.format == entry["format"] == auto.metadata.format
    assert m.hookpoint == entry["hookpoint"]
    assert m.checkpoint_id == entry["path"]
    assert m.dtype == "float32" and sae.dtype == torch.float32
    assert m.weights_sha256 == sha256(__import__("pathlib").Path(m.weights_path))
    assert len(m.weights_sha256) == 64
    codes = sae.encode(inputs())
    assert sae.decode(codes, inputs()).shape == (64, D)
    assert m.to_json()["activation"]["kind"] == m.activation.kind


def test_sparsify_metadata_and_run_folder_forms():
    by_folder = load_checkpoint(SPARSIFY_L2)
    by_run = load_checkpoint(SPARSIFY_L2.parent, hookpoint="layers.2")
    canonical = load_checkpoint(SPARSIFY_L2, hookpoint="language_model.layers.2")  # same layer, other naming
    for sae in (by_folder, by_run, canonical):
        assert sae.metadata.format == "sparsify" and sae.metadata.activation.kind == "topk"
        assert sae.metadata.activation.k == K and sae.subtract_decoder_bias
        assert sae.metadata.weights_path == str((SPARSIFY_L2 / "sae.safetensors").resolve())
    assert by_folder.metadata.hookpoint == by_run.metadata.hookpoint == "layers.2"
    assert by_folder.metadata.extras["sparsify_cfg"]["expansion_factor"] == 8
    assert torch.equal(by_folder.W_dec, by_run.W_dec)


def test_sparsify_matches_eai_sparsify_encode_decode():
    from sparsify import SparseCoder

    ref = SparseCoder.load_from_disk(SPARSIFY_L2)
    ours = load_checkpoint(SPARSIFY_L2.parent, hookpoint="layers.2", format="sparsify")
    x = inputs(128, seed=1)
    with torch.no_grad():
        enc = ref.encode(x)
        x_hat_ref = ref.decode(enc.top_acts, enc.top_indices)
    codes = ours.encode(x)
    dense_ref = torch.zeros(128, F).scatter(1, enc.top_indices, enc.top_acts)
    torch.testing.assert_close(codes.to_dense(), dense_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.decode(codes), x_hat_ref, rtol=1e-5, atol=1e-5)
    # the loaded cfg matches sparsify's own parse of the same cfg.json
    for field in ("k", "expansion_factor", "num_latents", "multi_topk", "skip_connection", "activation"):
        assert ours.metadata.extras["sparsify_cfg"][field] == getattr(ref.cfg, field)
    assert ours.d_sae == ref.num_latents


def raw_saelens(name):
    return load_file(str(SAELENS / name / "sae_weights.safetensors"))


def test_saelens_standard_is_relu_with_b_dec_subtracted():
    w = raw_saelens("standard-layers.2")
    sae = load_checkpoint(SAELENS / "standard-layers.2")
    assert sae.metadata.activation.kind == "relu" and sae.subtract_decoder_bias
    assert sae.metadata.source_model == "tiny-gemma4" and sae.metadata.hookpoint == "layers.2"
    assert not sae.W_enc.is_contiguous() and sae.W_enc.T.is_contiguous()  # W_enc [D,F] stays a transposed view
    x = inputs()
    expected = torch.relu((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"])
    torch.testing.assert_close(sae.encode(x).to_dense(), expected)


def test_saelens_topk_against_hand_computation():
    w = raw_saelens("topk-layers.2")
    sae = load_checkpoint(SAELENS / "topk-layers.2", format="saelens")
    assert sae.metadata.activation.kind == "topk" and sae.metadata.activation.k == K
    x = inputs(seed=2)
    pre = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]
    expected = torch.zeros_like(pre)
    for n in range(x.shape[0]):  # by hand: the K largest pre-activations, negatives zeroed
        order = sorted(range(F), key=lambda j: -float(pre[n, j]))[:K]
        for j in order:
            expected[n, j] = max(float(pre[n, j]), 0.0)
    codes = sae.encode(x)
    torch.testing.assert_close(codes.to_dense(), expected)
    assert int(codes.active_count().max()) <= K
    torch.testing.assert_close(sae.decode(codes), expected @ w["W_dec"] + w["b_dec"], rtol=1e-5, atol=1e-5)


def test_saelens_jumprelu_against_hand_computation():
    w = raw_saelens("jumprelu-layers.2")
    sae = load_checkpoint(SAELENS / "jumprelu-layers.2")
    assert sae.metadata.activation.kind == "jumprelu" and not sae.subtract_decoder_bias  # apply_b_dec_to_input false
    assert torch.equal(sae.threshold, w["threshold"].clamp_min(0))
    x = inputs(seed=3)
    pre = x @ w["W_enc"] + w["b_enc"]
    expected = torch.where(pre > w["threshold"], torch.relu(pre), torch.zeros_like(pre))
    codes = sae.encode(x).to_dense()
    torch.testing.assert_close(codes, expected)
    some_gated = ((pre > 0) & (pre <= w["threshold"])).any()
    assert some_gated, "the test must exercise the jump (positive pre-activations below threshold)"


def test_ernos_both_name_sets_reconstruct_identically():
    card = load_checkpoint(ERNOS / "tiny_sae.safetensors")
    code = load_checkpoint(ERNOS / "tiny_sae_codenames.safetensors")
    assert card.metadata.extras["tensor_names"] == "card" and code.metadata.extras["tensor_names"] == "code"
    assert card.metadata.extras["decoder_layout"] == code.metadata.extras["decoder_layout"] == "DF"
    assert not card.W_dec.is_contiguous()  # decoder [D,F] used as a transposed view, not copied
    assert torch.equal(card.b_dec, torch.zeros(D))  # missing decoder bias => zeros
    x = inputs(16, seed=4)
    x_card, c_card = card.reconstruct(x)
    x_code, c_code = code.reconstruct(x)
    torch.testing.assert_close(x_card, x_code)
    torch.testing.assert_close(c_card.to_dense(), c_code.to_dense())
    torch.testing.assert_close(card.splice(x), code.splice(x))


def test_ernos_metadata_from_sidecar_and_feature_map():
    sae = load_checkpoint(ERNOS / "tiny_sae.safetensors")
    m = sae.metadata
    assert m.format == "ernos" and m.hookpoint == "pooled_final_norm" and m.source_model == "tiny-gemma4"
    assert m.activation.kind == "relu" and not sae.subtract_decoder_bias
    assert m.preprocessing == InputPreprocessing("l2", "batch")
    assert isinstance(sae.feature_map, FeatureMap) and len(sae.feature_map.entries) == 27
    assert sae.feature_map.total_sae_features == F
    assert all(0 <= e.sae_index < F for e in sae.feature_map.entries)
    cats = sae.feature_map.by_category()
    assert sum(len(v) for v in cats.values()) == 27 and "linguistic" in cats


def test_ernos_semantics_by_hand():
    w = load_file(str(ERNOS / "tiny_sae_codenames.safetensors"))
    sae = load_checkpoint(ERNOS / "tiny_sae_codenames.safetensors")
    x = inputs(8, seed=5)
    xn = x / x.norm(dim=-1, keepdim=True)
    xs = (xn - xn.mean()) / xn.std()
    codes = torch.relu(xs @ w["W_enc"].T + w["b_enc"])
    torch.testing.assert_close(sae.reconstruct(x)[0], codes @ w["W_dec"].T + w["b_dec"], rtol=1e-5, atol=1e-5)


def test_device_moves_weights_and_tensors_are_shared_not_copied():
    sae = load_checkpoint(SPARSIFY_L2, device="cpu")
    again = load_checkpoint(SPARSIFY_L2, device=torch.device("cpu"))
    assert sae.device.type == "cpu" and torch.equal(sae.W_enc, again.W_enc)
    if torch.cuda.is_available():  # pragma: no cover - exercised on GPU machines
        on_gpu = load_checkpoint(SPARSIFY_L2, device="cuda")
        assert on_gpu.W_enc.is_cuda and on_gpu.W_dec.is_cuda and on_gpu.b_dec.is_cuda


@pytest.mark.parametrize("cfg_kwargs", [{"skip_connection": True}, {"multi_topk": True}, {"num_latents": 96}])
def test_sparsify_variants_match_eai_sparsify(tmp_path, cfg_kwargs):
    from sparsify import SparseCoder, SparseCoderConfig

    torch.manual_seed(0)
    coder = SparseCoder(16, SparseCoderConfig(expansion_factor=4, k=5, **cfg_kwargs))
    with torch.no_grad():
        coder.encoder.bias.normal_()
        coder.b_dec.normal_()
        if coder.W_skip is not None:
            coder.W_skip.normal_()
    coder.save_to_disk(tmp_path / "layers.0")
    ours = load_checkpoint(tmp_path, hookpoint="layers.0")
    assert ours.d_sae == coder.num_latents and ours.metadata.activation.k == 5
    x = torch.randn(32, 16)
    with torch.no_grad():
        enc = coder.encode(x)
        expected = coder.decode(enc.top_acts, enc.top_indices)
        if coder.W_skip is not None:
            expected = coder(x).sae_out  # forward adds x @ W_skip.T
    torch.testing.assert_close(ours.decode(ours.encode(x), x), expected, rtol=1e-5, atol=1e-5)
    if cfg_kwargs.get("multi_topk"):
        assert "multi_topk" in ours.metadata.extras["note"]
