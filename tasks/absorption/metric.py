"""Feature absorption metrics (Chanin et al., "A is for Absorption"; SAEBench 0.6.0's definitions).

Pure functions: tensors in, numbers out. Notation for one word of letter ℓ whose activation x is
classified ℓ by the first-letter probe (unit direction p = w_ℓ/‖w_ℓ‖): codes a_j of the SAE,
c_j = cos(p, W_dec[j]), projections π_j = a_j c_j, P = x·p, M the letter's main (split) latents,
m = Σ_{j∈M} π_j, and A = sum of the (at most 3) largest π_j over j ∉ M with c_j ≥ 0.1 and π_j > 0.

- absorption fraction: 0 if m ≥ P or A/P < 0.4; else 1 if m ≤ 0; else min(A, P−m) / (min(A, P−m) + m).
- full absorption: every main latent is silent (a_j < 1e-8), the top-projecting latent j* has
  c_{j*} ≥ 0.025, P ≥ 0 and π_{j*}/P ≥ 0.4.
- per letter: mean absorption fraction = Σ fraction / n_tp and full-absorption rate = n_full / n_tp
  over the letter's probe true positives (n_tp); split latents |M|.
- main latents (feature splitting): for k = 1, 2, … the k-sparse probe's latents are kept while
  its F1 beats the best so far by more than `f1_jump` (k = 1 always counts).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

FULL_ABSORPTION_COS = 0.025
FRACTION_COS = 0.1
PROJECTION_SHARE = 0.4
MAX_ABSORBERS = 3
SILENT = 1e-8


def f1_score(truth: torch.Tensor, predicted: torch.Tensor) -> float:
    """Binary F1 = 2TP / (2TP + FP + FN); 0 when there are no positives at all (scikit-learn's convention)."""
    tp = int((truth & predicted).sum())
    denominator = 2 * tp + int((~truth & predicted).sum()) + int((truth & ~predicted).sum())
    return 0.0 if denominator == 0 else 2 * tp / denominator


def split_latents(f1_by_k: list[float], latents_by_k: list[list[int]], f1_jump: float) -> list[int]:
    """The main latents: those of the largest k reached while F1 keeps rising by more than f1_jump."""
    best, chosen = -100.0, []
    for f1, latents in zip(f1_by_k, latents_by_k):
        if f1 > best + f1_jump:
            best, chosen = f1, latents
        else:
            break
    return chosen


class WordAbsorption(NamedTuple):
    fraction: torch.Tensor  # [n] float64 in [0, 1]
    full: torch.Tensor  # [n] bool


def word_absorption(x: torch.Tensor, codes: torch.Tensor, probe_direction: torch.Tensor, decoder: torch.Tensor,
                    main: list[int], *, fraction_cos: float = FRACTION_COS, full_cos: float = FULL_ABSORPTION_COS,
                    share: float = PROJECTION_SHARE, max_absorbers: int = MAX_ABSORBERS) -> WordAbsorption:
    """Absorption of n words: x [n, d] activations, codes [n, F] dense SAE codes, decoder [F, d]."""
    p = probe_direction / probe_direction.norm()
    cos = torch.nn.functional.cosine_similarity(p[None, :].to(decoder.dtype), decoder, dim=-1).float()
    proj = codes.float() * cos  # π [n, F]
    total = (x.float() @ p.float()).double()  # P [n]
    is_main = torch.zeros(codes.shape[1], dtype=torch.bool)
    is_main[main] = True
    main_proj = proj[:, is_main].sum(dim=1).double()  # m
    candidates = torch.where((~is_main & (cos >= fraction_cos))[None, :] & (proj > 0), proj, torch.zeros(()))
    absorbed = candidates.topk(min(max_absorbers, candidates.shape[1]), dim=1).values.sum(dim=1).double()  # A
    share_of_total = absorbed / total
    credited = torch.minimum(absorbed, total - main_proj)
    partial = (credited / (credited + main_proj)).clamp(0.0, 1.0)
    fraction = torch.where((main_proj >= total) | (share_of_total < share), torch.zeros_like(total),
                           torch.where(main_proj <= 0, torch.ones_like(total), partial))
    top = proj.max(dim=1)
    silent = (codes[:, is_main] < SILENT).all(dim=1)
    full = silent & (cos[top.indices] >= full_cos) & (total >= 0) & (top.values.double() / total >= share)
    return WordAbsorption(fraction, full)
