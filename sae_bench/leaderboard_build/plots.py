"""The leaderboard's plots (matplotlib, SVG), each readable without hovering: every plot has a legend.

- Frontiers, one figure per site (hookpoint): L0 (log x) against each metric whose MetricSpec sets
  `frontier` (fvu, ce_loss_recovered, kl_score ...), a panel each in that order; points coloured by
  family (`LeaderboardTable.family_index`), labelled
  with the row's rank at that site (the page's rank column), placed so that no two labels overlap
  (a label with no free spot is left out, and the rank is still in the table); the Pareto front
  (lower L0 and a better value than every point left of it, "better" as the metric's `MetricSpec`
  declares) drawn as a dashed step line. A panel
  pairs an `l0` column with a metric column of the same corpus only.
- Depth: for releases evaluated at two or more layers (hookpoints numbered `...layers.N`), each
  metric whose MetricSpec sets `depth` against the layer, one line per release, coloured by family.
- Per checkpoint: the figures tasks declare (`views.RowPlot`, drawn by the task's own module with
  the helpers here: `pyplot`, `RC`, `save`, `draw_distributions` ...), e.g. the sparsity task's
  firing-frequency histogram and spliced loss's per-sequence distribution.

Output is deterministic SVG (matplotlib Agg: fixed svg.hashsalt, no Date, fixed Creator, text kept
as text with a fixed font, no mathtext parsing of untrusted names), so a rebuild writes the same
bytes. This module never computes a metric and never draws anything not in the records (the
Pareto front is a selection of drawn points, not a number).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

from sae_bench.leaderboard_build import views
from sae_bench.leaderboard_build.table import LeaderboardTable, MetricColumn, Row, Site, number
from sae_bench.records.results import slug

X_METRIC = "l0"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
           "#7f7f7f")
_LAYER = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks)\.(\d+)((?:\.[A-Za-z_][\w]*)*)$")

RC = {
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
    filename: str  # relative to the version folder's plots/
    title: str
    kind: str  # "frontier" | "depth" | "histogram" | "per_sequence"
    points: int
    dropped: int = 0  # rows with a value missing, or L0 <= 0
    hookpoint: str | None = None
    row: int | None = None
    unlabelled: tuple[int, ...] = field(default=())  # ranks whose label found no free spot
    size: tuple[int, int] = (640, 440)  # pixels (width, height) at 100 dpi

    def to_json(self) -> dict:
        return {"filename": self.filename, "title": self.title, "kind": self.kind, "points": self.points,
                "dropped": self.dropped, "hookpoint": self.hookpoint, "row": self.row,
                "unlabelled": list(self.unlabelled), "size": list(self.size)}

    @classmethod
    def from_json(cls, data: dict) -> "Plot":
        return cls(**{**data, "unlabelled": tuple(data.get("unlabelled", ())), "size": tuple(data["size"])})


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def layer_of(hookpoint: str) -> int | None:
    """The layer number of `...layers.N` or `...layers.N.<site>` (mlp_out, hook_resid_post ...), else None."""
    match = _LAYER.search(hookpoint)
    return int(match.group(1)) if match else None


def site_kind(hookpoint: str) -> str:
    """What follows the layer number ("" for the block output): depth lines never mix kinds of site."""
    match = _LAYER.search(hookpoint)
    return match.group(2).lstrip(".") if match else ""


def pyplot():
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> tuple[int, int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata=_METADATA)
    width, height = fig.get_size_inches() * 96  # CSS pixels: the SVG is sized in points (1/72 in)
    return int(round(width)), int(round(height))


def _log_x(ax, xs: list[float]) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    lo, hi = min(xs), max(xs)
    if math.isclose(lo, hi):
        ax.set_xlim(lo / 2, hi * 2)
    else:
        ax.set_xlim(lo / 1.6, hi * 1.6)
    span = math.log10(ax.get_xlim()[1] / ax.get_xlim()[0])
    # Plain tick labels (mathtext is off: untrusted names), few enough not to touch each other.
    ax.xaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0) if span < 2.5 else (1.0,)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


# ------------------------------------------------------------------------------- frontiers
def pareto_front(points: list[tuple[float, float]], lower_is_better: bool) -> list[tuple[float, float]]:
    """The points no other point beats on both L0 (lower) and the metric, sorted by L0."""
    front: list[tuple[float, float]] = []
    best = None
    for x, y in sorted(points, key=lambda p: (p[0], p[1] if lower_is_better else -p[1])):
        if best is None or (y < best if lower_is_better else y > best):
            front.append((x, y))
            best = y
    return front


def frontier_columns(table: LeaderboardTable) -> list[tuple[MetricColumn, MetricColumn]]:
    """(x = l0 column, y column) for each frontier metric, same corpus; the first such pair per metric."""
    pairs = []
    for metric in views.flagged_metrics("frontier"):
        found = next(((x, y) for x in table.columns if x.metric == X_METRIC
                      for y in table.columns if y.metric == metric and y.key.corpus_hash == x.key.corpus_hash), None)
        if found:
            pairs.append(found)
    return pairs


def _site_points(site: Site, x: MetricColumn, y: MetricColumn):
    points, dropped = [], 0
    for row in site.rows:
        xe, ye = row.entry(x), row.entry(y)
        xv, yv = number(xe, "value"), number(ye, "value")
        if xv is None or yv is None or xv <= 0:
            dropped += 1 if (xe is not None or ye is not None) else 0
            continue
        points.append((row, xv, yv, number(xe, "stderr") or 0.0, number(ye, "stderr") or 0.0))
    return points, dropped


def _overlaps(a, b, pad: float = 1.0) -> bool:
    return not (a.x1 + pad <= b.x0 or b.x1 + pad <= a.x0 or a.y1 + pad <= b.y0 or b.y1 + pad <= a.y0)


_OFFSETS = ((5, 5), (5, -12), (-12, 5), (-12, -12), (8, -3), (-16, -3), (-3, 8), (-3, -15),
            (14, 10), (-20, 10), (14, -18), (-20, -18))


def place_labels(fig, ax, labelled: list[tuple[str, float, float]], taken: list) -> list[str]:
    """Annotate each (text, x, y) at the first offset whose box overlaps no placed label and stays
    inside the axes; returns the texts that found no spot (left out)."""
    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    left_out = []
    for text, xv, yv in labelled:
        for dx, dy in _OFFSETS:
            note = ax.annotate(text, (xv, yv), textcoords="offset points", xytext=(dx, dy), fontsize=8)
            box = note.get_window_extent(renderer)
            if (box.x0 >= inside.x0 and box.x1 <= inside.x1 and box.y0 >= inside.y0 and box.y1 <= inside.y1
                    and not any(_overlaps(box, other) for other in taken)):
                taken.append(box)
                break
            note.remove()
        else:
            left_out.append(text)
    return left_out


def draw_frontiers(table: LeaderboardTable, site: Site, path: Path) -> Plot | None:
    """One figure for a site: a panel per frontier metric with points; None when no panel has two points."""
    from matplotlib.lines import Line2D

    panels = []
    dropped = 0
    for x, y in frontier_columns(table):
        points, lost = _site_points(site, x, y)
        if len(points) >= 2:
            panels.append((x, y, points))
            dropped = max(dropped, lost)
    if not panels:
        return None
    plt = pyplot()
    unlabelled: list[int] = []
    with matplotlib.rc_context(RC):
        fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels) + 1.9, 3.1), dpi=100, squeeze=False)
        try:
            families_here = []
            for ax, (x, y, points) in zip(axes[0], panels):
                better = y.higher_is_better  # the metric's spec; x = L0, lower is better
                lower = better is False
                for row, xv, yv, xe, ye in points:
                    fam = table.family_index(row)
                    if fam not in families_here:
                        families_here.append(fam)
                    ax.errorbar([xv], [yv], xerr=[[min(xe, xv * 0.999)], [xe]], yerr=[[ye], [ye]], fmt="o",
                                markersize=6, color=colour(fam), ecolor=colour(fam), elinewidth=0.8, capsize=2,
                                alpha=0.9)
                front = pareto_front([(p[1], p[2]) for p in points], lower) if better is not None else []
                if len(front) >= 2:
                    fx, fy = zip(*front)
                    ax.plot(fx, fy, linestyle="--", color="#444444", linewidth=1.0, drawstyle="steps-post", zorder=0)
                _log_x(ax, [p[1] for p in points])
                lo, hi = min(p[2] - p[4] for p in points), max(p[2] + p[4] for p in points)
                pad = (hi - lo) * 0.18 or abs(hi) * 0.05 or 0.05
                ax.set_ylim(lo - pad, hi + pad)
                ax.set_xlabel("L0 (log scale)")
                ax.set_ylabel(y.metric if better is None else f"{y.metric} ({'higher' if better else 'lower'} is better)")
                ax.grid(True, which="major", linewidth=0.4, alpha=0.5)
            fig.tight_layout(rect=(0, 0, 1 - 1.9 / (3.6 * len(panels) + 1.9), 1))
            for ax, (x, y, points) in zip(axes[0], panels):
                # Labels: the rank at this site; rows on the same spot share one label ("2,3").
                spots: dict[tuple[float, float], list[int]] = {}
                for row, xv, yv, _, _ in points:
                    if row.rank is not None:
                        spots.setdefault((xv, yv), []).append(row.rank)
                labelled = [(",".join(str(r) for r in sorted(set(ranks))) + (f" ×{len(ranks)}" if len(set(ranks)) < len(ranks)
                                                                              else ""), xv, yv)
                            for (xv, yv), ranks in sorted(spots.items(), key=lambda kv: min(kv[1]))]
                taken: list = []
                unlabelled += [int(r) for t in place_labels(fig, ax, labelled, taken) for r in t.split(" ")[0].split(",")]
            handles = [Line2D([], [], marker="o", linestyle="", color=colour(f), label=table.families[f])
                       for f in sorted(families_here)]
            handles.append(Line2D([], [], linestyle="--", color="#444444", label="Pareto front"))
            fig.legend(handles=handles, loc="upper right", title="family (labels: rank)", fontsize=8,
                       title_fontsize=8, frameon=False, borderaxespad=0.6)
            size = save(fig, path)
        finally:
            plt.close(fig)
    title = f"frontiers at {site.hookpoint}: " + ", ".join(f"{y.metric} against L0" for _, y, _ in panels)
    return Plot(f"{path.parent.name}/{path.name}", title, "frontier", len(site.rows), dropped,
                hookpoint=site.hookpoint, unlabelled=tuple(sorted(set(unlabelled))), size=size)


# ----------------------------------------------------------------------------------- depth
def releases(table: LeaderboardTable) -> dict[str, list[Row]]:
    """Line label -> rows at numbered layers, one line per checkpoint id and kind of site (block
    output, mlp_out ...), for lines with two or more layers. The label is the id, with the site kind."""
    found: dict[str, list[Row]] = {}
    for row in table.rows:
        if layer_of(row.hookpoint) is not None:
            kind = site_kind(row.hookpoint)
            found.setdefault(row.checkpoint + (f" · {kind}" if kind else ""), []).append(row)
    return {k: sorted(v, key=lambda r: layer_of(r.hookpoint)) for k, v in sorted(found.items()) if len(v) >= 2}


def _short(name: str, width: int = 34) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]


def draw_depth(table: LeaderboardTable, path: Path) -> Plot | None:
    """Each depth metric against the layer, one line per multi-layer release; None when there is none."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    lines = releases(table)
    columns = {m: next((c for c in table.columns if c.metric == m), None) for m in views.flagged_metrics("depth")}
    panels = [(m, c) for m, c in columns.items()
              if c is not None and any(number(r.entry(c), "value") is not None for rs in lines.values() for r in rs)]
    if not lines or not panels:
        return None
    plt = pyplot()
    with matplotlib.rc_context(RC):
        legend_width = 2.4
        width = 2.5 * len(panels) + legend_width
        fig, axes = plt.subplots(1, len(panels), figsize=(width, 2.3), dpi=100, squeeze=False)
        try:
            for ax, (metric, column) in zip(axes[0], panels):
                for release, rows in lines.items():
                    pts = [(layer_of(r.hookpoint), number(r.entry(column), "value"), number(r.entry(column), "stderr"))
                           for r in rows]
                    pts = [p for p in pts if p[1] is not None]
                    if not pts:
                        continue
                    fam = colour(table.family_index(rows[0]))
                    ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] or 0.0 for p in pts],
                                color=fam, marker="o", markersize=4, linewidth=1.2, capsize=2)
                if metric == X_METRIC:  # L0 spans decades, as on the frontiers' x axis
                    from matplotlib.ticker import FuncFormatter

                    ax.set_yscale("log")
                    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
                    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: ""))
                ax.set_xlabel("layer")
                ax.set_ylabel(metric)
                ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
                ax.grid(True, linewidth=0.4, alpha=0.5)
            fig.tight_layout(rect=(0, 0, 1 - legend_width / width, 1))
            names = list(lines)
            cut = os.path.commonprefix(names).rfind("/") + 1 if len(names) > 1 else names[0].rfind("/") + 1
            handles = [Line2D([], [], marker="o", color=colour(table.family_index(rows[0])),
                              label=_short(release[cut:] or release, 30))
                       for release, rows in lines.items()]
            fig.legend(handles=handles, loc="upper right", title="release", fontsize=7, title_fontsize=8,
                       frameon=False, borderaxespad=0.6)
            size = save(fig, path)
        finally:
            plt.close(fig)
    return Plot(f"{path.parent.name}/{path.name}", "metrics against layer, one line per release", "depth",
                sum(len(v) for v in lines.values()), size=size)


# ---------------------------------------------------------------------------- per checkpoint
def label_histogram(ax, xlabel: str, ylabel: str, legend_loc: str, legend_size: int) -> None:
    """Axis labels, legend and horizontal grid of the page's histograms (one look for all of them)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc=legend_loc, fontsize=legend_size, frameon=False)
    ax.grid(True, axis="y", linewidth=0.4, alpha=0.5)


def draw_distributions(panels: list[tuple[str, list[float], str]], path: Path,
                       legend_label: str) -> tuple[int, int] | None:
    """Histograms of per-sequence values, one panel per (title, values, colour); returns the size, or
    None when there is nothing to draw."""
    panels = [p for p in panels if len(p[1]) >= 2]
    if not panels:
        return None
    plt = pyplot()
    with matplotlib.rc_context(RC):
        fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels) + 0.6, 2.8), dpi=100, squeeze=False)
        try:
            for ax, (title, values, col) in zip(axes[0], panels):
                ax.hist(values, bins=min(30, max(5, len(values) // 4)), color=col, alpha=0.85,
                        label=f"{legend_label} ({len(values)})")
                mean = sum(values) / len(values)
                ax.axvline(mean, color="#222222", linestyle="--", linewidth=1, label=f"mean {mean:.3g}")
                label_histogram(ax, title, "sequences", "upper right", 7)
            fig.tight_layout()
            size = save(fig, path)
        finally:
            plt.close(fig)
    return size


# ----------------------------------------------------------------------------------- all
def row_stem(row: Row) -> str:
    """A file stem for a row's own files (unique: the row number leads)."""
    return f"{row.row}-{slug(row.checkpoint)}-{slug(row.hookpoint)}"[:150]


def draw_all(table: LeaderboardTable, folder: Path) -> list[Plot]:
    """Every plot of a version into `folder` (the version's plots/): depth, frontiers per site, and
    each row's figures that the tasks declare (`views.RowPlot`: histogram, per-sequence ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn: list[Plot] = []
    depth = draw_depth(table, folder / "depth.svg")
    if depth:
        drawn.append(depth)
    for i, site in enumerate(table.sites):
        plot = draw_frontiers(table, site, folder / f"frontier-{i + 1}-{slug(site.hookpoint)}.svg")
        if plot:
            drawn.append(plot)
    row_plots = views.declared("row_plots")
    for row in sorted(table.rows, key=lambda r: r.row):
        for task, declared in row_plots:
            record = views.record_of(row, task)
            plot = views.resolve(declared.draw)(table, row, record, folder / f"{row_stem(row)}-{declared.suffix}.svg") \
                if record is not None else None
            if plot:
                drawn.append(plot)
    return drawn
