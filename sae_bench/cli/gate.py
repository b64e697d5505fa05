"""`sae-bench gate`: exit 1 when candidate results regress against a baseline (`sae_bench.analysis.gate`)."""

from __future__ import annotations

import json
from pathlib import Path

from sae_bench.core.errors import InputError
from sae_bench.core.options import bounded


def register(sub) -> None:
    from sae_bench.analysis.gate import DEFAULT_Z
    from sae_bench.analysis.gate import __doc__ as doc

    p = sub.add_parser("gate", help="fail (exit 1) when candidate results regress against a baseline",
                       description=doc.split("\n\n")[0])
    p.add_argument("--baseline", required=True, type=Path, help="baseline result folder or record file")
    p.add_argument("--candidate", required=True, type=Path, help="candidate result folder or record file")
    p.add_argument("--rule", action="append", default=[], metavar="METRIC=DIRECTION[:MIN_EFFECT]",
                   help="override a metric's rule, e.g. fvu=lower:0.02, cossim=higher:1%%, l0=none "
                        "(repeatable; default: the metrics' declared rules)")
    p.add_argument("--rules", type=Path, default=None, metavar="FILE",
                   help="rules file, JSON or TOML (default: none)")
    p.add_argument("--z", type=bounded(float, 0.0), default=DEFAULT_Z,
                   help=f"standard errors of tolerance, >= 0 (default: {DEFAULT_Z:g})")
    p.add_argument("--all", action="store_true", help="print every gated metric, not only failures")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--wide", action="store_true", help="one table with every column, past 100 columns")
    p.set_defaults(func=cmd_gate)


def cmd_gate(args) -> int:
    from sae_bench.analysis.gate import gate, load_side, rules_from_options

    if not args.z >= 0:
        raise InputError(f"--z {args.z}", "must be a number >= 0")
    rules = rules_from_options(args.rule, args.rules)
    report = gate(load_side(args.baseline, "--baseline"), load_side(args.candidate, "--candidate"), rules, z=args.z)
    print(json.dumps(report.to_json(), indent=2) if args.json
          else report.format(show_all=args.all, wide=args.wide))
    return report.exit_code
