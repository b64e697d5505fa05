"""The sparse_probing task's part of a checkpoint page: k-sparse probing accuracy per dataset.
Reads only the record's artifacts; never computes a metric; every record string escaped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sae_bench.leaderboard_build.markup import esc, fixed

if TYPE_CHECKING:  # pragma: no cover
    from sae_bench.records.results import ResultRecord


def render(record: ResultRecord) -> list[str]:
    """Per dataset: the mean held-out accuracy of the top-k SAE-latent and raw-dimension probes."""
    arts = record.data.get("artifacts") or {}
    per_dataset = arts.get("per_dataset")
    if not isinstance(per_dataset, dict) or not per_dataset:
        return []
    metrics = sorted({m for entry in per_dataset.values() if isinstance(entry, dict) for m in entry})
    out = ["<h2>Sparse probing per dataset</h2>",
           f"<p class=\"sub\">{esc(arts.get('protocol', ''))}: mean held-out accuracy over each dataset's classes of "
           "logistic probes on the top-k SAE latents (sae_top_k) and top-k raw dimensions (llm_top_k), and with "
           "dense_probes on every latent (sae) and dimension (llm), texts "
           f"mean-pooled; data: {esc(arts.get('data_dir', ''))}.</p>",
           '<div class="scroll"><table><thead><tr><th>dataset</th>'
           + "".join(f'<th class="num">{esc(m.replace("_test_accuracy", ""))}</th>' for m in metrics)
           + "</tr></thead><tbody>"]
    for dataset, entry in sorted(per_dataset.items()):
        entry = entry if isinstance(entry, dict) else {}
        cells = "".join(f'<td class="num">{fixed((entry.get(m) or {}).get("mean") if isinstance(entry.get(m), dict) else None)}'
                        "</td>" for m in metrics)
        out.append(f"<tr><td>{esc(dataset)}</td>{cells}</tr>")
    out.append("</tbody></table></div>")
    return out
