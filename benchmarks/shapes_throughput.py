"""Throughput section of bench_shapes: tokens/s of the encoder matmul, encode, encode+decode and the reconstruction + sparsity metric path, over synthetic activations.

Imported by bench_shapes.py (run that); never run on its own."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import torch

from shapes_files import FAMILIES, load, weight_bytes

def synthetic(n: int, d: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen) * 4.0 + torch.randn(1, d, generator=gen)


def metric_path(sae, x: torch.Tensor, sequence: torch.Tensor, n_sequences: int, batch_tokens: int) -> dict:
    """The reconstruction and sparsity tasks' loops (tasks/reconstruction.py, tasks/sparsity.py)."""
    from sae_bench.metrics.reconstruction import ReconstructionAccumulator
    from sae_bench.metrics.sparsity import SparsityAccumulator

    acc = ReconstructionAccumulator(n_sequences, sae.d_in)
    sacc = SparsityAccumulator(n_sequences, sae.d_sae)
    for start in range(0, x.shape[0], batch_tokens):
        part = slice(start, start + batch_tokens)
        x_in, _ = sae.preprocess(x[part].to(sae.device).to(sae.dtype))
        x_hat = sae.decode(sae.encode(x_in), x_in)
        acc.update(x_in, x_hat, sequence[part])
    for start in range(0, x.shape[0], batch_tokens):
        part = slice(start, start + batch_tokens)
        x_in, _ = sae.preprocess(x[part].to(sae.device).to(sae.dtype))
        sacc.update(sae.encode(x_in), sequence[part])
    metrics = {**acc.finalize(), **sacc.finalize(replicates=200, generator=torch.Generator().manual_seed(7001))}
    return {k: m.value for k, m in metrics.items()}


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _time(fn, device: str, repeat: int = 3) -> float:
    fn()
    _sync(device)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def throughput(family: str, ref: Path, args) -> dict:
    spec = FAMILIES[family]
    device = args.device
    sae = load(family, ref, 0, device, args.model_dtype)
    d, f = sae.d_in, sae.d_sae
    pooled = spec["hookpoint"] == "pooled_final_norm"
    # pooled: one vector per text, so at most 16,384 texts (the accumulators keep per-text sums)
    n, bt = (min(args.tokens, 16384) if pooled else args.tokens), args.batch_tokens
    x = synthetic(n, d)
    seq_len = 1 if pooled else 1024
    sequence = torch.arange(n) // seq_len
    n_seq = int(sequence.max()) + 1
    batches = [x[s:s + bt] for s in range(0, n, bt)]
    on_dev = [b.to(device) for b in batches]
    row = {"family": family, "d_in": d, "d_sae": f, "device": device, "sae_dtype": str(sae.dtype).replace("torch.", ""),
           "tokens": n, "batch_tokens": bt, "activation": sae.activation.describe()}
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()

    def encode_only():
        for b in on_dev:
            sae.encode(sae.preprocess(b.to(sae.dtype))[0])

    def encode_decode():
        for b in on_dev:
            x_in = sae.preprocess(b.to(sae.dtype))[0]
            sae.decode(sae.encode(x_in), x_in)

    row["encode_tok_s"] = n / _time(encode_only, device)
    row["encode_decode_tok_s"] = n / _time(encode_decode, device)
    start = time.perf_counter()
    metric_path(sae, x, sequence, n_seq, bt)
    _sync(device)
    row["metric_path_tok_s"] = n / (time.perf_counter() - start)
    if torch.device(device).type == "cuda":
        row["peak_cuda_bytes_over_weights"] = (torch.cuda.max_memory_allocated() - base) / weight_bytes(d, f)
    # The encoder matmul alone: [bt, d] @ [d, f] in the SAE's dtype, and in bf16 on CUDA.
    flops = 2.0 * bt * d * f
    dtypes = [sae.dtype] + ([torch.bfloat16] if torch.device(device).type == "cuda" and sae.dtype != torch.bfloat16 else [])
    for dt in dtypes:
        w = sae.W_enc.to(dt)
        a = on_dev[0].to(dt)
        reps = 20 if torch.device(device).type == "cuda" else 2
        t = _time(lambda: [torch.nn.functional.linear(a, w) for _ in range(reps)], device) / reps
        name = str(dt).replace("torch.", "")
        row[f"encoder_matmul_{name}_tflops"] = flops / t / 1e12
        if torch.device(device).type == "cuda" and dt == torch.bfloat16:
            row["encoder_matmul_bf16_fraction_of_peak"] = flops / t / 1e12 / args.peak_tflops
        del w, a
    del sae, on_dev
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    return row
