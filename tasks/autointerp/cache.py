"""The judge response cache: one JSON file per answered prompt, keyed by (judge identity, prompt
version, full prompt hash), written atomically (temporary file + rename), so a re-run with the
same judge makes no model call and returns the same text. Failed calls are never cached (a later
run retries them). A damaged entry is ignored and rewritten. Never holds an API key.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from sae_bench.tasks.autointerp.judges import Judge, JudgeReply, JudgeRequest

ENV = "SAE_BENCH_JUDGE_CACHE"


def default_folder() -> Path:
    return Path(os.environ.get(ENV) or Path.home() / ".cache" / "sae-bench" / "judge-cache")


def cache_key(identity: str, req: JudgeRequest) -> str:
    blob = json.dumps([identity, req.prompt_version, req.prompt_sha256()])
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> JudgeReply | None:
        try:
            return JudgeReply.from_json(json.loads(self._path(key).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, identity: str, req: JudgeRequest, reply: JudgeReply) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        entry = {**reply.to_json(), "judge": identity, "prompt_version": req.prompt_version,
                 "prompt_sha256": req.prompt_sha256(), "kind": req.kind}
        try:
            tmp.write_text(json.dumps(entry, ensure_ascii=False, sort_keys=True), encoding="utf-8")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


@dataclass
class Usage:
    calls_made: int = 0
    calls_cached: int = 0
    calls_failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


class CachingJudge:
    """A judge in front of a cache: only prompts not answered before reach the model."""

    def __init__(self, judge: Judge, cache: ResponseCache | None):
        self.judge, self.cache, self.usage = judge, cache, Usage()
        self.identity = judge.identity
        self._key_identity = getattr(judge, "cache_identity", judge.identity)

    def complete(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        keys = [cache_key(self._key_identity, r) for r in requests]
        replies: list[JudgeReply | None] = [self.cache.get(k) if self.cache else None for k in keys]
        todo = [i for i, r in enumerate(replies) if r is None]
        fresh = self.judge.complete([requests[i] for i in todo]) if todo else []
        for i, reply in zip(todo, fresh):
            replies[i] = reply
            if reply.error is None and self.cache is not None:
                self.cache.put(keys[i], self._key_identity, requests[i], reply)
        for i, reply in enumerate(replies):
            self.usage.calls_cached += int(reply.cached)
            self.usage.calls_made += int(not reply.cached)
            self.usage.calls_failed += int(reply.error is not None)
            self.usage.prompt_tokens += reply.prompt_tokens
            self.usage.completion_tokens += reply.completion_tokens
        return replies  # type: ignore[return-value]
