"""ErnOS loader: decoder orientation by shape, explicit layout for square SAEs, settings precedence."""

import json

import pytest
import torch
from safetensors.torch import save_file

from sae_bench import load_checkpoint
from sae_bench.core.errors import CheckpointError
from sae_bench.checkpoints.sae import InputPreprocessing

F, D = 24, 6


def weights(F=F, D=D, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"W_enc": torch.randn(F, D, generator=g), "b_enc": torch.randn(F, generator=g) * 0.1,
            "W_dec": torch.randn(F, D, generator=g), "b_dec": torch.randn(D, generator=g)}


def save(path, tensors):
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


def test_decoder_orientation_detected_by_shape(tmp_path):
    w = weights()
    df = save(tmp_path / "df.safetensors", {**w, "W_dec": w["W_dec"].T})  # ErnOS: feature per column
    fd = save(tmp_path / "fd.safetensors", w)
    card = save(tmp_path / "card.safetensors", {"encoder.weight": w["W_enc"], "encoder.bias": w["b_enc"],
                                                "decoder.weight": w["W_dec"].T, "decoder.bias": w["b_dec"]})
    loaded = [load_checkpoint(p, normalise="none", standardise="none") for p in (df, fd, card)]
    assert [s.metadata.extras["decoder_layout"] for s in loaded] == ["DF", "FD", "DF"]
    x = torch.randn(10, D)
    for sae in loaded:
        assert torch.equal(sae.W_dec, w["W_dec"])
        torch.testing.assert_close(sae.reconstruct(x)[0], torch.relu(x @ w["W_enc"].T + w["b_enc"]) @ w["W_dec"] + w["b_dec"])


def test_square_decoder_needs_explicit_layout(tmp_path):
    w = weights(F=D)
    path = save(tmp_path / "sq.safetensors", w)
    with pytest.raises(CheckpointError, match="ambiguous.*decoder_layout") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    fd = load_checkpoint(path, decoder_layout="FD")
    df = load_checkpoint(path, decoder_layout="DF")
    assert torch.equal(fd.W_dec, w["W_dec"]) and torch.equal(df.W_dec, w["W_dec"].T)
    (tmp_path / "sae_config.json").write_text(json.dumps({"decoder_layout": "DF"}))
    assert torch.equal(load_checkpoint(path).W_dec, w["W_dec"].T)  # sidecar settles it too


def test_defaults_without_sidecar(tmp_path):
    path = save(tmp_path / "sae.safetensors", weights())
    sae = load_checkpoint(path)
    m = sae.metadata
    assert m.activation.kind == "relu" and m.hookpoint == "pooled_final_norm" and m.source_model is None
    assert m.preprocessing == InputPreprocessing("l2", "batch") and not sae.subtract_decoder_bias
    assert set(m.extras["settings_origin"].values()) == {"default"}
    assert sae.feature_map is None


def test_options_override_sidecar_which_overrides_defaults(tmp_path):
    path = save(tmp_path / "sae.safetensors", weights())
    (tmp_path / "sae_config.json").write_text(json.dumps({
        "activation": "topk", "k": 5, "threshold": None, "normalise": "none", "standardise": "none",
        "hookpoint": "layers.3", "source_model": "gemma-4-26b"}))
    side = load_checkpoint(path)
    assert side.metadata.activation.kind == "topk" and side.metadata.activation.k == 5
    assert side.metadata.hookpoint == "layers.3" and side.metadata.source_model == "gemma-4-26b"
    assert side.metadata.preprocessing.is_identity
    assert side.metadata.extras["settings_origin"]["k"] == "sidecar"
    opt = load_checkpoint(path, hookpoint="pooled_final_norm", activation="jumprelu", threshold=0.25,
                          standardise="fixed", mean=0.5, std=2.0, k=None)
    m = opt.metadata
    assert m.activation.kind == "jumprelu" and m.activation.threshold == 0.25 and m.activation.k is None
    assert m.hookpoint == "pooled_final_norm" and m.source_model == "gemma-4-26b"
    assert m.preprocessing == InputPreprocessing("none", "fixed", 0.5, 2.0)
    origin = m.extras["settings_origin"]
    assert (origin["activation"], origin["threshold"], origin["normalise"], origin["k"]) == (
        "option", "option", "sidecar", "sidecar")
    x = torch.randn(7, D)
    pre = ((x - 0.5) / 2.0) @ opt.W_enc.T + opt.b_enc
    torch.testing.assert_close(opt.encode((x - 0.5) / 2.0).to_dense(), pre * (pre > 0.25))
    top = load_checkpoint(path, k=3)
    assert top.metadata.activation.k == 3 and int(top.encode(x).active_count().max()) <= 3


@pytest.mark.parametrize("sidecar,words", [
    ({"activation": "gelu"}, ("activation", "gelu")),
    ({"k": 0}, ("k", "positive integer")),
    ({"threshold": "low"}, ("threshold", "number")),
    ({"std": -1}, ("std", "positive")),
    ({"treshold": 0.1}, ("unknown key 'treshold'",)),
    ({"activation": "jumprelu"}, ("needs a threshold",)),
    ({"standardise": "fixed"}, ("needs mean and std",)),
])
def test_bad_sidecar(tmp_path, sidecar, words):
    path = save(tmp_path / "sae.safetensors", weights())
    (tmp_path / "sae_config.json").write_text(json.dumps(sidecar))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    # errors in the sidecar name the sidecar; missing companions (k, threshold, mean/std) name the weights file
    assert str(tmp_path / "sae_config.json") in str(info.value) or str(path) in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_bad_option_values_name_the_option(tmp_path):
    path = save(tmp_path / "sae.safetensors", weights())
    with pytest.raises(CheckpointError, match="^option normalise: normalise must be one of none, l2"):
        load_checkpoint(path, normalise="zscore")
    with pytest.raises(CheckpointError, match="^option subtract_decoder_bias"):
        load_checkpoint(path, subtract_decoder_bias="yes")


def test_subtract_decoder_bias_option(tmp_path):
    w = weights()
    path = save(tmp_path / "sae.safetensors", w)
    sae = load_checkpoint(path, normalise="none", standardise="none", subtract_decoder_bias=True)
    x = torch.randn(5, D)
    torch.testing.assert_close(sae.encode(x).to_dense(), torch.relu((x - w["b_dec"]) @ w["W_enc"].T + w["b_enc"]))


def test_feature_map_option_and_folder_ref(tmp_path):
    w = weights()
    folder = tmp_path / "repo"
    folder.mkdir()
    path = save(folder / "only.safetensors", w)
    fmap = tmp_path / "labels.json"
    fmap.write_text(json.dumps({"version": 1, "sae_path": "only.safetensors", "total_sae_features": F,
                                "mappings": {"2": {"sae_index": 2, "dict_index": 2, "label": "x",
                                                   "category": "meta", "confidence": 0.1}}}))
    sae = load_checkpoint(folder, feature_map=str(fmap))  # folder with one .safetensors => ErnOS
    assert sae.metadata.weights_path == str(path.resolve())
    assert [e.sae_index for e in sae.feature_map.entries] == [2]
    assert sae.metadata.extras["feature_map_path"] == str(fmap)


def test_half_precision_checkpoints_keep_their_dtype(tmp_path):
    w = {k: v.to(torch.bfloat16) for k, v in weights().items()}
    sae = load_checkpoint(save(tmp_path / "bf16.safetensors", w))
    assert sae.metadata.dtype == "bfloat16" and sae.dtype == torch.bfloat16 and sae.b_dec.dtype == torch.bfloat16
    mixed = {**weights(), "W_dec": weights()["W_dec"].half()}
    with pytest.raises(CheckpointError, match="mixed-precision"):
        load_checkpoint(save(tmp_path / "mixed.safetensors", mixed))
