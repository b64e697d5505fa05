"""sae-bench: a benchmark harness for sparse autoencoders trained on Gemma 4 activations.

The public Python API lives here; the CLI (`sae_bench.cli`) is a thin layer over it, and the
benchmarks and tests use these names rather than reaching into modules:

    evaluate(config, checkpoints)       run tasks over checkpoints, write one record each (RunConfig, CheckpointSpec)
    load_checkpoint(ref, hookpoint=...) any supported SAE format, local or hub, as a SparseAutoencoder
    load_model(ref, device=..., dtype=...) a causal LM behind the ModelAdapter (hookpoints, splicing)
    Task, TaskConfig, TaskOutput, Metric, MetricSpec, register_task   writing a task plugin

Imports are lazy so that `import sae_bench` (and `sae-bench --help`) stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "evaluate": "sae_bench.run.runner",
    "RunConfig": "sae_bench.run.config",
    "CheckpointSpec": "sae_bench.run.config",
    "RunReport": "sae_bench.run.config",
    "load_checkpoint": "sae_bench.checkpoints",
    "SparseAutoencoder": "sae_bench.checkpoints.sae",
    "ModelAdapter": "sae_bench.models",
    "Task": "sae_bench.core.task_api",
    "TaskConfig": "sae_bench.core.task_api",
    "TaskOutput": "sae_bench.core.task_api",
    "Metric": "sae_bench.core.task_api",
    "MetricSpec": "sae_bench.core.task_api",
    "register_task": "sae_bench.core.registry",
}

__all__ = ["__version__", "load_model", *_PUBLIC]


def load_model(ref, *, revision=None, gguf_file=None, device="cpu", dtype="float32", trust_remote_code=False):
    """A causal LM (folder, hub id or .gguf) behind the ModelAdapter; `dtype` a torch dtype or its name."""
    import torch

    from sae_bench.models import ModelAdapter

    return ModelAdapter.load(ref, revision=revision, gguf_file=gguf_file, device=device,
                             dtype=getattr(torch, dtype) if isinstance(dtype, str) else dtype,
                             trust_remote_code=trust_remote_code)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'sae_bench' has no attribute {name!r}")
