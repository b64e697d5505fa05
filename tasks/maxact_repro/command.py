"""`sae-bench maxact build|repro`: write a max-activation parquet from a corpus, or check one.

A thin layer over `sae_bench.tasks.maxact_repro.build.build_maxact` and `sae_bench.tasks.maxact_repro.repro.reproduce`:
argument parsing and printing only. Model and corpus options are `RunConfig`'s; the checkpoint is
loaded and checked against the model by the runner's own `checked_checkpoint`.
"""

from __future__ import annotations

import json
from pathlib import Path

from sae_bench.core.arguments import add_options, given
from sae_bench.core.options import bounded
from sae_bench.core.errors import InputError

COMMON = ["model", "model_revision", "corpus_column", "corpus_split", "batch_size", "device", "dtype", "show_progress"]


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


def _options(args) -> dict:
    from sae_bench.run.config import RunConfig

    defaults = {name: RunConfig.__dataclass_fields__[name].default for name in COMMON}
    return {**defaults, **given(args, RunConfig)}


def _load(args, options):
    """(model adapter, sae, canonical hookpoint) from the common arguments."""
    import torch

    from sae_bench.models import ModelAdapter
    from sae_bench.models.hookpoints import POOLED_HOOKPOINT
    from sae_bench.checkpoints.preflight import checked_checkpoint
    from sae_bench.run.config import CheckpointSpec

    spec = CheckpointSpec.parse(args.checkpoint, format=args.format)
    if args.hookpoint:
        spec.hookpoint = args.hookpoint
    model = ModelAdapter.load(options["model"], revision=options["model_revision"], device=options["device"],
                              dtype=getattr(torch, options["dtype"]))
    sae, hookpoint = checked_checkpoint(model, spec, options["device"])
    if hookpoint == POOLED_HOOKPOINT:
        raise InputError(f"--hookpoint {hookpoint}", "max-activation examples need a per-token hookpoint")
    return model, sae, hookpoint


def _add_common(p) -> None:
    from sae_bench.run.config import RunConfig

    p.add_argument("--checkpoint", "-c", required=True, metavar="REF[@HOOKPOINT]",
                   help="SAE checkpoint: folder, file or hub id, optionally REF@HOOKPOINT")
    p.add_argument("--hookpoint", help="hookpoint (default: the checkpoint's own)")
    p.add_argument("--format", help="checkpoint format (default: detected)")
    add_options(p, RunConfig, COMMON, required=["model"], helps={"model": "model folder or hub id"})


def register(sub) -> None:
    """Add `maxact build` and `maxact repro` to the `sae-bench` command."""
    from sae_bench.run.config import RunConfig

    maxact = sub.add_parser("maxact", help="max-activation examples (gemma-loupe's parquet schema)")
    commands = maxact.add_subparsers(dest="maxact_command", required=True)

    p = commands.add_parser("build", help="write a max-activation parquet from a corpus")
    _add_common(p)
    add_options(p, RunConfig, ["corpus", "seq_len", "max_documents"], required=["corpus"], defaults={"seq_len": 64})
    p.add_argument("--out", required=True, type=Path, help="parquet file to write")
    p.add_argument("--top-n", type=bounded(int, 1), default=20, help="examples per feature (default: 20)")
    p.add_argument("--window", type=bounded(int, 0), default=16, help="tokens on each side of the peak (default: 16)")
    p.add_argument("--features", help="START:STOP or a comma-separated list (default: every latent)")
    p.set_defaults(func=cmd_build)

    p = commands.add_parser("repro", help="re-encode a parquet's contexts and print reproduction metrics")
    _add_common(p)
    add_options(p, RunConfig, ["corpus"], helps={
        "corpus": "the build corpus: exact re-runs when the file has offsets (default: re-encode the stored contexts)"})
    p.add_argument("--parquet", required=True, type=Path, help="max-activation parquet to check")
    p.add_argument("--max-features", type=bounded(int, 1), help="check at most this many features (default: all)")
    p.add_argument("--tol-rel", type=bounded(float, 0.0), default=0.1, help="relative activation tolerance (default: 0.1)")
    p.add_argument("--tol-rho", type=bounded(float, 0.0, 1.0), default=0.7, help="minimum rank correlation (default: 0.7)")
    p.set_defaults(func=cmd_repro)


def cmd_build(args) -> int:
    from sae_bench.inputs.corpus import load_corpus
    from sae_bench.inputs.packing import DEFAULT_SEQ_LEN
    from sae_bench.tasks.maxact_repro.build import BuildSettings, build_maxact
    from sae_bench.tasks.maxact_repro.schema import read_maxact

    options = _options(args)
    settings = BuildSettings(top_n=args.top_n, window=args.window, features=_features(args.features),
                             batch_size=options["batch_size"], show_progress=options["show_progress"])
    settings.check(d_sae=max(settings.features or [0]) + 1)  # cheap checks before loading anything
    model, sae, hookpoint = _load(args, options)
    corpus = load_corpus(options["corpus"], model.tokenizer, seq_len=options["seq_len"],
                         split=options["corpus_split"], column=options["corpus_column"],
                         max_documents=options.get("max_documents"))
    path = build_maxact(model, sae, hookpoint, corpus, args.out, settings, model_label=options["model"])
    table = read_maxact(path)
    print(f"wrote {len(table.examples)} examples of {len(table.features())} features to {path}")
    return 0


def cmd_repro(args) -> int:
    from sae_bench.inputs.corpus import load_corpus
    from sae_bench.tasks.maxact_repro.repro import ReproSettings, reproduce
    from sae_bench.tasks.maxact_repro.schema import read_maxact
    from sae_bench.metrics.maxact import Tolerances

    options = _options(args)
    table = read_maxact(args.parquet, max_features=args.max_features)
    model, sae, hookpoint = _load(args, options)
    corpus = None
    if options.get("corpus"):
        seq_len = int(table.metadata.get("seq_len") or DEFAULT_SEQ_LEN)
        corpus = load_corpus(options["corpus"], model.tokenizer, seq_len=seq_len, split=options["corpus_split"],
                             column=options["corpus_column"])
    result = reproduce(table, sae, model, hookpoint, corpus=corpus,
                       settings=ReproSettings(Tolerances(args.tol_rel, args.tol_rho),
                                              batch_size=options["batch_size"],
                                              show_progress=options["show_progress"]))
    print(json.dumps({"mode": result.mode, "counts": result.counts,
                      "metrics": {k: m.to_json() for k, m in result.metrics.items()}, "notes": result.notes},
                     indent=2))
    return 0
