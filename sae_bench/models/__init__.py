"""The model adapter: load a causal LM, resolve hookpoints, read/splice the residual stream.

Import-light: transformers is imported only when a model is loaded or run.
"""

from sae_bench.models.adapter import ModelAdapter
from sae_bench.models.hookpoints import POOLED_HOOKPOINT, Hookpoint

__all__ = ["ModelAdapter", "Hookpoint", "POOLED_HOOKPOINT"]
