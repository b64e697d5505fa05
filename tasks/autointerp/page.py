"""The autointerp task's part of a checkpoint page: which judge and prompts, and a table of the
sampled latents with their explanation, scores, failures and top contexts.

Explanations and contexts are model output and corpus text: hostile. Every piece goes through
`html.escape`; the only markup added is <mark> around the tokens the record marked `<<…>>`.
This module never reads files; it gets the record's JSON.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sae_bench.leaderboard_build.markup import esc, fixed

if TYPE_CHECKING:  # pragma: no cover
    from sae_bench.records.results import ResultRecord

MAX_ROWS = 200  # latents shown (the record keeps all of them)
SCORES = (("autointerp_score", "SAEBench"), ("detection_balanced_accuracy", "detection"),
          ("fuzzing_balanced_accuracy", "fuzzing"))
_MARK = re.compile(r"<<(.*?)>>", re.S)


def marked(text: str) -> str:
    """Escaped text with `<<tok>>` shown as <mark>tok</mark>."""
    out, last = [], 0
    for m in _MARK.finditer(text):
        out.append(esc(text[last:m.start()]) + f"<mark>{esc(m.group(1))}</mark>")
        last = m.end()
    return "".join(out) + esc(text[last:])


def render(data: dict[str, Any] | None) -> list[str]:
    """HTML lines for one autointerp record's JSON (`[]` without one)."""
    if not data:
        return []
    arts = data.get("artifacts") or {}
    judge, usage = arts.get("judge") or {}, arts.get("judge_usage") or {}
    rows = [r for r in arts.get("per_latent") or [] if isinstance(r, dict)]
    out = ["<h2>Automated interpretability</h2>",
           f"<p class=\"sub\">Judge <code>{esc(judge.get('identity', ''))}</code>, prompts "
           f"{esc(', '.join(f'{k} {v}' for k, v in sorted((judge.get('prompt_versions') or {}).items())))}; "
           f"{esc(usage.get('prompt_tokens', 0))} prompt + {esc(usage.get('completion_tokens', 0))} completion "
           f"tokens ({esc(usage.get('tokens_per_latent', ''))} per latent). Explanations are the judge's "
           "words, shown as text.</p>"]
    if not rows:
        return out + ["<p>No latent was scored.</p>"]
    shown = sorted(rows, key=lambda r: r.get("latent", 0))[:MAX_ROWS]
    more = f" (first {MAX_ROWS} of {len(rows)})" if len(rows) > MAX_ROWS else ""
    out.append(f"<details open><summary>sampled latents{esc(more)}</summary><div class=\"scroll\"><table>"
               "<thead><tr><th>latent</th><th>explanation</th>"
               + "".join(f'<th class="num">{esc(label)}</th>' for _, label in SCORES)
               + "<th>failed prompts</th><th>top contexts</th></tr></thead><tbody>")
    for r in shown:
        scores = r.get("scores") or {}
        failures = r.get("failures") or {}
        contexts = "<br>".join(marked(str(c)) for c in (r.get("top_contexts") or [])[:3])
        out.append(f"<tr><td class=\"num\">{esc(r.get('latent'))}</td><td>{esc(r.get('explanation') or '')}</td>"
                   + "".join(f'<td class="num">{fixed(scores.get(k), ".3g")}</td>' for k, _ in SCORES)
                   + f"<td>{esc(', '.join(f'{k} {v}' for k, v in sorted(failures.items())))}</td>"
                   f"<td class=\"small\">{contexts}</td></tr>")
    out.append("</tbody></table></div></details>")
    return out


def section(record: ResultRecord) -> list[str]:
    """The checkpoint page's section from the row's autointerp record."""
    return render(record.data)
