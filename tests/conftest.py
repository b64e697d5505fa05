"""Shared test setup: every test runs offline, from local files."""

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# datasets and transformers bind their log handler to whatever sys.stderr is when they first set
# it up. Done here, that is pytest's session stream; done first inside a test using capsys, it would
# be that test's stream, closed afterwards, and a later test's log line would raise.
import datasets  # noqa: E402,F401
from transformers.utils import logging as _hf_logging  # noqa: E402

_hf_logging.get_verbosity()


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


@pytest.fixture(scope="module")
def model():
    """The trained fixture model (fixtures/tiny-gemma4) as a ModelAdapter, one per test module."""
    from sae_bench.fixtures import TINY_MODEL_DIR
    from sae_bench.models import ModelAdapter

    return ModelAdapter.load(str(TINY_MODEL_DIR))


@pytest.fixture
def fake_cache():
    """A maker of huggingface_hub caches: `fake_cache(root, repo_id, commit=..., files={relative path:
    source file})` writes one snapshot of `repo_id` under `root` (as a download would) and returns it."""
    import shutil

    def make(root, repo_id, *, commit, files):
        repo = root / ("models--" + repo_id.replace("/", "--"))
        (repo / "refs").mkdir(parents=True)
        (repo / "refs/main").write_text(commit)
        snapshot = repo / "snapshots" / commit
        for rel, source in files.items():
            (snapshot / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, snapshot / rel)
        return snapshot

    return make
