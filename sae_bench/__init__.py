"""sae-bench: a benchmark harness for sparse autoencoders trained on Gemma 4 activations.

The public Python API lives here; the CLI (`sae_bench.cli`) is a thin layer over it.
"""

__version__ = "0.1.0"
