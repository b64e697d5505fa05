"""`sae-bench compare A B`: two checkpoints or result sets side by side (`sae_bench.analysis.compare`).

Checkpoint sides are evaluated with `RunConfig`'s options (the same as `sae-bench run`'s).
"""

from __future__ import annotations

import json
from pathlib import Path

from sae_bench.core.arguments import add_options, given
from sae_bench.core.options import bounded

EVAL_OPTIONS = ["model", "corpus", "corpus_column", "corpus_packing", "corpus_prepend_bos", "tasks", "seq_len",
                "max_documents", "results_dir", "cache_dir", "device", "dtype", "batch_size", "seed", "show_progress"]


def register(sub) -> None:
    from sae_bench.analysis.compare import DEFAULT_THRESHOLD
    from sae_bench.analysis.compare import __doc__ as doc
    from sae_bench.run.config import RunConfig

    p = sub.add_parser("compare", help="compare two checkpoints or result sets side by side",
                       description=doc.split("\n\n")[0])
    p.add_argument("a", metavar="A", help="checkpoint REF[@HOOKPOINT], result file or results folder")
    p.add_argument("b", metavar="B", help="checkpoint REF[@HOOKPOINT], result file or results folder")
    p.add_argument("--threshold", type=bounded(float, -1.0, 1.0), default=DEFAULT_THRESHOLD,
                   help=f"decoder cosine threshold, in [-1, 1] (default: {DEFAULT_THRESHOLD})")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.add_argument("--wide", action="store_true",
                   help="one table with every column (standard errors, pairing reasons) past 100 columns")
    p.add_argument("--no-dictionary", action="store_true", help="skip the decoder comparison")
    p.add_argument("--html", type=Path, metavar="FILE",
                   help="also write the comparison as an HTML page with per-sequence difference plots")
    add_options(p, RunConfig, EVAL_OPTIONS, helps={
        "model": "model to evaluate checkpoints with (folder, hub id or .gguf)",
        "corpus": "corpus to evaluate checkpoints on",
        "tasks": "comma-separated tasks for checkpoints (default: all)",
        "results_dir": "keep the checkpoint results here (default: a temporary folder)"})
    p.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    from sae_bench.analysis.compare import compare_checkpoints
    from sae_bench.run.config import RunConfig

    options = given(args, RunConfig)
    options.setdefault("show_progress", True)
    comparison = compare_checkpoints(
        args.a, args.b, model=options.pop("model", None), corpus=options.pop("corpus", None),
        tasks=options.pop("tasks", None), results_dir=options.pop("results_dir", None), threshold=args.threshold,
        dictionary=not args.no_dictionary, **options)
    print(json.dumps(comparison.to_json(), indent=2, ensure_ascii=False) if args.json
          else comparison.format(wide=args.wide))
    if args.html:
        from sae_bench.analysis.compare_report import write_html

        path = write_html(comparison, args.html)
        if not args.json:
            print(f"report: {path}")
    return 0
