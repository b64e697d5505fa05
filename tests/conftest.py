"""Shared test setup: every test runs offline, from local files."""

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def causal():
    """A tiny random Gemma4ForCausalLM adapter (tests/models_tiny.py), one per test module."""
    import models_tiny

    return models_tiny.causal_adapter()


@pytest.fixture(scope="module")
def conditional():
    """The same tiny model as Gemma4ForConditionalGeneration, one per test module."""
    import models_tiny

    return models_tiny.conditional_adapter()
