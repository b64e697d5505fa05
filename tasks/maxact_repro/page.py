"""The maxact_repro task's part of a checkpoint page: how well the stored max-activation contexts
reproduce. Reads the record's metrics and artifacts only; every record string escaped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sae_bench.leaderboard_build.markup import cell_text, dl, esc, fmt

if TYPE_CHECKING:  # pragma: no cover
    from sae_bench.records.results import ResultRecord


def render(record: ResultRecord) -> list[str]:
    """The agreement metrics, and per feature what reproduced."""
    metrics = record.metrics
    out = ["<h2>Max-activation agreement</h2>",
           "<p class=\"sub\">Re-running the stored max-activation contexts: the share of features whose top "
           "examples reproduce, the rank agreement (Spearman) and peak position agreement.</p>",
           dl([(name, cell_text(entry)) for name, entry in sorted(metrics.items())])]
    per_feature = (record.data.get("artifacts") or {}).get("per_feature")
    if isinstance(per_feature, list) and per_feature:
        fields = sorted({k for f in per_feature if isinstance(f, dict) for k in f})
        out.append(f"<details><summary>per feature ({len(per_feature)})</summary><div class=\"scroll\"><table>"
                   "<thead><tr>" + "".join(f"<th>{esc(f)}</th>" for f in fields) + "</tr></thead><tbody>")
        for feature in per_feature:
            if isinstance(feature, dict):
                out.append("<tr>" + "".join(f'<td class="num">{esc(fmt(feature.get(f)))}</td>' for f in fields)
                           + "</tr>")
        out.append("</tbody></table></div></details>")
    return out
