"""The sparsity task's figure on each checkpoint page: the firing-frequency histogram (log10
frequency bins from the record's `firing_histogram` artifact, dead latents as their own bar,
log-scale counts). Drawn with the leaderboard's plot helpers; reads the record only."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

from sae_bench.leaderboard_build.plots import RC, Plot, colour, label_histogram, pyplot, save

if TYPE_CHECKING:  # pragma: no cover
    from sae_bench.leaderboard_build.table import LeaderboardTable, Row
    from sae_bench.records.results import ResultRecord


def firing_histogram(record: ResultRecord) -> dict | None:
    """The record's firing histogram artifact when it is well formed, else None."""
    hist = (record.data.get("artifacts") or {}).get("firing_histogram")
    if not isinstance(hist, dict):
        return None
    edges, counts = hist.get("log10_bin_edges"), hist.get("counts")
    if not (isinstance(edges, list) and isinstance(counts, list) and len(edges) == len(counts) + 1 and counts):
        return None
    return hist


def draw_histogram(table: LeaderboardTable, row: Row, record: ResultRecord, path: Path) -> Plot | None:
    """The row's firing-frequency histogram (log10 frequency, log-scale counts); None without one."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    hist = firing_histogram(record)
    if hist is None:
        return None
    edges = [float(e) for e in hist["log10_bin_edges"]]
    counts = [int(c) for c in hist["counts"]]
    dead = int(hist.get("dead") or 0)
    plt = pyplot()
    with matplotlib.rc_context(RC):
        fig, ax = plt.subplots(figsize=(5.6, 2.8), dpi=100)
        try:
            widths = [b - a for a, b in zip(edges, edges[1:])]
            fam = colour(table.family_index(row))
            ax.bar(edges[:-1], counts, width=widths, align="edge", color=fam, edgecolor="white", linewidth=0.5,
                   label=f"alive latents ({sum(counts)})")
            dead_x = edges[0] - 1.0 - widths[0] / 2  # a decade left of the first bin: room for its label
            ax.bar([dead_x], [dead], width=widths[0], align="edge", color="#999999", hatch="//",
                   label=f"dead: never fired ({dead})")
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: ""))
            top = max(counts + [dead, 1])
            ax.set_ylim(0.7, top * 3)
            ticks = list(range(math.floor(edges[0]), math.ceil(edges[-1]) + 1))
            ax.xaxis.set_major_locator(FixedLocator([dead_x + widths[0] / 2] + ticks))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, pos: "dead" if pos == 0 else f"1e{int(round(v))}"))
            label_histogram(ax, f"firing frequency (share of {hist.get('tokens', '?')} tokens, log scale)",
                             "latents (log scale)", "upper left", 8)
            fig.tight_layout()
            size = save(fig, path)
        finally:
            plt.close(fig)
    return Plot(f"{path.parent.name}/{path.name}", "firing-frequency histogram", "histogram", len(counts), row=row.row,
                size=size)
