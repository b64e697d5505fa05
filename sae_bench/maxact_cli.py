"""`sae-bench maxact build|repro`: write a max-activation parquet from a corpus, or check one.

A thin layer over `sae_bench.maxact.build.build_maxact` and `sae_bench.maxact.repro.reproduce`:
argument parsing and printing only. Bad input raises `InputError` (the CLI prints one line and
exits 2).
"""

from __future__ import annotations

import json
from pathlib import Path

from sae_bench.errors import CheckpointError, InputError


def _features(spec: str | None) -> list[int] | None:
    """`0:64` (a range), `3,7,9` (a list) or None (every latent)."""
    if not spec:
        return None
    try:
        if ":" in spec:
            lo, hi = spec.split(":", 1)
            return list(range(int(lo or 0), int(hi)))
        return [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--features {spec}", "expected START:STOP or a comma-separated list of integers") from None


def _load(args):
    """(model adapter, sae, canonical hookpoint) from the common arguments."""
    import torch

    from sae_bench.checkpoints import load_checkpoint
    from sae_bench.maxact.locate import short_hookpoint
    from sae_bench.models import ModelAdapter

    dtype = getattr(torch, args.dtype, None)
    if not isinstance(dtype, torch.dtype):
        raise InputError(f"--dtype {args.dtype}", "not a torch dtype")
    ref, hookpoint_arg = args.checkpoint, args.hookpoint
    if "@" in ref and not hookpoint_arg:  # REF@HOOKPOINT, as `sae-bench run --checkpoint` accepts
        ref, _, hookpoint_arg = ref.rpartition("@")
    model = ModelAdapter.load(args.model, revision=args.revision, device=args.device, dtype=dtype)
    sae = load_checkpoint(ref, hookpoint=hookpoint_arg, format=args.format, device=args.device)
    name = hookpoint_arg or sae.metadata.hookpoint
    if not name:
        raise CheckpointError(args.checkpoint, "no --hookpoint given and the checkpoint does not name one")
    if short_hookpoint(name) == "pooled_final_norm":
        raise InputError(f"--hookpoint {name}", "max-activation examples need a per-token hookpoint")
    hookpoint = model.resolve_hookpoint(name.rsplit("/", 1)[-1]).name
    if sae.d_in != model.d_model:
        raise CheckpointError(args.checkpoint, f"SAE d_in={sae.d_in} does not match the model's hidden size "
                                               f"{model.d_model} at {hookpoint}")
    return model, sae, hookpoint


def _add_common(p) -> None:
    p.add_argument("--model", required=True, help="model folder or hub id")
    p.add_argument("--revision", help="model revision (hub)")
    p.add_argument("--checkpoint", "-c", required=True, help="SAE checkpoint: folder, file or hub id, optionally REF@HOOKPOINT")
    p.add_argument("--hookpoint", help="hookpoint (default: the checkpoint's own)")
    p.add_argument("--format", help="checkpoint format (default: detected)")
    p.add_argument("--corpus-column", default="text")
    p.add_argument("--corpus-split", default="train")
    p.add_argument("--batch-size", type=int, default=8, help="sequences per model forward")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_build(args) -> int:
    from sae_bench.corpus import load_corpus
    from sae_bench.maxact.build import BuildSettings, build_maxact

    settings = BuildSettings(top_n=args.top_n, window=args.window, features=_features(args.features),
                             batch_size=args.batch_size, show_progress=not args.quiet)
    settings.check(d_sae=max(settings.features or [0]) + 1)  # cheap checks before loading anything
    model, sae, hookpoint = _load(args)
    corpus = load_corpus(args.corpus, model.tokenizer, seq_len=args.seq_len, split=args.corpus_split,
                         column=args.corpus_column, max_documents=args.max_documents)
    path = build_maxact(model, sae, hookpoint, corpus, args.out, settings, model_label=args.model)
    from sae_bench.maxact.schema import read_maxact

    table = read_maxact(path)
    print(f"wrote {len(table.examples)} examples of {len(table.features())} features to {path}")
    return 0


def cmd_repro(args) -> int:
    from sae_bench.corpus import load_corpus
    from sae_bench.maxact.repro import ReproSettings, reproduce
    from sae_bench.maxact.schema import read_maxact
    from sae_bench.metrics.maxact import Tolerances

    table = read_maxact(args.parquet, max_features=args.max_features)
    model, sae, hookpoint = _load(args)
    corpus = None
    if args.corpus:
        seq_len = int(table.metadata.get("seq_len") or 128)
        corpus = load_corpus(args.corpus, model.tokenizer, seq_len=seq_len, split=args.corpus_split,
                             column=args.corpus_column)
    result = reproduce(table, sae, model, hookpoint, corpus=corpus,
                       settings=ReproSettings(Tolerances(args.tol_rel, args.tol_rho), batch_size=args.batch_size,
                                              show_progress=not args.quiet))
    print(json.dumps({"mode": result.mode, "counts": result.counts,
                      "metrics": {k: m.to_json() for k, m in result.metrics.items()}, "notes": result.notes},
                     indent=2))
    return 0


def register_cli(subparsers) -> None:
    """Add `maxact build` and `maxact repro` to the `sae-bench` command."""
    maxact = subparsers.add_parser("maxact", help="max-activation examples (gemma-loupe's parquet schema)")
    sub = maxact.add_subparsers(dest="maxact_command", required=True)

    p = sub.add_parser("build", help="write a max-activation parquet from a corpus")
    _add_common(p)
    p.add_argument("--corpus", required=True, help="corpus file or hub dataset id")
    p.add_argument("--out", required=True, type=Path, help="parquet file to write")
    p.add_argument("--top-n", type=int, default=20, help="examples per feature")
    p.add_argument("--window", type=int, default=16, help="tokens on each side of the peak")
    p.add_argument("--seq-len", type=int, default=64, help="tokens per document (BOS included)")
    p.add_argument("--max-documents", type=int)
    p.add_argument("--features", help="START:STOP or a comma-separated list (default: every latent)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("repro", help="re-encode a parquet's contexts and print reproduction metrics")
    _add_common(p)
    p.add_argument("--parquet", required=True, type=Path)
    p.add_argument("--corpus", help="the build corpus (exact re-runs when the file has offsets)")
    p.add_argument("--max-features", type=int)
    p.add_argument("--tol-rel", type=float, default=0.1)
    p.add_argument("--tol-rho", type=float, default=0.7)
    p.set_defaults(func=cmd_repro)
