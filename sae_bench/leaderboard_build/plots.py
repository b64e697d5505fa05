"""The standard SAE frontier plots: L0 against fvu and L0 against ce_loss_recovered (log-x),
one point per leaderboard row with its standard-error bars, labelled with the row number (#).

A plot pairs an `l0` column with an `fvu` (or `ce_loss_recovered`) column only when both come
from the same corpus (same corpus hash), and every column holds one comparability key, so a plot
never mixes numbers. Rows missing either value, or with L0 <= 0 (not placeable on a log axis),
are left out and counted.

Output is deterministic SVG (matplotlib Agg: fixed svg.hashsalt, no Date, fixed Creator, text
kept as text with a fixed font, no mathtext parsing of untrusted names), so a rebuild writes the
same bytes. This module never computes a metric and never draws anything not in the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

from sae_bench.leaderboard_build.table import LeaderboardTable, MetricColumn, number

FRONTIERS: tuple[tuple[str, str], ...] = (("l0", "fvu"), ("l0", "ce_loss_recovered"))

_RC = {
    "svg.hashsalt": "sae-bench-leaderboard",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "text.parse_math": False,
    "text.usetex": False,
    "axes.unicode_minus": False,
    "path.simplify": False,
}
_METADATA = {"Date": None, "Creator": "sae-bench leaderboard"}


@dataclass(frozen=True)
class Plot:
    filename: str
    title: str
    x: MetricColumn
    y: MetricColumn
    points: int
    dropped: int  # rows with one of the two values missing, or L0 <= 0


def plan_plots(table: LeaderboardTable) -> list[tuple[str, MetricColumn, MetricColumn]]:
    """(file name, x column, y column) for every frontier the table can draw."""
    planned = []
    for x_metric, y_metric in FRONTIERS:
        pairs = [(x, y) for x in table.columns if x.metric == x_metric
                 for y in table.columns if y.metric == y_metric and y.key.corpus_hash == x.key.corpus_hash]
        for i, (x, y) in enumerate(pairs):
            suffix = "" if len(pairs) == 1 else f"_{i + 1}"
            planned.append((f"{x_metric}_vs_{y_metric}{suffix}.svg", x, y))
    return planned


def _points(table: LeaderboardTable, x: MetricColumn, y: MetricColumn):
    points, dropped = [], 0
    for row in sorted(table.rows, key=lambda r: r.row):
        xe, ye = row.entry(x), row.entry(y)
        xv, yv = number(xe, "value"), number(ye, "value")
        if xv is None or yv is None or xv <= 0:
            dropped += 1 if (xe is not None or ye is not None) else 0
            continue
        points.append((row.row, xv, yv, number(xe, "stderr") or 0.0, number(ye, "stderr") or 0.0))
    return points, dropped


def _label_clusters(points, radius: float = 0.025) -> list[tuple[str, float, float]]:
    """One label per group of points that would print on top of each other ("5,7" at the first),
    judged in axis fractions (x on the log scale)."""
    lx = [math.log10(p[1]) for p in points]
    ys = [p[2] for p in points]
    span_x = (max(lx) - min(lx)) or 1.0
    span_y = (max(ys) - min(ys)) or 1.0
    clusters: list[list[int]] = []
    for i in range(len(points)):
        for cluster in clusters:
            j = cluster[0]
            if abs(lx[i] - lx[j]) / span_x < radius and abs(ys[i] - ys[j]) / span_y < radius:
                cluster.append(i)
                break
        else:
            clusters.append([i])
    return [(",".join(str(points[i][0]) for i in c), points[c[0]][1], points[c[0]][2]) for c in clusters]


def draw(table: LeaderboardTable, x: MetricColumn, y: MetricColumn, path: Path) -> Plot:
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    points, dropped = _points(table, x, y)
    title = f"{y.metric} against L0"
    with matplotlib.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=100)
        try:
            if points:
                ids, xs, ys, xerr, yerr = zip(*points)
                # A log axis cannot show a bar reaching to or below zero: clip the lower x error.
                xerr_low = [min(e, v * 0.999) for v, e in zip(xs, xerr)]
                ax.errorbar(xs, ys, xerr=[xerr_low, list(xerr)], yerr=list(yerr), fmt="o", markersize=5,
                            color="#1f5f9f", ecolor="#7f9fbf", elinewidth=1, capsize=2)
                for label, xv, yv in _label_clusters(points):
                    ax.annotate(label, (xv, yv), textcoords="offset points", xytext=(4, 4), fontsize=8)
                ax.set_xscale("log")
                # Plain tick labels: mathtext is off (untrusted names), so no "$10^{1}$" labels.
                ax.xaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())
                lo, hi = min(xs), max(xs)
                if math.isclose(lo, hi):
                    ax.set_xlim(lo / 2, hi * 2)
            else:
                ax.text(0.5, 0.5, "no rows with both values", ha="center", va="center", transform=ax.transAxes)
            ax.set_xlabel(f"{x.name} (log scale)")
            ax.set_ylabel(y.name)
            ax.set_title(f"{title} ({len(points)} rows; labels are the # column)")
            ax.grid(True, which="both", linewidth=0.4, alpha=0.5)
            fig.tight_layout()
            fig.savefig(path, format="svg", metadata=_METADATA)
        finally:
            plt.close(fig)
    return Plot(path.name, title, x, y, len(points), dropped)


def draw_all(table: LeaderboardTable, folder: Path) -> list[Plot]:
    folder.mkdir(parents=True, exist_ok=True)
    return [draw(table, x, y, folder / name) for name, x, y in plan_plots(table)]
