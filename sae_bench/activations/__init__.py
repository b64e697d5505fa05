"""Shared activation sources: the model runs once per hookpoint, every task reuses the vectors."""

from sae_bench.activations.source import ActivationSource, cache_key

__all__ = ["ActivationSource", "cache_key"]
