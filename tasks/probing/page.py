"""The probing task's part of a checkpoint page: accuracy per category of the probe set, and the
feature-map labels it tested. Reads the record's artifacts only; every record string escaped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sae_bench.leaderboard_build.markup import breakable, esc, fmt

if TYPE_CHECKING:  # pragma: no cover
    from sae_bench.records.results import ResultRecord


def render(record: ResultRecord) -> list[str]:
    """Held-out probe accuracy per category, and the feature-map labels tested."""
    arts = record.data.get("artifacts") or {}
    per_category = arts.get("per_category")
    if not isinstance(per_category, dict) or not per_category:
        return []
    fields = sorted({k for v in per_category.values() if isinstance(v, dict) for k, x in v.items()
                     if isinstance(x, (int, float)) and not isinstance(x, bool)})
    out = ["<h2>Probing per category</h2>",
           "<p class=\"sub\">Held-out accuracy of logistic probes on k SAE latents (sae_accuracy_k) and on k raw "
           "dimensions (raw_accuracy_k) per category of the probe set.</p>",
           '<div class="scroll"><table><thead><tr><th>category</th>'
           + "".join(f"<th>{breakable(f)}</th>" for f in fields) + "</tr></thead><tbody>"]
    for category, values in sorted(per_category.items()):
        values = values if isinstance(values, dict) else {}
        cells = "".join(f'<td class="num">{esc(fmt(values.get(f)))}</td>' for f in fields)
        out.append(f"<tr><td>{esc(category)}</td>{cells}</tr>")
    out.append("</tbody></table></div>")
    checks = arts.get("label_check")
    if isinstance(checks, list) and checks:
        out.append("<h3>Feature-map labels tested</h3>")
        out.append("<table><thead><tr><th>latent</th><th>label</th><th>category</th><th class=\"num\">AUROC</th>"
                   "<th class=\"num\">p</th><th>confirmed</th></tr></thead><tbody>")
        for c in checks:
            if isinstance(c, dict):
                out.append("<tr>" + "".join(f"<td>{esc(fmt(c.get(k)))}</td>" for k in
                                            ("sae_index", "label", "category", "auroc", "p_value", "confirmed")) + "</tr>")
        out.append("</tbody></table>")
    return out
