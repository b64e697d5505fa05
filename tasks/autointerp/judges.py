"""Judges: whatever answers a chat prompt — a local causal LM, an OpenAI-compatible server, an oracle.

One small interface: `identity` (what the cache key and the record name) and
`complete(requests) -> replies`, same order. Decoding is deterministic (greedy / temperature 0,
fixed seed). A reply carries the text, the tokens spent and, when the judge can tell, P("1") for
each 0/1 token it wrote (`digit_probs`: the AUROC of the delphi scorers). A failed call is a reply
with `error` set, never an exception: the scorers count it per latent. The API key of the HTTP
judge is read from an environment variable at call time and never stored or written.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import torch


@dataclass(frozen=True)
class JudgeRequest:
    kind: str  # explain | saebench | detection | fuzzing
    prompt_version: str
    messages: tuple[tuple[str, str], ...]  # (role, content)
    max_tokens: int
    # What the oracle reads instead of parsing the prompt; rendered into `messages`, not hashed apart.
    payload: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def prompt_sha256(self) -> str:
        blob = json.dumps({"messages": self.messages, "max_tokens": self.max_tokens}, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()


def request(kind: str, version: str, messages: list[dict[str, str]], max_tokens: int, **payload) -> JudgeRequest:
    return JudgeRequest(kind, version, tuple((m["role"], m["content"]) for m in messages), max_tokens, payload)


@dataclass(frozen=True)
class JudgeReply:
    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    digit_probs: tuple[float, ...] | None = None
    error: str | None = None
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "digit_probs": list(self.digit_probs) if self.digit_probs is not None else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "JudgeReply":
        probs = data.get("digit_probs")
        return cls(data["text"], int(data["prompt_tokens"]), int(data["completion_tokens"]),
                   tuple(probs) if probs is not None else None, None, True)


class Judge(Protocol):
    identity: str

    def complete(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]: ...


# ------------------------------------------------------------------------------------------ oracle
class OracleJudge:
    """A judge that knows the rule "the latent fires on token T": it explains a latent by its most
    often marked token and answers by exact token match. A latent firing exactly on one token gets
    1.0 from every scorer; a latent firing at random ~0.5 (the closed forms the tests check)."""

    identity = "oracle:token-match-v1"

    def complete(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        replies = []
        for r in requests:
            text = self._answer(r)
            certain = tuple(float(v) for v in json.loads(text)) if r.kind in ("detection", "fuzzing") else None
            replies.append(JudgeReply(text, digit_probs=certain))  # it is sure: P("1") is its answer
        return replies

    @staticmethod
    def _answer(r: JudgeRequest) -> str:
        p = r.payload
        if r.kind == "explain":
            marked = Counter(tok.strip() for ex in p["examples"] for tok, on in zip(ex["tokens"], ex["active"]) if on)
            best = sorted(marked.items(), key=lambda kv: (-kv[1], kv[0]))
            return f"This neuron activates on the token {best[0][0] if best else ''}"
        word = p["explanation"].split("the token", 1)[-1].strip()
        has = [any(t.strip() == word for t in ex["tokens"]) for ex in p["examples"]]
        if r.kind == "saebench":
            chosen = [str(i + 1) for i, h in enumerate(has) if h]
            return ", ".join(chosen) or "None"
        if r.kind == "detection":
            return json.dumps([int(h) for h in has])
        right = [all(t.strip() == word for t, on in zip(ex["tokens"], ex["active"]) if on) and any(ex["active"])
                 for ex in p["examples"]]
        return json.dumps([int(x) for x in right])


# ------------------------------------------------------------------------------------------- local
def chat_text(tokenizer, messages: Sequence[tuple[str, str]]) -> str:
    """The prompt as the model's chat template renders it, else a plain "System/User/Assistant" layout."""
    msgs = [{"role": role, "content": content} for role, content in messages]
    if getattr(tokenizer, "chat_template", None):
        try:
            return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        except Exception:  # a template that refuses the system role: fold it into the first user turn
            pass
    parts = [f"{'User' if role != 'system' else 'Instructions'}: {content}" for role, content in messages]
    return "\n\n".join(parts) + "\n\nAssistant:"


class LocalJudge:
    """A causal LM in this process (any folder our model loader reads, GGUF included): greedy,
    batched generation with left padding; P("1") per 0/1 token from the full next-token distribution."""

    def __init__(self, model, tokenizer, *, model_id: str, batch_size: int = 8, show_progress: bool = False):
        self.model, self.tokenizer, self.batch_size, self.show_progress = model, tokenizer, batch_size, show_progress
        from sae_bench.records.provenance import portable

        dtype = next(model.parameters()).dtype
        self.identity = f"local:{portable(model_id)}:{dtype}:greedy"  # as recorded: no absolute local path
        self.cache_identity = f"local:{model_id}:{dtype}:greedy"  # the cache tells apart folders with one name
        vocab = tokenizer.get_vocab()
        self._digit_ids = {d: [i for tok, i in vocab.items() if tok.strip().lstrip("▁Ġ") == d] for d in "01"}

    @torch.no_grad()
    def complete(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        from sae_bench.core.progress import tqdm

        texts = [chat_text(self.tokenizer, r.messages) for r in requests]
        order = sorted(range(len(requests)), key=lambda i: (requests[i].max_tokens, len(texts[i])))
        replies: list[JudgeReply | None] = [None] * len(requests)
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        for batch in tqdm(batches, desc="autointerp: local judge", disable=not self.show_progress, leave=False):
            for i, reply in zip(batch, self._generate([texts[i] for i in batch], max(requests[i].max_tokens for i in batch))):
                replies[i] = reply
        return replies  # type: ignore[return-value]

    def _generate(self, texts: list[str], max_new: int) -> list[JudgeReply]:
        tok = self.tokenizer
        side, tok.padding_side = tok.padding_side, "left"
        try:
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=not getattr(tok, "chat_template", None))
        finally:
            tok.padding_side = side
        device = next(self.model.parameters()).device
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        out = self.model.generate(input_ids=enc.input_ids.to(device), attention_mask=enc.attention_mask.to(device),
                                  max_new_tokens=max_new, do_sample=False, pad_token_id=pad,
                                  output_scores=True, return_dict_in_generate=True)
        new = out.sequences[:, enc.input_ids.shape[1]:].cpu()
        scores = torch.stack(out.scores, dim=1).float().cpu() if out.scores else None  # [B, steps, V]
        stops = {i for i in (tok.eos_token_id, pad) if i is not None}
        replies = []
        for b, text_in in enumerate(texts):
            ids = new[b].tolist()
            n = next((j for j, i in enumerate(ids) if i in stops), len(ids))
            probs = []
            for j in range(n):
                if tok.decode([ids[j]]).strip() in ("0", "1") and scores is not None:
                    p = torch.softmax(scores[b, j], dim=-1)
                    p0, p1 = float(p[self._digit_ids["0"]].sum()), float(p[self._digit_ids["1"]].sum())
                    probs.append(p1 / (p0 + p1) if p0 + p1 > 0 else 0.5)
            replies.append(JudgeReply(tok.decode(ids[:n], skip_special_tokens=True), int(enc.attention_mask[b].sum()),
                                      n, tuple(probs)))
        return replies


# -------------------------------------------------------------------------------------------- HTTP
class OpenAIJudge:
    """Any OpenAI-compatible chat endpoint through the official `openai` client, `max_concurrency`
    requests in flight; temperature 0 and a fixed seed; logprobs asked for (used when returned)."""

    def __init__(self, base_url: str | None, model: str, *, api_key_env: str = "OPENAI_API_KEY",
                 timeout_s: float = 60.0, max_retries: int = 2, max_concurrency: int = 8, seed: int = 0):
        try:
            import openai  # noqa: F401
        except ImportError as exc:
            raise RuntimeError("the openai judge needs the `openai` package: pip install 'gemma-sae-bench[judge]'") from exc
        self.base_url, self.model, self.api_key_env = base_url, model, api_key_env
        self.timeout_s, self.max_retries, self.max_concurrency, self.seed = timeout_s, max_retries, max_concurrency, seed
        self.identity = f"openai:{base_url or 'https://api.openai.com/v1'}:{model}:t0:seed{seed}"

    def _client(self):
        from openai import OpenAI

        return OpenAI(base_url=self.base_url, api_key=os.environ.get(self.api_key_env) or "not-needed",
                      timeout=self.timeout_s, max_retries=self.max_retries)

    def complete(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        client = self._client()
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            return list(pool.map(lambda r: self._one(client, r), requests))

    def _one(self, client, r: JudgeRequest) -> JudgeReply:
        try:
            result = client.chat.completions.create(
                model=self.model, messages=[{"role": role, "content": c} for role, c in r.messages],
                max_tokens=r.max_tokens, temperature=0, seed=self.seed, n=1,
                logprobs=r.kind in ("detection", "fuzzing"), top_logprobs=5 if r.kind in ("detection", "fuzzing") else None)
        except Exception as exc:  # every transport/status/validation error is one counted failure
            return JudgeReply(None, error=_one_line(exc))
        choices = getattr(result, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None or choices[0].message.content is None:
            return JudgeReply(None, error="the server answered with no choices")
        usage = getattr(result, "usage", None)
        return JudgeReply(choices[0].message.content.strip(), int(getattr(usage, "prompt_tokens", 0) or 0),
                          int(getattr(usage, "completion_tokens", 0) or 0), _digit_probs(choices[0]))


def _one_line(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    text = re.sub(r"\s+", " ", str(exc))[:200]
    return f"{type(exc).__name__}{f' {status}' if status else ''}: {text}"


def _digit_probs(choice) -> tuple[float, ...] | None:
    """P("1") / (P("0") + P("1")) over the top logprobs of each 0/1 token written (delphi's rule)."""
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return None
    probs = []
    for item in content:
        if item.token.strip() not in ("0", "1"):
            continue
        p0 = sum(math.exp(t.logprob) for t in (item.top_logprobs or []) if t.token.strip() == "0")
        p1 = sum(math.exp(t.logprob) for t in (item.top_logprobs or []) if t.token.strip() == "1")
        probs.append(p1 / (p0 + p1) if p0 + p1 > 0 else float(item.token.strip() == "1"))
    return tuple(probs)
