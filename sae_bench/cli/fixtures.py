"""`sae-bench fixtures build`: rebuild the deterministic bundled fixtures."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    fixtures = sub.add_parser("fixtures", help="bundled fixtures").add_subparsers(dest="fixtures_command",
                                                                                required=True)
    p = fixtures.add_parser("build", help="rebuild the deterministic fixtures")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: the installed fixtures folder)")
    p.set_defaults(func=cmd_fixtures_build)


def cmd_fixtures_build(args) -> int:
    from sae_bench.fixtures import FIXTURES_DIR
    from sae_bench.fixtures.build import build

    build(args.out or FIXTURES_DIR)
    return 0
