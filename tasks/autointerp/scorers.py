"""The protocol: explain each latent, then score the explanation three ways, all calls batched.

1. explanation (SAEBench's explainer prompt) from the explanation contexts, strongest first,
   active tokens (activation > threshold) marked;
2. SAEBench's score: held-out top + importance-sampled contexts and its random contexts, shuffled,
   numbered; a context counts as active when a token exceeds the threshold — its random contexts
   count as inactive even where the latent fires (SAEBench labels them so; we keep its rule);
3. delphi detection: the held-out activating contexts (top, importance-sampled, quantiles)
   against as many contexts where the latent is zero over the whole window, shuffled, shown in
   prompts of `examples_per_prompt`, unmarked;
4. delphi fuzzing: the same activating contexts with their active tokens marked (true) and the
   silent contexts with the marks of a random activating context copied onto them (false).
Every prompt that errors or fails to parse is counted per latent and leaves its examples
unscored; a latent whose explanation failed is not scored at all. Never a silent 0.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from sae_bench.tasks.autointerp import scores
from sae_bench.tasks.autointerp.examples import Context, LatentExamples
from sae_bench.tasks.autointerp.judges import JudgeReply, request
from sae_bench.tasks.autointerp.prompts import delphi_v1 as delphi
from sae_bench.tasks.autointerp.prompts import saebench_v1 as saebench

SCORE_NAMES = ("autointerp_score", "detection_balanced_accuracy", "detection_auroc",
               "fuzzing_balanced_accuracy", "fuzzing_auroc")


@dataclass
class LatentResult:
    latent: int
    explanation: str | None
    scores: dict[str, float | None] = field(default_factory=dict)
    prompts: dict[str, int] = field(default_factory=dict)  # prompts sent, per kind
    failures: dict[str, int] = field(default_factory=dict)  # prompts that errored or did not parse
    failure_examples: list[str] = field(default_factory=list)  # first few reasons, one line each
    top_contexts: list[str] = field(default_factory=list)

    def fail(self, kind: str, why: str) -> None:
        self.failures[kind] = self.failures.get(kind, 0) + 1
        if len(self.failure_examples) < 3:
            self.failure_examples.append(f"{kind}: {why}"[:200])

    def to_json(self) -> dict[str, Any]:
        return {"latent": self.latent, "explanation": self.explanation,
                "scores": {k: (None if v is None else round(v, 6)) for k, v in self.scores.items()},
                "prompts": self.prompts, "failures": self.failures, "failure_examples": self.failure_examples,
                "top_contexts": self.top_contexts}


def _active(ctx: Context, threshold: float) -> list[bool]:
    return [a > threshold for a in ctx.acts]


def _shown(ctx: Context, marks: list[bool]) -> dict[str, Any]:
    return {"tokens": list(ctx.tokens), "active": marks}


def explain_request(ex: LatentExamples):
    shown = [_shown(c, _active(c, ex.threshold)) for c in ex.explain]
    texts = [saebench.render(s["tokens"], s["active"]) for s in shown]
    return request("explain", saebench.VERSION, saebench.explain_messages(texts), saebench.MAX_TOKENS_EXPLANATION,
                   examples=shown)


@dataclass
class _Plan:
    """The scoring prompts of one latent and how to read their answers."""

    saebench_active: list[bool]
    saebench_request: Any
    delphi: list[tuple[str, list[int], Any]]  # (kind, labels of the shown examples, request)


def latent_rng(seed: int, latent: int) -> random.Random:
    return random.Random(seed * 7919 + latent)


def saebench_items(ex: LatentExamples, rng: random.Random) -> list[tuple[Context, bool]]:
    """SAEBench's scoring contexts in the order shown, with the truth its metric uses (the first
    draw from the latent's rng, so other code can rebuild the same order)."""
    items = [(c, any(_active(c, ex.threshold))) for c in ex.score_active] + [(c, False) for c in ex.score_random]
    rng.shuffle(items)
    return items


def _plan(ex: LatentExamples, explanation: str, per_prompt: int, rng: random.Random, n_correct: int) -> _Plan:
    items = saebench_items(ex, rng)
    demo = sorted(rng.sample(range(1, len(items) + 1), k=min(n_correct, len(items))))
    shown = [_shown(c, [False] * len(c.tokens)) for c, _ in items]
    sb = request("saebench", saebench.VERSION,
                 saebench.score_messages(explanation, [saebench.render(s["tokens"]) for s in shown], demo),
                 saebench.score_max_tokens(len(items)), explanation=explanation, examples=shown)
    activating = [(c, _active(c, ex.threshold)) for c in ex.activating]
    plans: list[tuple[str, list[int], Any]] = []
    for kind in ("detection", "fuzzing"):
        if kind == "detection":
            pool = [(c, [False] * len(c.tokens), 1) for c, _ in activating] + \
                   [(c, [False] * len(c.tokens), 0) for c in ex.nonactive]
        else:
            pool = [(c, m, 1) for c, m in activating] + \
                   [(c, list(rng.choice(activating)[1]) if activating else [False] * len(c.tokens), 0) for c in ex.nonactive]
        rng.shuffle(pool)
        for start in range(0, len(pool), per_prompt):
            chunk = pool[start:start + per_prompt]
            shown = [_shown(c, m) for c, m, _ in chunk]
            texts = [delphi.render(s["tokens"], s["active"] if kind == "fuzzing" else None) for s in shown]
            req = request(kind, delphi.VERSION, delphi.messages(kind, explanation, texts), delphi.max_tokens(len(chunk)),
                          explanation=explanation, examples=shown)
            plans.append((kind, [y for _, _, y in chunk], req))
    return _Plan([a for _, a in items], sb, plans)


def run_protocol(examples: list[LatentExamples], judge, *, seed: int, examples_per_prompt: int,
                 n_correct: int) -> list[LatentResult]:
    """Explain and score every latent; two batched rounds of judge calls."""
    results = [LatentResult(ex.latent, None) for ex in examples]
    explained = judge.complete([explain_request(ex) for ex in examples])
    plans: list[_Plan | None] = []
    for ex, res, reply in zip(examples, results, explained):
        res.prompts["explain"] = 1
        res.top_contexts = [saebench.render(c.tokens, _active(c, ex.threshold)) for c in ex.explain[:3]]
        if reply.error is not None or reply.text is None:
            res.fail("explain", reply.error or "no text")
            plans.append(None)
            continue
        res.explanation = saebench.parse_explanation(reply.text)
        rng = latent_rng(seed, ex.latent)
        plans.append(_plan(ex, res.explanation, examples_per_prompt, rng, n_correct))
    flat = [(i, p.saebench_request) for i, p in enumerate(plans) if p is not None]
    flat += [(i, req) for i, p in enumerate(plans) if p is not None for _, _, req in p.delphi]
    replies = judge.complete([req for _, req in flat])
    by_latent: dict[int, list[JudgeReply]] = {}
    for (i, _), reply in zip(flat, replies):
        by_latent.setdefault(i, []).append(reply)
    for i, plan in enumerate(plans):
        if plan is None:
            results[i].scores = {name: None for name in SCORE_NAMES}
            continue
        _score(results[i], plan, by_latent[i])
    return results


def _score(res: LatentResult, plan: _Plan, replies: list[JudgeReply]) -> None:
    sb_reply, delphi_replies = replies[0], replies[1:]
    res.prompts["saebench"] = 1
    predicted = saebench.parse_numbers(sb_reply.text) if sb_reply.text is not None else None
    if predicted is None:
        res.fail("saebench", sb_reply.error or f"unparseable answer {sb_reply.text!r}")
    res.scores["autointerp_score"] = None if predicted is None else scores.saebench_score(predicted, plan.saebench_active)
    for kind in ("detection", "fuzzing"):
        labels, preds, probs, have_probs = [], [], [], True
        for (k, ys, _), reply in zip(plan.delphi, delphi_replies):
            if k != kind:
                continue
            res.prompts[kind] = res.prompts.get(kind, 0) + 1
            values = delphi.parse_list(reply.text, len(ys)) if reply.text is not None else None
            if values is None:
                res.fail(kind, reply.error or f"unparseable answer {reply.text!r} for {len(ys)} examples")
                continue
            labels += ys
            preds += values
            if reply.digit_probs is not None and len(reply.digit_probs) == len(ys):
                probs += list(reply.digit_probs)
            else:
                have_probs = False
        res.scores[f"{kind}_balanced_accuracy"] = scores.balanced_accuracy(labels, preds)
        res.scores[f"{kind}_auroc"] = scores.auroc(labels, probs) if have_probs and labels else None
