"""One model pass for many sites: the activations of several hookpoints (and the clean final states)
from one forward per batch, grouped so that what the sites hold together fits a memory budget.

A run with checkpoints at several hookpoints would otherwise run the model once per site to
extract each site's activations, and once more per site for the clean run of the spliced-loss
baseline, although the clean model does not depend on the site. Here each batch goes through the
model once; every site's shard is cut from that forward exactly as its own `ActivationSource`
would cut it (`shard_from_residual`) and written to that source's cache folder (so a later
one-site run hits the cache), and the clean final-norm output at the kept positions is kept
for every source of the pass (`ActivationSource.clean_final`), which spliced loss reads instead of
running its clean suffix per site. The per-site ablated and spliced runs still start from their
own site (suffix-only): nothing here depends on a checkpoint.

Memory: a site holds its kept and BOS/EOS activations (float32) and, until scored, the zero- and
mean-ablated final states of its spliced-loss baseline and a checkpoint's prepared final states;
`site_bytes` estimates that, `group_sites`
packs sites into groups under the budget, and a site that cannot fit alone is an InputError
before any work. This module never loads checkpoints and never computes metrics.
"""

from __future__ import annotations

import time

import torch
from sae_bench.core.progress import tqdm

from sae_bench.run import distributed
from sae_bench.core.errors import InputError

DEFAULT_BUDGET_FRACTION = 0.5  # of the machine's memory, when no budget is given


def site_bytes(corpus, d_model: int, model_dtype: torch.dtype) -> int:
    """Estimated bytes one site holds while its checkpoints are evaluated: float32 activations at the
    attended positions, plus three [kept, d] final-state tensors (model dtype): the zero- and
    mean-ablated runs and one prepared checkpoint (more checkpoints' states are bounded by the
    task's `max_pending_bytes`, past which that site is scored on its own)."""
    element = torch.empty(0, dtype=model_dtype).element_size()
    return corpus.n_tokens * d_model * 4 + 3 * corpus.n_kept * d_model * element


def default_budget_bytes() -> int:
    try:
        import os

        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 16 << 30
    return int(total * DEFAULT_BUDGET_FRACTION)


def group_sites(sites: list, per_site: int, budget: int, flag: str = "--site-memory-gb") -> list[list]:
    """`sites` in order, in consecutive groups of at most budget // per_site (at least one each);
    InputError when one site alone exceeds the budget."""
    if per_site > budget:
        raise InputError(f"{flag} {budget / 1e9:g}", f"one site needs about {per_site / 1e9:.2f} GB (its activations "
                                                      f"and spliced-loss baseline on this corpus): raise the budget "
                                                      "or evaluate fewer documents")
    size = max(1, budget // max(per_site, 1))
    return [sites[i:i + size] for i in range(0, len(sites), size)]


def capture_together(model, sources: list, corpus, batch_size: int, *, final: bool, show_progress: bool = True,
                     label: str = "") -> None:
    """Fill every source in `sources` (non-pooled, one model) from one forward per batch.

    Batches whose shards are all in the cache are read, not recomputed (unless `final` asks for the
    clean final states, which need the forward). With `final`, each source's `clean_final` becomes
    {batch index: clean final-norm output [n_kept, d] (model dtype, CPU)}, shared by all."""
    start = time.perf_counter()
    for source in sources:
        source.make_cache_dir()
    hookpoints = list(dict.fromkeys(s.hookpoint for s in sources))
    local: list[list] = [[] for _ in sources]
    clean_final: dict[int, torch.Tensor] = {}
    batches = list(corpus.batches(batch_size))
    desc = f"activations @ {len(hookpoints)} sites in one pass{label}"
    for index, (rows, ids, mask, keep) in tqdm(list(distributed.shard(batches)), desc=desc, unit="batch",
                                               disable=not show_progress, leave=False):
        cached = [source.cached_shard(index) for source in sources]
        if final or any(shard is None for shard in cached):
            with torch.no_grad():
                resid, normed = model.residuals(hookpoints, ids.to(model.device), mask.to(model.device), final=final)
            if final:
                clean_final[index] = normed[keep.to(normed.device)].cpu()
            for j, source in enumerate(sources):
                if cached[j] is None:
                    cached[j] = source.shard_from_residual(resid[source.hookpoint], mask, keep, rows)
                    source.store_shard(index, cached[j])
        for j, shard in enumerate(cached):
            local[j].append((index, shard))
    seconds = (time.perf_counter() - start) / max(len(sources), 1)
    for j, source in enumerate(sources):
        source.adopt(local[j], seconds)
        if final:
            source.clean_final = clean_final
