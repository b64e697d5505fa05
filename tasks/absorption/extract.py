"""Residual activations of prompts at one token position (counted from each prompt's end).

Prompts are tokenised with the model's tokenizer (BOS included, as TransformerLens prepends it),
right-padded per batch, and the forward stops after the hookpoint's module. SAEBench reads
position `pos` of the padded batch, which is the same token only when every prompt of the batch
has the same length (its absorption step insists on that); we always read each prompt's own
`len + pos`. With an on-disk activation cache (`ctx.activations.memo_path`), the activations of a
prompt list are kept there under a hash of the prompts and the position, so a later run (another
checkpoint at the same hookpoint) skips the model. This module never sees an SAE.
"""

from __future__ import annotations

import hashlib
import json

import torch
from sae_bench.core.progress import tqdm

from sae_bench.activations.memo import disk_memo
from sae_bench.core.errors import InputError

MEMO_VERSION = "absorption-prompts/1"


def cached_prompt_activations(ctx, texts: list[str], pos: int, *, batch_size: int, desc: str,
                              words: list[str] | None = None) -> torch.Tensor:
    """`prompt_activations`, kept on disk beside the hookpoint's activation cache when there is one."""
    key = {"memo": MEMO_VERSION, "pos": pos, "n": len(texts),
           "texts_sha256": hashlib.sha256(json.dumps(texts).encode()).hexdigest()}
    compute = lambda: {"x": prompt_activations(ctx, texts, pos, batch_size=batch_size, desc=desc, words=words)}
    return disk_memo(ctx.activations, "absorption-prompts", key, compute)["x"]


def prompt_activations(ctx, texts: list[str], pos: int, *, batch_size: int, desc: str,
                       words: list[str] | None = None) -> torch.Tensor:
    """[len(texts), d] float32 activations at token `pos` (negative: from the end) of each prompt.
    With `words`, checks on the first batch that `pos` lands on the word's token (one-line error if not)."""
    tokenizer = ctx.model.tokenizer
    out = []
    for start in tqdm(range(0, len(texts), batch_size), desc=desc, unit="batch", disable=not ctx.show_progress,
                      leave=False):
        batch = [tokenizer(text).input_ids for text in texts[start:start + batch_size]]
        lengths = torch.tensor([len(ids) for ids in batch])
        if int(lengths.min()) < -pos:
            raise InputError("--task-option absorption.prompt_token_pos", f"{pos} is before the start of a "
                             f"{int(lengths.min())}-token prompt")
        ids = torch.zeros(len(batch), int(lengths.max()), dtype=torch.int64)
        mask = torch.zeros_like(ids)
        for row, seq in enumerate(batch):
            ids[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
        at = lengths + pos
        if words is not None and start == 0:
            _check_position(tokenizer, ids, at, words[:len(batch)], pos)
        with torch.no_grad():
            resid = ctx.model.residual(ctx.hookpoint, ids.to(ctx.model.device), mask.to(ctx.model.device))
        out.append(resid[torch.arange(len(batch)), at.to(resid.device)].float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


def _check_position(tokenizer, ids: torch.Tensor, at: torch.Tensor, words: list[str], pos: int) -> None:
    read = [tokenizer.decode([int(ids[row, at[row]])]).strip() for row in range(len(words))]
    hits = sum(token == word.strip() for token, word in zip(read, words))
    if hits * 2 < len(words):
        raise InputError("--task-option absorption.prompt_token_pos",
                         f"position {pos} reads {read[0]!r} for the word {words[0].strip()!r} with this tokenizer "
                         f"({hits}/{len(words)} prompts hit the word); set the position of the word in the template")
