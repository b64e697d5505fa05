"""Random weights of the seed families' shapes, written in their real file layouts, and loaded the way `sae-bench run` loads them (the files section of bench_shapes).

Imported by bench_shapes.py (run that); never run on its own."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import torch

FAMILIES = {
    "gemma-loupe": {"d": 1536, "f": 49152, "format": "sparsify", "k": 100, "hookpoint": "layers.20", "b_enc": 0.0},
    "ernos": {"d": 2816, "f": 131072, "format": "ernos", "k": None, "hookpoint": "pooled_final_norm", "b_enc": -3.3},
}
H100_BF16_DENSE_TFLOPS = 989.0



def write_safetensors(path: Path, tensors: list[tuple[str, tuple[int, ...], object]], seed: int) -> int:
    """Stream float32 tensors to a safetensors file without holding them in memory.
    Each entry: (name, shape, fill) with fill one of "randn_rows" (N(0, 1/cols) entries),
    "unit_rows" (rows of unit norm), or a float constant. Returns the file size in bytes."""
    header, offset = {}, 0
    for name, shape, _ in tensors:
        n = math.prod(shape) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    gen = torch.Generator().manual_seed(seed)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for name, shape, fill in tensors:
            rows, cols = shape[0], math.prod(shape[1:]) if len(shape) > 1 else 1
            step = max(1, (1 << 22) // cols)
            for start in range(0, rows, step):
                n = min(rows, start + step) - start
                if isinstance(fill, float):
                    chunk = torch.full((n, cols), fill)
                else:
                    chunk = torch.randn(n, cols, generator=gen) / math.sqrt(cols)
                    if fill == "unit_rows":
                        chunk = chunk / chunk.norm(dim=1, keepdim=True)
                fh.write(chunk.contiguous().numpy().tobytes())
    return path.stat().st_size


def write_family(family: str, folder: Path, *, d: int, f: int, layers: int = 1) -> list[Path]:
    """Random-weights checkpoint(s) in the family's real layout; returns what load_checkpoint takes."""
    spec = FAMILIES[family]
    if spec["format"] == "sparsify":
        refs = []
        run = folder / "sae-gemma-4-E2B-32x-random"
        for layer in range(layers):
            sub = run / f"layers.{20 + layer}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / "cfg.json").write_text(json.dumps({
                "activation": "topk", "expansion_factor": f // d, "normalize_decoder": True, "num_latents": f,
                "k": spec["k"], "multi_topk": False, "skip_connection": False, "transcode": False, "d_in": d}))
            write_safetensors(sub / "sae.safetensors", [("encoder.weight", (f, d), "randn_rows"),
                                                        ("encoder.bias", (f,), spec["b_enc"]),
                                                        ("W_dec", (f, d), "unit_rows"), ("b_dec", (d,), 0.0)],
                              seed=layer)
            refs.append(run)
        return refs
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ernos_sae.safetensors"
    write_safetensors(path, [("W_enc", (f, d), "randn_rows"), ("b_enc", (f,), spec["b_enc"]),
                             ("W_dec", (d, f), "randn_rows"), ("b_dec", (d,), 0.0)], seed=0)
    return [path]


def weight_bytes(d: int, f: int) -> int:
    return (2 * f * d + f + d) * 4


def load(family: str, ref: Path, layer: int, device: str, model_dtype: torch.dtype):
    """Through the public loader and the runner's dtype rule, as `sae-bench run` loads it."""
    from sae_bench import load_checkpoint
    from sae_bench.checkpoints.compute_dtype import sae_compute_dtype

    spec = FAMILIES[family]
    hookpoint = f"layers.{20 + layer}" if spec["format"] == "sparsify" else spec["hookpoint"]
    eval_hook = "layers.20" if spec["format"] == "sparsify" else spec["hookpoint"]
    return load_checkpoint(str(ref), hookpoint=hookpoint, format=spec["format"], device=device,
                           dtype=sae_compute_dtype(device, model_dtype, eval_hook))
