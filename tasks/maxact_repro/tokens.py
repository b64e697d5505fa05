"""Stored token strings back to token ids, with unknown-token detection.

gemma-loupe stores each context as a list of token strings (`convert_ids_to_tokens` output), so
re-encoding maps strings to ids with `convert_tokens_to_ids` instead of re-tokenising the context
text (which can split differently). A string the vocabulary does not contain comes back as the
unknown id (or None): such a context is reported as unmappable, never silently encoded with
`<unk>` in its place. This module never runs a model.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence


class MappedTokens(NamedTuple):
    ids: list[int] | None  # None when any token is unknown
    unknown: list[str]  # the token strings that are not in the vocabulary (in order, with repeats removed)


class TokenMapper:
    """Maps token strings to ids for one tokenizer (memoised per string)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.unk_id = getattr(tokenizer, "unk_token_id", None)
        self.unk_token = getattr(tokenizer, "unk_token", None)
        self._cache: dict[str, int | None] = {}

    def token_id(self, token: str) -> int | None:
        """The id of `token`, or None when the vocabulary does not hold it."""
        if token not in self._cache:
            tid = self.tokenizer.convert_tokens_to_ids(token)
            if tid is None or isinstance(tid, list) or (tid == self.unk_id and token != self.unk_token) or tid < 0:
                tid = None
            self._cache[token] = tid
        return self._cache[token]

    def map(self, tokens: Sequence[str]) -> MappedTokens:
        ids: list[int] = []
        unknown: list[str] = []
        for token in tokens:
            tid = self.token_id(token)
            if tid is None:
                if token not in unknown:
                    unknown.append(token)
            else:
                ids.append(tid)
        return MappedTokens(None if unknown else ids, unknown)

    def tokens_of(self, ids: Sequence[int]) -> list[str]:
        """The token strings of ids (what a builder stores in `context_tokens`)."""
        return list(self.tokenizer.convert_ids_to_tokens(list(ids)))
