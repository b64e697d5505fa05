"""The absorption task's part of a checkpoint page: SAEBench's first-letter absorption per letter.
Reads only the record's artifacts; never computes a metric; every record string escaped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sae_bench.leaderboard_build.markup import esc, fixed

if TYPE_CHECKING:  # pragma: no cover
    from sae_bench.records.results import ResultRecord


def render(record: ResultRecord) -> list[str]:
    """Per letter: probe F1, true positives, main latents, absorption fraction, full-absorption rate."""
    per_letter = (record.data.get("artifacts") or {}).get("per_letter") or {}
    if not isinstance(per_letter, dict) or not per_letter:
        return []
    out = ["<h2>Feature absorption per letter</h2>",
           "<p class=\"sub\">SAEBench 0.6.0's first-letter absorption: per letter, the first-letter probe's held-out "
           "F1, its true positives, the main (split) latents from k-sparse probing, the mean absorption fraction and "
           "the full-absorption rate over those true positives. Letters without a score failed the probe-F1 filter.</p>",
           '<div class="scroll"><table><thead><tr><th>letter</th><th class="num">probe F1</th>'
           '<th class="num">true positives</th><th>main latents</th><th class="num">absorption fraction</th>'
           '<th class="num">full absorption</th></tr></thead><tbody>']
    for letter, entry in sorted(per_letter.items()):
        entry = entry if isinstance(entry, dict) else {}
        latents = entry.get("main_latents") if isinstance(entry.get("main_latents"), list) else []
        out.append(f"<tr><td>{esc(letter)}</td><td class=\"num\">{fixed(entry.get('probe_f1'))}</td>"
                   f"<td class=\"num\">{esc(entry.get('probe_true_positives', ''))}</td>"
                   f"<td>{esc(', '.join(str(i) for i in latents))}</td>"
                   f"<td class=\"num\">{fixed(entry.get('absorption_fraction'))}</td>"
                   f"<td class=\"num\">{fixed(entry.get('full_absorption_rate'))}</td></tr>")
    out.append("</tbody></table></div>")
    return out
