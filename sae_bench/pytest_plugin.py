"""pytest plugin (entry point `pytest11`): lets SAE authors gate their checkpoints in their own tests.

Importing this module must stay cheap (pytest loads it in every session of every project that has
sae-bench installed): no torch, no transformers at import time; heavy imports happen inside the
fixtures that need them.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sae-bench")
    group.addoption("--sae-bench-results", default=None,
                    help="folder where sae_bench fixtures write result records (default: a tmp dir)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sae_bench: a test that evaluates an SAE checkpoint with sae-bench")
