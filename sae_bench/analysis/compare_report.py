"""`sae-bench compare --html FILE`: the side-by-side comparison as one self-contained HTML page.

Why: the terminal table says whether B differs from A; the page also shows *how*: for every metric
measured on the same sequences, the distribution of the per-sequence differences B_i − A_i (a
shift of the whole histogram is a real change; one outlier sequence is not), drawn with matplotlib
as inline SVG (legend in every plot, no hovering needed).

Per-sequence values are read from the records: `artifacts.per_sequence_terms[metric]` gives a_i/b_i
(sequences with b_i = 0 left out), else `artifacts.per_sequence[metric]`. Every string from a
record is escaped. This module never computes a metric beyond those per-sequence quotients.
"""

from __future__ import annotations

import html
import io
import math
from pathlib import Path
from typing import Any

from sae_bench.analysis.compare import WIDE_FOOTER, Comparison, MetricComparison, _pm
from sae_bench.analysis.pairing import RecordPair, per_sequence, ratio_terms
from sae_bench.records.results import atomic_write_text

PANELS_PER_ROW = 4
STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 1em 1.5em; color: #1d1d1d; }
h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin-top: 1.4em; }
table { border-collapse: collapse; font-size: 0.82em; }
th, td { border: 1px solid #d0d0d0; padding: 0.2em 0.45em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
thead th { background: #eef2f6; }
td.A { background: #e6f0ff; } td.B { background: #e8f6e8; }
pre { background: #f4f4f4; padding: 0.6em; font-size: 0.8em; white-space: pre-wrap; }
svg { max-width: 100%; height: auto; }
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def per_sequence_values(record, metric: str) -> list[float | None] | None:
    """Per-sequence values of `metric` in `record` (a_i/b_i from its terms, else its stored values)."""
    terms = ratio_terms(record, metric)
    if terms is not None:
        return [a / b if b != 0 else None for a, b in zip(*terms)]
    values = per_sequence(record, metric)
    if values is None:
        return None
    return [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None
            for v in values]


def sequence_differences(pair: RecordPair, metric: str) -> list[float]:
    """B_i − A_i over the sequences where both values exist (empty unless both saw the same sequences)."""
    if pair.a is None or pair.b is None or pair.a.corpus_hash != pair.b.corpus_hash:
        return []
    xs, ys = per_sequence_values(pair.a, metric), per_sequence_values(pair.b, metric)
    if xs is None or ys is None or len(xs) != len(ys):
        return []
    return [y - x for x, y in zip(xs, ys) if x is not None and y is not None]


def _svg(panels: list[tuple[str, list[float], float]]) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rc = {"svg.fonttype": "none", "svg.hashsalt": "sae-bench-compare", "font.family": "DejaVu Sans",
          "font.size": 8.0, "text.parse_math": False, "axes.unicode_minus": False}
    cols = min(PANELS_PER_ROW, len(panels))
    rows = -(-len(panels) // cols)
    with matplotlib.rc_context(rc):
        fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.5 * rows), dpi=100, squeeze=False)
        try:
            for ax in axes.flat[len(panels):]:
                ax.set_visible(False)
            for ax, (metric, deltas, diff) in zip(axes.flat, panels):
                ordered = sorted(deltas)
                lo = ordered[int(0.01 * (len(ordered) - 1))]
                hi = ordered[int(0.99 * (len(ordered) - 1))]
                if lo == hi:
                    lo, hi = lo - 0.5 * (abs(lo) or 1e-6), hi + 0.5 * (abs(hi) or 1e-6)
                ax.hist([min(max(d, lo), hi) for d in deltas], bins=25, range=(lo, hi), color="#4c72b0", alpha=0.85,
                        label=f"B−A per sequence ({len(deltas)})")
                ax.axvline(0.0, color="#888888", linewidth=0.8, label="no difference")
                ax.axvline(diff, color="#c44e52", linestyle="--", linewidth=1.2, label=f"metric B−A {diff:+.3g}")
                ax.set_xlabel(metric)
                ax.set_ylabel("sequences")
                ax.legend(loc="best", fontsize=6.5, framealpha=0.8)
            fig.tight_layout()
            buffer = io.StringIO()
            fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "sae-bench compare"})
        finally:
            plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _row_cells(r: MetricComparison, several: bool) -> str:
    ci = "-" if r.ci_low is None else f"[{r.ci_low:+.3g}, {r.ci_high:+.3g}]"
    diff = "-" if r.diff is None else f"{r.diff:+.4g}"
    cells = ([esc(r.checkpoint)] if several else []) + [esc(r.hookpoint), esc(r.task), esc(r.metric)]
    nums = [_pm(r.a, r.a_stderr), _pm(r.b, r.b_stderr), diff, ci]
    better_cls = f' class="{r.better}"' if r.better in ("A", "B") else ""
    return ("".join(f"<td>{c}</td>" for c in cells) + "".join(f'<td class="num">{esc(n)}</td>' for n in nums)
            + f"<td>{esc(r.pairing)}</td><td{better_cls}>{esc(r.better)}</td>")


def render_html(comparison: Comparison) -> str:
    several = any(r.checkpoint for r in comparison.rows)
    header = (["checkpoint"] if several else []) + ["hookpoint", "task", "metric", "A", "B", "B-A",
                                                    "95% CI of B-A", "pairing", "better"]
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           "<title>sae-bench compare</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
           "<h1>sae-bench compare</h1>",
           f"<p><b>A</b>: {esc(comparison.a_label)}<br><b>B</b>: {esc(comparison.b_label)}</p>",
           "<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    out += [f"<tr>{_row_cells(r, several)}</tr>" for r in comparison.rows]
    out.append("</tbody></table>")
    out += [f"<p>not compared: {esc(reason)}</p>" for reason in comparison.refused]
    if comparison.dictionary is not None:
        d = comparison.dictionary
        out.append(f"<p>dictionary: {d.share_matched:.4f} of A's {d.n_a} latents have a B latent (of {d.n_b}) at "
                   f"cosine ≥ {d.threshold:g}; mean max cosine {d.mean_max_cos:.4f}</p>")
    out.append(f"<pre>{esc(WIDE_FOOTER)}</pre>")
    out.append("<h2>Per-sequence differences</h2>")
    drawn = 0
    for pair in comparison.pairs:
        if not pair.comparable:
            continue
        rows = {r.metric: r for r in comparison.rows if (r.checkpoint, r.hookpoint, r.task) ==
                ((pair.key[0] if len(pair.key) == 3 else ""), pair.hookpoint, pair.task)}
        panels = [(metric, deltas, row.diff) for metric, row in sorted(rows.items())
                  if row.diff is not None and len(deltas := sequence_differences(pair, metric)) >= 2]
        same = [metric for metric, deltas, _ in panels if not any(deltas)]
        panels = [p for p in panels if any(p[1])]
        if not panels and not same:
            continue
        drawn += 1
        title = " · ".join(([pair.key[0]] if len(pair.key) == 3 else []) + [pair.hookpoint, pair.task])
        out.append(f"<h3>{esc(title)}</h3>")
        if same:
            out.append(f"<p>Identical on every sequence: {esc(', '.join(same))}.</p>")
        if panels:
            out.append(_svg(panels))
    if not drawn:
        out.append("<p>No metric has per-sequence values on both sides for the same sequences.</p>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def write_html(comparison: Comparison, path: str | Path) -> Path:
    path = Path(path)
    atomic_write_text(path, render_html(comparison))
    return path
