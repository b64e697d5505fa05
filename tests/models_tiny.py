"""Tiny models shared by the tests/test_models_*.py files (no downloads, random or fixture weights)."""

from __future__ import annotations

import torch

from sae_bench.fixtures import TINY_MODEL_DIR


def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY_MODEL_DIR)


def causal_adapter():
    from sae_bench.models import ModelAdapter

    return ModelAdapter.load(TINY_MODEL_DIR)


def conditional_model():
    """Gemma4ForConditionalGeneration (no vision/audio towers) carrying the fixture's language model weights."""
    from transformers import AutoConfig, AutoModelForCausalLM, Gemma4Config, Gemma4ForConditionalGeneration

    causal = AutoModelForCausalLM.from_pretrained(TINY_MODEL_DIR)
    text_config = AutoConfig.from_pretrained(TINY_MODEL_DIR)
    config = Gemma4Config(text_config=text_config.to_dict(), vision_config=None, audio_config=None)
    torch.manual_seed(0)
    model = Gemma4ForConditionalGeneration(config)
    model.model.language_model.load_state_dict(causal.model.state_dict())
    return model.eval()


def conditional_adapter():
    from sae_bench.models import ModelAdapter

    return ModelAdapter.from_pretrained_model(conditional_model(), tokenizer(), model_id="tiny-gemma4-conditional")


def llama_adapter():
    from transformers import LlamaConfig, LlamaForCausalLM

    from sae_bench.models import ModelAdapter

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                         num_attention_heads=2, num_key_value_heads=1, pad_token_id=0, bos_token_id=2, eos_token_id=1)
    return ModelAdapter.from_pretrained_model(LlamaForCausalLM(config), tokenizer(), model_id="tiny-llama")


def gemma3_adapter(softcap: float | None = None):
    """A tiny random Gemma3ForCausalLM (Gemma 3 270M's layout: sliding/full layers, tied lm_head)."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from sae_bench.models import ModelAdapter

    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=32, sliding_window=16,
                              layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
                              final_logit_softcapping=softcap, pad_token_id=0, bos_token_id=2, eos_token_id=1)
    model = Gemma3ForCausalLM(config)
    return ModelAdapter.from_pretrained_model(model, tokenizer(), model_id="tiny-gemma3")


def gpt2_adapter():
    from transformers import GPT2Config, GPT2LMHeadModel

    from sae_bench.models import ModelAdapter

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=512, n_embd=32, n_layer=3, n_head=2, n_positions=128)
    return ModelAdapter.from_pretrained_model(GPT2LMHeadModel(config), tokenizer(), model_id="tiny-gpt2")


def padded_batch(seq_len: int = 40, seed: int = 0):
    """3 sequences, BOS first, right-padded (lengths seq_len, 30, 20): longer than the sliding window (16)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 512, (3, seq_len), generator=gen)
    ids[:, 0] = 2
    mask = torch.ones_like(ids)
    mask[1, 30:] = 0
    mask[2, 20:] = 0
    ids[mask == 0] = 0
    return ids, mask


def hook_count(module: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())
