"""The static leaderboard: result records -> leaderboard/<version>/ (table files, plots, page).

Modules: collect (read, validate, group by comparability key), versioning (which folder),
table (rows.parquet, rows.csv, table.md), plots (frontier SVGs), page (HTML), api
(`build_leaderboard`, `rebuild_all`; `sae-bench leaderboard` is `sae_bench.cli.leaderboard`). It reads
records and never computes a metric. Imports are lazy so that `sae-bench --help` stays fast.
"""

__all__ = ["BuildReport", "build_leaderboard", "rebuild_all"]


def __getattr__(name):
    if name in __all__:
        from sae_bench.leaderboard_build import api

        return getattr(api, name)
    raise AttributeError(name)
