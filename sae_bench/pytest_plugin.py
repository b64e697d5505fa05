"""pytest plugin (entry point `pytest11`): lets SAE authors gate their checkpoints in their own tests.

Fixtures (all session-scoped):
    sae_bench_fixtures     paths of the bundled tiny model, corpora, SAEs and suite
    sae_bench_results_dir  where records go: `--sae-bench-results DIR`, else a session tmp dir
    sae_bench_evaluate     evaluate(checkpoint, hookpoint=..., model=..., corpus=..., tasks=[...])
                           -> {task name: ResultRecord}, see `sae_bench.testing.evaluate_checkpoint`
Assertion: `from sae_bench.testing import assert_no_regression` (also re-exported here).

Importing this module must stay cheap (pytest loads it in every session of every project that has
sae-bench installed): no torch, no transformers at import time; heavy imports happen inside the
fixtures that need them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from sae_bench.testing import assert_no_regression, evaluate_checkpoint

__all__ = ["assert_no_regression", "BundledFixtures"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sae-bench")
    group.addoption("--sae-bench-results", default=None,
                    help="folder where sae_bench fixtures write result records (default: a tmp dir)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sae_bench: a test that evaluates an SAE checkpoint with sae-bench")


@dataclass(frozen=True)
class BundledFixtures:
    """Paths of the tiny fixtures shipped with sae-bench (a 4-layer Gemma 4, d=64, and SAEs for it)."""

    model: Path
    corpus: Path  # evaluation corpus (jsonl)
    train_corpus: Path
    saes: Path
    suite: Path
    checkpoints: tuple[dict[str, Any], ...]  # the suite's entries, paths absolute

    def checkpoint(self, relative: str) -> Path:
        """A bundled SAE by its path below `saes/`, e.g. `sparsify/tiny-gemma4-8x`."""
        return self.saes / relative


@pytest.fixture(scope="session")
def sae_bench_fixtures() -> BundledFixtures:
    from sae_bench import fixtures

    suite = fixtures.load_suite(resolve=True)
    return BundledFixtures(model=fixtures.TINY_MODEL_DIR, corpus=fixtures.EVAL_CORPUS_PATH,
                           train_corpus=fixtures.TRAIN_CORPUS_PATH, saes=fixtures.SAES_DIR,
                           suite=fixtures.SUITE_PATH, checkpoints=tuple(suite["checkpoints"]))


@pytest.fixture(scope="session")
def sae_bench_results_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = request.config.getoption("--sae-bench-results")
    if chosen:
        path = Path(chosen)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("sae-bench-results")


@pytest.fixture(scope="session")
def sae_bench_evaluate(sae_bench_results_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., dict]:
    """evaluate(checkpoint, hookpoint=None, model=None, corpus=None, tasks=None, **kw) -> {task: record}.

    Records land in `sae_bench_results_dir`; activations are cached for the session. Without
    `model`/`corpus` the bundled tiny model and evaluation corpus are used."""
    cache = tmp_path_factory.mktemp("sae-bench-cache")
    return functools.partial(evaluate_checkpoint, results_dir=sae_bench_results_dir, cache_dir=cache)
