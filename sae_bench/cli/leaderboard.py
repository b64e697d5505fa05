"""`sae-bench leaderboard build|rebuild|link`: argument parsing and printing over `leaderboard_build.api`.

Never does work the API does not offer.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_RESULTS = Path("results")
DEFAULT_OUT = Path("leaderboard")


def register(sub) -> None:
    board = sub.add_parser("leaderboard", help="build the static leaderboard from result records")
    commands = board.add_subparsers(dest="leaderboard_command", required=True)
    p = commands.add_parser("build", help="validate result records and build their leaderboard version "
                                          "(same comparability keys: rebuilt in place; new keys: a new version)")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results folder (default: results/)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="leaderboard folder (default: leaderboard/)")
    p.add_argument("--rank-by", default=None, metavar="METRIC",
                   help="rank each site by this metric (e.g. mean_absorption_fraction, sae_top_1_test_accuracy; "
                        "or GROUP/METRIC) in its declared direction (default: the specs' ranking priority, "
                        "ce_loss_recovered)")
    p.set_defaults(func=cmd_build)
    p = commands.add_parser("rebuild", help="rebuild every version from the records stored in it, in index order")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="leaderboard folder (default: leaderboard/)")
    p.add_argument("--into", type=Path, default=None,
                   help="write the rebuild here instead of in place (default: in place)")
    p.set_defaults(func=cmd_rebuild)
    p = commands.add_parser("link", help="list another leaderboard folder on this one's front page")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="leaderboard folder (default: leaderboard/)")
    p.add_argument("--board", required=True, help="the other board's folder, relative to --out, ending in '/'")
    p.add_argument("--title", required=True, help="the link's text")
    p.set_defaults(func=cmd_link)


def cmd_build(args) -> int:
    from sae_bench.leaderboard_build.api import build_leaderboard

    print(build_leaderboard(args.results, args.out, rank_by=args.rank_by).summary())
    return 0


def cmd_rebuild(args) -> int:
    from sae_bench.leaderboard_build.api import rebuild_all

    for report in rebuild_all(args.out, into=args.into):
        print(report.summary())
    return 0


def cmd_link(args) -> int:
    from sae_bench.leaderboard_build.api import link_board

    link_board(args.out, args.board, args.title)
    print(f"{args.out}/index.html links {args.board} ({args.title})")
    return 0
