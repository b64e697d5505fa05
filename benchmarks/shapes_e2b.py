"""E2B section of bench_shapes (CUDA): the harness against the per-task reference on a random-weights Gemma 4 with an E2B-like config.

Imported by bench_shapes.py (run that); never run on its own."""

from __future__ import annotations

import gc
import math
import sys
import time

import torch

from shapes_throughput import _sync

def e2b(args) -> dict:
    from transformers import Gemma4ForCausalLM, Gemma4TextConfig

    import bench_suite
    from sae_bench.core.context import TokenizedCorpus
    from sae_bench.models import ModelAdapter
    from sae_bench.checkpoints.sae import ActivationSpec, SaeMetadata, SparseAutoencoder

    device = args.device
    if args.e2b_small:  # a miniature of the same structure, to try the section quickly on CPU
        V, d, f, k = 4096, 256, 2048, 32
        config = Gemma4TextConfig(
            vocab_size=V, hidden_size=d, intermediate_size=512, num_hidden_layers=10, num_attention_heads=2,
            num_key_value_heads=1, head_dim=64, global_head_dim=128, sliding_window=64,
            layer_types=(["sliding_attention"] * 4 + ["full_attention"]) * 2, vocab_size_per_layer_input=V,
            hidden_size_per_layer_input=32, num_kv_shared_layers=4, use_double_wide_mlp=True,
            final_logit_softcapping=30.0, pad_token_id=0, bos_token_id=2, eos_token_id=1)
    else:
        V, d, f, k = 262144, 1536, 49152, 100
        config = Gemma4TextConfig(
            vocab_size=V, hidden_size=d, intermediate_size=6144, num_hidden_layers=35, num_attention_heads=8,
            num_key_value_heads=1, head_dim=256, global_head_dim=512, sliding_window=512,
            layer_types=(["sliding_attention"] * 4 + ["full_attention"]) * 7, vocab_size_per_layer_input=V,
            hidden_size_per_layer_input=256, num_kv_shared_layers=20, use_double_wide_mlp=True,
            final_logit_softcapping=30.0, pad_token_id=0, bos_token_id=2, eos_token_id=1)
    cuda = torch.device(device).type == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.device(device):
        model = Gemma4ForCausalLM(config).to(dtype)
    model.eval().requires_grad_(False)
    adapter = ModelAdapter.from_pretrained_model(model, None, model_id="e2b-shaped-random")
    build_s = time.perf_counter() - start
    n, T = args.e2b_sequences, args.e2b_seq_len
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, V, (n, T), generator=gen)
    ids[:, 0] = 2
    mask = torch.ones_like(ids)
    for row in range(n):  # some padding, as real corpora have
        mask[row, T - (row % 4) * (T // 8):] = 0
    ids[mask == 0] = 0
    keep = mask.bool() & (ids != 2) & (ids != 0) & (ids != 1)
    corpus = TokenizedCorpus("random-tokens", "random", "none", ids, mask, keep, T)

    def make_sae(seed: int):
        g = torch.Generator(device=device).manual_seed(seed)
        W_enc = (torch.randn(f, d, generator=g, device=device) / math.sqrt(d)).to(dtype)
        W_dec = torch.randn(f, d, generator=g, device=device)
        W_dec = (W_dec / W_dec.norm(dim=1, keepdim=True)).to(dtype)
        zeros = lambda m: torch.zeros(m, device=device, dtype=dtype)  # noqa: E731
        meta = SaeMetadata(f"random-{seed}", "sparsify", d, f, ActivationSpec("topk", k=k), hookpoint=args.e2b_layer,
                           dtype=str(dtype).replace("torch.", ""))
        return SparseAutoencoder(W_enc, zeros(f), W_dec, zeros(d), meta)

    loaders = [(f"random-{i}", lambda i=i: make_sae(i)) for i in range(args.e2b_checkpoints)]
    bs = args.e2b_batch_size
    # warm-up (kernels, allocator) on a slice, both sides
    small = TokenizedCorpus("w", "w", "none", ids[:bs], mask[:bs], keep[:bs], T)
    bench_suite.harness_metrics(adapter, small, args.e2b_layer, loaders[:1], batch_size=bs)
    adapter.clear_cache()
    bench_suite.reference_metrics(adapter, small, args.e2b_layer, loaders[:1], batch_size=bs, progress=False)
    adapter.clear_cache()
    _sync(device)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    profiler = None
    if args.e2b_profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.perf_counter()
    harness = bench_suite.harness_metrics(adapter, corpus, args.e2b_layer, loaders, batch_size=bs)
    _sync(device)
    t_h = time.perf_counter() - t0
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(30)
    peak_h = torch.cuda.max_memory_allocated() if cuda else 0
    adapter.clear_cache()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    reference = bench_suite.reference_metrics(adapter, corpus, args.e2b_layer, loaders, batch_size=bs,
                                              progress=not args.no_progress)
    _sync(device)
    t_r = time.perf_counter() - t0
    peak_r = torch.cuda.max_memory_allocated() if cuda else 0
    exact = bench_suite.compare(harness, reference, 0.0)
    loose = bench_suite.compare(harness, reference, args.e2b_rtol)
    out = {"model_build_seconds": build_s, "sequences": n, "seq_len": T, "batch_size": bs, "layer": args.e2b_layer,
           "checkpoints": len(loaders), "kept_tokens": int(keep.sum()), "harness_seconds": t_h,
           "reference_seconds": t_r, "speedup": t_r / t_h, "harness_peak_cuda_gib": peak_h / 2**30,
           "reference_peak_cuda_gib": peak_r / 2**30, "values_differing_exactly": len(exact),
           "values_compared": 2 * sum(len(m) for t in harness.values() for m in t.values()),
           "rtol": args.e2b_rtol, "values_beyond_rtol": loose, "max_relative_difference": bench_suite.max_relative_difference(harness, reference)}
    out["model"] = "E2B-shaped" if not args.e2b_small else "miniature (--e2b-small)"
    del model, adapter
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return out
