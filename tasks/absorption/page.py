"""Checkpoint-page sections of the SAEBench-comparable interpretability tasks: per-letter
absorption (task `absorption`) and per-dataset k-sparse probing accuracy (task `sparse_probing`).

Reads only the records' metrics and artifacts; never computes a metric. (A pending restructuring
moves task sections into their task folders; these two are kept together here until then.)
"""

from __future__ import annotations

from typing import Any

from sae_bench.leaderboard_build.page import esc
from sae_bench.leaderboard_build.table import Row


def _record(row: Row, task: str):
    return next((r for r in row.records if r.task_name == task), None)


def _num(value: Any, digits: str = ".3f") -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    return format(value, digits)


def absorption_section(row: Row) -> list[str]:
    record = _record(row, "absorption")
    per_letter = ((record.data.get("artifacts") or {}).get("per_letter") if record else None) or {}
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
        out.append(f"<tr><td>{esc(letter)}</td><td class=\"num\">{_num(entry.get('probe_f1'))}</td>"
                   f"<td class=\"num\">{esc(entry.get('probe_true_positives', ''))}</td>"
                   f"<td>{esc(', '.join(str(i) for i in latents))}</td>"
                   f"<td class=\"num\">{_num(entry.get('absorption_fraction'))}</td>"
                   f"<td class=\"num\">{_num(entry.get('full_absorption_rate'))}</td></tr>")
    out.append("</tbody></table></div>")
    return out


def sparse_probing_section(row: Row) -> list[str]:
    record = _record(row, "sparse_probing")
    arts = (record.data.get("artifacts") or {}) if record else {}
    per_dataset = arts.get("per_dataset")
    if not isinstance(per_dataset, dict) or not per_dataset:
        return []
    metrics = sorted({m for entry in per_dataset.values() if isinstance(entry, dict) for m in entry})
    out = ["<h2>Sparse probing per dataset</h2>",
           f"<p class=\"sub\">{esc(arts.get('protocol', ''))}: mean held-out accuracy over each dataset's classes of "
           "logistic probes on the top-k SAE latents (sae_top_k) and top-k raw dimensions (llm_top_k), texts "
           f"mean-pooled; data: {esc(arts.get('data_dir', ''))}.</p>",
           '<div class="scroll"><table><thead><tr><th>dataset</th>'
           + "".join(f'<th class="num">{esc(m.replace("_test_accuracy", ""))}</th>' for m in metrics)
           + "</tr></thead><tbody>"]
    for dataset, entry in sorted(per_dataset.items()):
        entry = entry if isinstance(entry, dict) else {}
        cells = "".join(f'<td class="num">{_num((entry.get(m) or {}).get("mean") if isinstance(entry.get(m), dict) else None)}'
                        "</td>" for m in metrics)
        out.append(f"<tr><td>{esc(dataset)}</td>{cells}</tr>")
    out.append("</tbody></table></div>")
    return out


def interp_sections(row: Row) -> list[str]:
    return absorption_section(row) + sparse_probing_section(row)
