"""Fixture SAEs are in their families' exact layouts and trained ones clearly beat the untrained one.

fvu is computed here from the raw tensors (Σ‖x−x̂‖² / Σ‖x−μ‖²), independently of the builder and of
sae_bench's own loaders, on the held-out eval corpus.
"""

import json

import pytest
import torch
from safetensors.torch import load_file

from sae_bench.fixtures import EVAL_CORPUS_PATH, SAES_DIR, TINY_MODEL_DIR

F, D, K = 512, 64, 8


def fvu(x, x_hat):
    x, x_hat = x.double(), x_hat.double()
    return float((x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


@pytest.fixture(scope="module")
def acts():
    """Layer outputs at non-BOS, non-pad eval positions, and ErnOS's pooled final-norm vectors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(TINY_MODEL_DIR))
    model = AutoModelForCausalLM.from_pretrained(str(TINY_MODEL_DIR)).eval()
    texts = [json.loads(line)["text"] for line in EVAL_CORPUS_PATH.read_text().splitlines()]
    enc = tok(texts, padding="max_length", truncation=True, max_length=64, return_tensors="pt")
    seen = {}
    hooks = [model.model.layers[i].register_forward_hook(lambda m, a, o, i=i: seen.__setitem__(i, o)) for i in (1, 2, 3)]
    hooks.append(model.model.norm.register_forward_hook(lambda m, a, o: seen.__setitem__("norm", o)))
    with torch.no_grad():
        model(**enc)
    for h in hooks:
        h.remove()
    keep = enc["attention_mask"].bool() & (enc["input_ids"] != 2)
    out = {f"layers.{i}": seen[i][keep] for i in (1, 2, 3)}
    m = enc["attention_mask"].unsqueeze(-1).float()
    pooled = (seen["norm"] * m).sum(1) / m.sum(1)
    pooled = pooled / pooled.norm(dim=-1, keepdim=True)
    out["pooled"] = (pooled - pooled.mean()) / pooled.std()
    return out


def sparsify_fvu(folder, x):
    from sparsify import SparseCoder

    sae = SparseCoder.load_from_disk(folder)
    with torch.no_grad():
        enc = sae.encode(x)
        return fvu(x, sae.decode(enc.top_acts, enc.top_indices))


@pytest.fixture(scope="module")
def untrained_fvu(acts):
    return sparsify_fvu(SAES_DIR / "sparsify/untrained-8x/layers.2", acts["layers.2"])


def test_sparsify_layout_is_exact():
    for layer in (1, 2, 3):
        folder = SAES_DIR / f"sparsify/tiny-gemma4-8x/layers.{layer}"
        cfg = json.loads((folder / "cfg.json").read_text())
        assert cfg == {"activation": "topk", "expansion_factor": 8, "normalize_decoder": True, "num_latents": 0,
                       "k": K, "multi_topk": False, "skip_connection": False, "transcode": False, "d_in": D}
        t = load_file(folder / "sae.safetensors")
        assert {n: tuple(v.shape) for n, v in t.items()} == {
            "encoder.weight": (F, D), "encoder.bias": (F,), "W_dec": (F, D), "b_dec": (D,)}
        assert all(v.dtype == torch.float32 for v in t.values())
        assert torch.allclose(t["W_dec"].norm(dim=1), torch.ones(F), atol=1e-4)


@pytest.mark.parametrize("layer", [1, 2, 3])
def test_trained_sparsify_beats_untrained(acts, untrained_fvu, layer):
    trained = sparsify_fvu(SAES_DIR / f"sparsify/tiny-gemma4-8x/layers.{layer}", acts[f"layers.{layer}"])
    assert untrained_fvu > 0.4
    assert trained < 0.25 and trained < 0.5 * untrained_fvu, (trained, untrained_fvu)


@pytest.mark.parametrize("arch", ["standard", "topk", "jumprelu"])
def test_saelens_layout_and_quality(acts, untrained_fvu, arch):
    folder = SAES_DIR / f"saelens/{arch}-layers.2"
    cfg = json.loads((folder / "cfg.json").read_text())
    assert cfg["architecture"] == arch and cfg["d_in"] == D and cfg["d_sae"] == F
    assert cfg["hook_name"] == "layers.2" and cfg["normalize_activations"] == "none" and cfg["dtype"] == "float32"
    t = load_file(folder / "sae_weights.safetensors")
    shapes = {"W_enc": (D, F), "W_dec": (F, D), "b_enc": (F,), "b_dec": (D,)}
    if arch == "jumprelu":
        shapes["threshold"] = (F,)
    assert {n: tuple(v.shape) for n, v in t.items()} == shapes
    x = acts["layers.2"]
    pre = (x - t["b_dec"] * cfg["apply_b_dec_to_input"]) @ t["W_enc"] + t["b_enc"]
    if arch == "topk":
        top = pre.topk(cfg["k"], dim=-1)
        codes = torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
    elif arch == "jumprelu":
        codes = torch.relu(pre) * (pre > t["threshold"])
    else:
        codes = torch.relu(pre)
    assert fvu(x, codes @ t["W_dec"] + t["b_dec"]) < 0.5 * untrained_fvu
    l0 = float((codes != 0).float().sum(-1).mean())
    assert 1 <= l0 <= 128, l0  # actually sparse, and not dead


def test_ernos_files_share_weights_and_beat_random(acts):
    card = load_file(SAES_DIR / "ernos/tiny_sae.safetensors")
    code = load_file(SAES_DIR / "ernos/tiny_sae_codenames.safetensors")
    assert {n: tuple(v.shape) for n, v in card.items()} == {
        "encoder.weight": (F, D), "encoder.bias": (F,), "decoder.weight": (D, F)}
    assert {n: tuple(v.shape) for n, v in code.items()} == {"W_enc": (F, D), "b_enc": (F,), "W_dec": (D, F), "b_dec": (D,)}
    assert torch.equal(card["encoder.weight"], code["W_enc"]) and torch.equal(card["decoder.weight"], code["W_dec"])
    assert torch.equal(code["b_dec"], torch.zeros(D))
    x = acts["pooled"]
    recon = torch.relu(x @ card["encoder.weight"].T + card["encoder.bias"]) @ card["decoder.weight"].T
    # Baseline: the untrained sparsify weights applied the same ErnOS way (ReLU, no decoder bias).
    rnd = load_file(SAES_DIR / "sparsify/untrained-8x/layers.2/sae.safetensors")
    rnd_recon = torch.relu(x @ rnd["encoder.weight"].T + rnd["encoder.bias"]) @ rnd["W_dec"]
    trained, untrained = fvu(x, recon), fvu(x, rnd_recon)
    assert trained < 0.3 and trained < 0.5 * untrained, (trained, untrained)


def test_ernos_sidecars():
    cfg = json.loads((SAES_DIR / "ernos/sae_config.json").read_text())
    assert cfg == {"activation": "relu", "k": None, "threshold": None, "normalise": "l2", "standardise": "batch",
                   "hookpoint": "pooled_final_norm", "source_model": "tiny-gemma4"}
    fmap = json.loads((SAES_DIR / "ernos/feature_map.json").read_text())
    assert fmap["version"] == 1 and fmap["total_sae_features"] == F
    assert (SAES_DIR / "ernos" / fmap["sae_path"]).is_file()
    assert 20 <= fmap["mapped_count"] == len(fmap["mappings"]) <= 30
    for key, entry in fmap["mappings"].items():
        assert int(key) == entry["sae_index"] == entry["dict_index"] and 0 <= entry["sae_index"] < F
        assert entry["label"] and 0 < entry["confidence"] <= 1
    categories = {e["category"] for e in fmap["mappings"].values()}
    assert {"cognitive", "meta", "semantic", "linguistic", "safety:deception",
            "emotion:positivehigh", "emotion:negativehigh"} <= categories
