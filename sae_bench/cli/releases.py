"""`sae-bench releases`: the known Gemma SAE releases (the packaged registry, sae_bench/inputs/releases.json)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("releases", help="known Gemma SAE releases: hub ids, models, layers, hookpoints, formats")
    p.add_argument("--wide", action="store_true", help="one row per release with every column (wider than 100)")
    p.add_argument("--folders", metavar="NAME", help="every published hub folder of release NAME, per layer "
                                                     "(the one --release evaluates first)")
    p.set_defaults(func=cmd_releases)


def cmd_releases(args) -> int:
    from sae_bench.inputs import releases

    if args.folders:
        print(releases.format_folders(args.folders))
        return 0
    print(releases.format_listing(wide=args.wide))
    print("\nuse: sae-bench run --release NAME [--layers 6,17,28] [--dry-run] ...")
    print("  or: sae-bench run -c NAME:LAYER ...")
    return 0
