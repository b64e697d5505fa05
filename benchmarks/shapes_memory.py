"""Memory section of bench_shapes: load a checkpoint and evaluate vectors in a fresh child process; peak memory attributable to the SAE against its weight bytes.

Imported by bench_shapes.py (run that); never run on its own."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

import _importable
from shapes_files import FAMILIES, load, weight_bytes
from shapes_throughput import metric_path, synthetic


def _rss_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def memory_child(payload: dict) -> dict:
    family, device = payload["family"], payload["device"]
    model_dtype = getattr(torch, payload["model_dtype"])
    refs = [Path(r) for r in payload["refs"]]
    d, f = payload["d"], payload["f"]
    pooled = FAMILIES[family]["hookpoint"] == "pooled_final_norm"
    n = payload["vectors"]
    x = synthetic(n, d)
    sequence = torch.arange(n) if pooled else torch.arange(n) // 1024
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.zeros(1, device=device)  # CUDA context before the baseline
        torch.cuda.reset_peak_memory_stats()
    import sae_bench.checkpoints  # noqa: F401  (imports before the baseline)
    import sae_bench.metrics.reconstruction  # noqa: F401
    import sae_bench.metrics.sparsity  # noqa: F401
    import sae_bench.run.runner  # noqa: F401

    # Warm-up on a small in-memory SAE of the same kind: first-use allocations of the BLAS, the
    # allocator and lazily imported modules are not the checkpoint's memory.
    from sae_bench.checkpoints.sae import ActivationSpec, InputPreprocessing, SaeMetadata, SparseAutoencoder

    spec = FAMILIES[family]
    small_f = max(spec["k"] or 1, 256)
    act = ActivationSpec("topk", k=spec["k"]) if spec["k"] else ActivationSpec("relu")
    prep = InputPreprocessing("l2", "batch") if pooled else InputPreprocessing()
    meta = SaeMetadata("warm-up", spec["format"], d, small_f, act, prep)
    warm = SparseAutoencoder(torch.randn(small_f, d), torch.zeros(small_f), torch.randn(small_f, d), torch.zeros(d),
                             meta, subtract_decoder_bias=not pooled).to(device)
    metric_path(warm, x, sequence, int(sequence.max()) + 1, payload["batch_tokens"])
    del warm
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:  # reset the RSS high-water mark (Linux >= 4.0); else fall back to the lifetime peak
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    rss0, hwm0 = _rss_bytes("VmRSS"), _rss_bytes("VmHWM")
    cuda0 = torch.cuda.memory_allocated() if cuda else 0
    per_layer = []
    for layer, ref in enumerate(refs):
        start = time.perf_counter()
        sae = load(family, ref, layer, device, model_dtype)
        loaded = time.perf_counter() - start
        load_peak = torch.cuda.max_memory_allocated() - cuda0 if cuda else None
        values = metric_path(sae, x, sequence, int(sequence.max()) + 1, payload["batch_tokens"])
        per_layer.append({"load_seconds": loaded, "eval_seconds": time.perf_counter() - start - loaded,
                          "sae_dtype": str(sae.dtype).replace("torch.", ""), "fvu": values.get("fvu"),
                          "l0": values.get("l0"), "cuda_peak_after_load_bytes": load_peak,
                          "rss_after_bytes": _rss_bytes("VmRSS") - rss0})
        del sae
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    weights = weight_bytes(d, f)
    out = {"family": family, "device": device, "layers": len(refs), "vectors": n, "batch_tokens": payload["batch_tokens"],
           "weight_bytes": weights, "per_layer": per_layer,
           "rss_peak_over_baseline_bytes": _rss_bytes("VmHWM") - rss0, "rss_hwm_was_reset": hwm0 <= rss0 + (1 << 20)}
    out["rss_ratio"] = out["rss_peak_over_baseline_bytes"] / weights
    if cuda:
        out["cuda_peak_over_baseline_bytes"] = torch.cuda.max_memory_allocated() - cuda0
        out["cuda_ratio"] = out["cuda_peak_over_baseline_bytes"] / weights
    return out


def memory(family: str, refs: list[Path], args, d: int, f: int) -> dict:
    payload = {"family": family, "device": args.device, "model_dtype": str(args.model_dtype).replace("torch.", ""),
               "refs": [str(r) for r in refs], "d": d, "f": f, "vectors": args.memory_vectors,
               "batch_tokens": args.batch_tokens}
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("bench_shapes.py")), "--child-memory", json.dumps(payload)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              [str(_importable.ROOT), os.environ.get("PYTHONPATH", "")])})
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
