"""The checkpoint page's autointerp section: which judge and prompts, and a table of the sampled
latents with their explanation, scores, failures and top contexts.

Explanations and contexts are model output and corpus text: hostile. Every piece goes through
`html.escape`; the only markup added is <mark> around the tokens the record marked `<<…>>`.
This module never reads files; it gets the record's JSON.
"""

from __future__ import annotations

import html
import re
from typing import Any

MAX_ROWS = 200  # latents shown (the record keeps all of them)
SCORES = (("autointerp_score", "SAEBench"), ("detection_balanced_accuracy", "detection"),
          ("fuzzing_balanced_accuracy", "fuzzing"))
_MARK = re.compile(r"<<(.*?)>>", re.S)


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def marked(text: str) -> str:
    """Escaped text with `<<tok>>` shown as <mark>tok</mark>."""
    out, last = [], 0
    for m in _MARK.finditer(text):
        out.append(_esc(text[last:m.start()]) + f"<mark>{_esc(m.group(1))}</mark>")
        last = m.end()
    return "".join(out) + _esc(text[last:])


def _num(value: Any) -> str:
    return "" if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{value:.3g}"


def render(data: dict[str, Any] | None) -> list[str]:
    """HTML lines for one autointerp record's JSON (`[]` without one)."""
    if not data:
        return []
    arts = data.get("artifacts") or {}
    judge, usage = arts.get("judge") or {}, arts.get("judge_usage") or {}
    rows = [r for r in arts.get("per_latent") or [] if isinstance(r, dict)]
    out = ["<h2>Automated interpretability</h2>",
           f"<p class=\"sub\">Judge <code>{_esc(judge.get('identity', ''))}</code>, prompts "
           f"{_esc(', '.join(f'{k} {v}' for k, v in sorted((judge.get('prompt_versions') or {}).items())))}; "
           f"{_esc(usage.get('prompt_tokens', 0))} prompt + {_esc(usage.get('completion_tokens', 0))} completion "
           f"tokens ({_esc(usage.get('tokens_per_latent', ''))} per latent). Explanations are the judge's "
           "words, shown as text.</p>"]
    if not rows:
        return out + ["<p>No latent was scored.</p>"]
    shown = sorted(rows, key=lambda r: r.get("latent", 0))[:MAX_ROWS]
    more = f" (first {MAX_ROWS} of {len(rows)})" if len(rows) > MAX_ROWS else ""
    out.append(f"<details open><summary>sampled latents{_esc(more)}</summary><div class=\"scroll\"><table>"
               "<thead><tr><th>latent</th><th>explanation</th>"
               + "".join(f'<th class="num">{_esc(label)}</th>' for _, label in SCORES)
               + "<th>failed prompts</th><th>top contexts</th></tr></thead><tbody>")
    for r in shown:
        scores = r.get("scores") or {}
        failures = r.get("failures") or {}
        contexts = "<br>".join(marked(str(c)) for c in (r.get("top_contexts") or [])[:3])
        out.append(f"<tr><td class=\"num\">{_esc(r.get('latent'))}</td><td>{_esc(r.get('explanation') or '')}</td>"
                   + "".join(f'<td class="num">{_num(scores.get(k))}</td>' for k, _ in SCORES)
                   + f"<td>{_esc(', '.join(f'{k} {v}' for k, v in sorted(failures.items())))}</td>"
                   f"<td class=\"small\">{contexts}</td></tr>")
    out.append("</tbody></table></div></details>")
    return out
