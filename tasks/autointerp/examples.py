"""Which contexts a judge sees for one latent: top, importance-sampled, quantile and random windows.

Everything here works on one latent's dense activations over the eval corpus, `acts [N, T]`
(0 where a position is not kept: BOS, pad, EOS), and the windows it returns are ±`buffer` tokens
around a centre position. Sampling follows SAEBench's autointerp (`gather_data`): the top
`n_top` centres with no two windows of a row overlapping, `n_iw` centres importance-sampled with
probability ∝ a² among those below the weakest top centre (and, unlike SAEBench,
outside the top windows, so no context is shown twice), `n_random` uniform centres; each group
split at random into an explanation part and a held-out scoring part. Delphi's scorers add
activating contexts from activation quantiles (one per equal-count bin of the remaining firing
centres) and random contexts where the latent is zero over the whole window. A latent without
enough firing contexts is skipped with its reason, never padded. Every draw comes from a
generator seeded by (seed, latent), so a latent's examples do not depend on which other latents
were sampled. This module never calls a judge and never scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class SamplingSettings:
    buffer: int = 10  # tokens each side of the centre (SAEBench: 10)
    n_top_explain: int = 10
    n_iw_explain: int = 5
    n_top_score: int = 2
    n_iw_score: int = 2
    n_random_score: int = 10  # SAEBench's random contexts (labelled inactive by its metric)
    n_quantiles: int = 4  # delphi-style activating contexts, one per activation quantile
    act_threshold_frac: float = 0.01  # a token is active above this fraction of the top activation


@dataclass(frozen=True)
class Context:
    """One window: token strings, the latent's activation at each, where it came from."""

    tokens: tuple[str, ...]
    acts: tuple[float, ...]
    row: int
    centre: int  # corpus position of the window's centre
    kind: str  # top | iw | quantile | random | nonactive

    @property
    def max_act(self) -> float:
        return max(self.acts) if self.acts else 0.0

    def to_json(self) -> dict:
        return {"row": self.row, "centre": self.centre, "kind": self.kind, "tokens": list(self.tokens),
                "acts": [round(a, 6) for a in self.acts]}


@dataclass
class LatentExamples:
    latent: int
    threshold: float  # act_threshold_frac × the largest top activation
    explain: list[Context] = field(default_factory=list)  # shown to the explainer, strongest first
    score_active: list[Context] = field(default_factory=list)  # held-out top + iw (SAEBench scoring)
    score_random: list[Context] = field(default_factory=list)  # SAEBench's random contexts
    quantile: list[Context] = field(default_factory=list)  # delphi's extra activating contexts
    nonactive: list[Context] = field(default_factory=list)  # zero over the whole window

    @property
    def activating(self) -> list[Context]:
        """The held-out activating contexts every delphi scorer tests (never shown to the explainer)."""
        return self.score_active + self.quantile


def valid_centres(attention_mask: Tensor, keep_mask: Tensor, buffer: int) -> Tensor:
    """[N, T] bool: kept positions whose ±buffer window lies inside the row's attended tokens."""
    n, t = keep_mask.shape
    length = attention_mask.sum(dim=1, keepdim=True)
    pos = torch.arange(t)[None, :].expand(n, t)
    return keep_mask & (pos - buffer >= 0) & (pos + buffer < length)


def _window(acts: Tensor, token_text: list[list[str]], row: int, centre: int, buffer: int, kind: str) -> Context:
    span = slice(centre - buffer, centre + buffer + 1)
    return Context(tuple(token_text[row][span]), tuple(float(a) for a in acts[row, span]), row, centre, kind)


def _overlaps(taken: dict[int, list[int]], row: int, centre: int, buffer: int) -> bool:
    return any(abs(centre - c) <= 2 * buffer for c in taken.get(row, []))


def _take(taken: dict[int, list[int]], row: int, centre: int) -> None:
    taken.setdefault(row, []).append(centre)


def sample_latent(latent: int, acts: Tensor, centres: Tensor, token_text: list[list[str]],
                  settings: SamplingSettings, seed: int) -> LatentExamples | str:
    """This latent's contexts, or why it has too few (a one-line reason)."""
    s = settings
    gen = torch.Generator().manual_seed(seed * 1_000_003 + latent)
    n_top, n_iw = s.n_top_explain + s.n_top_score, s.n_iw_explain + s.n_iw_score
    masked = torch.where(centres, acts, torch.zeros(()))
    flat = masked.flatten()
    order = torch.sort(flat, descending=True, stable=True).indices
    t = acts.shape[1]
    taken: dict[int, list[int]] = {}
    top: list[tuple[int, int]] = []
    for index in order.tolist():
        if flat[index] <= 0 or len(top) == n_top:
            break
        row, centre = divmod(index, t)
        if not _overlaps(taken, row, centre, s.buffer):
            _take(taken, row, centre)
            top.append((row, centre))
    if len(top) < n_top:
        return f"fires at {len(top)} separate contexts, needs {n_top} top contexts"
    weakest_top = min(float(acts[r, c]) for r, c in top)
    threshold = s.act_threshold_frac * float(acts[top[0]])
    below = torch.where((masked < weakest_top) & (masked > 0), masked, torch.zeros(()))
    for row, centre in top:  # no importance-sampled window holds a top centre (SAEBench allows it)
        below[row, max(0, centre - s.buffer): centre + s.buffer + 1] = 0
    below = below.flatten()
    if int((below > 0).sum()) < n_iw:
        return f"fires at {int((below > 0).sum())} positions below its top contexts, needs {n_iw} to sample"
    iw = torch.multinomial(below.double().pow(2), n_iw, replacement=False, generator=gen).tolist()
    iw_pairs = [divmod(i, t) for i in iw]
    for row, centre in iw_pairs:
        _take(taken, row, centre)
    top_split = torch.randperm(n_top, generator=gen).tolist()
    iw_split = torch.randperm(n_iw, generator=gen).tolist()
    win = lambda pair, kind: _window(acts, token_text, pair[0], pair[1], s.buffer, kind)  # noqa: E731
    out = LatentExamples(latent, threshold)
    out.explain = sorted([win(top[i], "top") for i in top_split[: s.n_top_explain]]
                         + [win(iw_pairs[i], "iw") for i in iw_split[: s.n_iw_explain]],
                         key=lambda c: -c.max_act)
    out.score_active = ([win(top[i], "top") for i in top_split[s.n_top_explain:]]
                        + [win(iw_pairs[i], "iw") for i in iw_split[s.n_iw_explain:]])
    all_centres = torch.nonzero(centres.flatten()).flatten()
    picks = all_centres[torch.randint(len(all_centres), (s.n_random_score,), generator=gen)].tolist()
    out.score_random = [win(divmod(i, t), "random") for i in picks]
    out.quantile = _quantiles(masked, taken, s, gen, win)
    out.nonactive = _nonactive(acts, centres, s, gen, win, len(out.activating))
    return out


def _quantiles(masked: Tensor, taken, s: SamplingSettings, gen, win) -> list[Context]:
    """One firing centre per equal-count activation bin, away from every window already used."""
    t = masked.shape[1]
    firing = [i for i in torch.nonzero(masked.flatten() > 0).flatten().tolist()
              if not _overlaps(taken, *divmod(i, t), s.buffer)]
    if len(firing) < s.n_quantiles:
        return []
    firing.sort(key=lambda i: (float(masked.flatten()[i]), i))
    bins = [firing[len(firing) * q // s.n_quantiles: len(firing) * (q + 1) // s.n_quantiles] for q in range(s.n_quantiles)]
    out = []
    for members in bins:
        pick = members[int(torch.randint(len(members), (1,), generator=gen))]
        _take(taken, *divmod(pick, t))
        out.append(win(divmod(pick, t), "quantile"))
    return out


def _nonactive(acts: Tensor, centres: Tensor, s: SamplingSettings, gen, win, n: int) -> list[Context]:
    """n random centres whose whole window has activation 0 (fewer if the corpus has fewer)."""
    k = 2 * s.buffer + 1
    silent = torch.nn.functional.max_pool1d(acts[:, None, :].clamp_min(0), k, stride=1, padding=s.buffer)[:, 0, :] <= 0
    candidates = torch.nonzero((centres & silent).flatten()).flatten()
    if len(candidates) == 0:
        return []
    chosen = candidates[torch.randperm(len(candidates), generator=gen)[:n]].tolist()
    return [win(divmod(i, acts.shape[1]), "nonactive") for i in chosen]


def live_latents(firing_counts: Tensor, min_firing: int) -> list[int]:
    """Latents firing on at least `min_firing` kept tokens (SAEBench: 15 over its token budget)."""
    return torch.nonzero(firing_counts >= min_firing).flatten().tolist()


def choose_latents(live: list[int], n: int, seed: int) -> list[int]:
    """A seeded sample of n live latents (all of them if fewer), sorted."""
    if len(live) <= n:
        return sorted(live)
    pick = torch.randperm(len(live), generator=torch.Generator().manual_seed(seed)).tolist()[:n]
    return sorted(live[i] for i in pick)
