"""The two probe families of the absorption eval, trained as SAEBench trains them.

- `train_multi_probe`: one-vs-rest logistic regression, one output per class, trained jointly on
  BCE-with-logits with per-class pos_weight = n_neg / n_pos, Adam (L2 weight decay), learning rate
  decayed exponentially from `lr` to `end_lr` over the epochs, shuffled mini-batches. The
  first-letter probe is this on residual activations (batch 64, 50 epochs, lr 1e-2, decay 1e-4);
  the L1 probe that ranks latents is this on SAE codes with loss + l1 · mean_class Σ|w| (batch
  4096, 50 epochs, lr 1e-2, decay 1e-6, l1 0.01).
- `k_sparse_probes`: for each class and k, the k latents with the largest (signed) L1-probe weight,
  then scikit-learn LogisticRegression(max_iter=500, class_weight="balanced") on those latents.

All torch randomness (initialisation, shuffling) is drawn from the global generator seeded with
`seed` inside `torch.random.fork_rng`, in SAEBench's order, so the caller's RNG is untouched and
the same seed gives SAEBench's probes. This module never runs the language model.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import nn


def _pos_weight(y: torch.Tensor) -> torch.Tensor:
    """n_neg / n_pos per class; a class without positives gets 1 (SAEBench divides by zero: NaN probe)."""
    positives = y.sum(dim=0)
    return (len(y) - positives) / positives.clamp_min(1)


def train_multi_probe(inputs: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, n_features: int, *,
                      batch_size: int, epochs: int, lr: float, end_lr: float, weight_decay: float,
                      l1: float = 0.0) -> nn.Linear:
    """A Linear(n_features, n_classes) float32 probe on rows `inputs(row_indices)` ([b, n_features]:
    raw activations, or SAE codes densified one batch at a time) with one-hot targets y [n, classes].
    Shuffling draws over row indices exactly as over the rows themselves. Uses the global torch RNG."""
    n_classes = y.shape[1]
    probe = nn.Linear(n_features, n_classes)
    rows = torch.arange(len(y))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(rows, y.float()),
                                         batch_size=batch_size, shuffle=True)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=_pos_weight(y.float()))
    optimizer = torch.optim.Adam(probe.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=math.exp(math.log(end_lr / lr) / epochs))
    probe.train()
    with torch.enable_grad():
        for _ in range(epochs):
            for batch_rows, yb in loader:
                optimizer.zero_grad()
                loss = loss_fn(probe(inputs(batch_rows)), yb)
                if l1:
                    loss = loss + l1 * probe.weight.abs().sum(dim=-1).mean()
                loss.backward()
                optimizer.step()
            schedule.step()
    probe.eval()
    return probe.requires_grad_(False)


class SparseProbe(NamedTuple):
    latents: torch.Tensor  # [k] int64
    weight: torch.Tensor  # [k] float32
    bias: float

    def score(self, codes_of: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Logits from the codes of this probe's latents ([n, k])."""
        return codes_of(self.latents) @ self.weight + self.bias


def k_sparse_probes(l1_weight: torch.Tensor, codes_of: Callable[[torch.Tensor], torch.Tensor],
                    labels: np.ndarray, classes: list[int], ks: list[int]) -> dict[int, dict[int, SparseProbe]]:
    """{k: {class: probe}}: the top-k latents of the L1 probe's row, refit with balanced
    logistic regression on the training codes `codes_of(latents)` ([n_train, k])."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    out: dict[int, dict[int, SparseProbe]] = {}
    with threadpool_limits(1):  # tiny fits: more BLAS threads only spin (about 15x the CPU, same numbers)
        for k in ks:
            out[k] = {}
            for cls in classes:
                latents = l1_weight[cls].topk(k).indices
                x = codes_of(latents).float().numpy()
                fit = LogisticRegression(max_iter=500, class_weight="balanced").fit(x, (labels == cls).astype(np.int64))
                out[k][cls] = SparseProbe(latents, torch.tensor(fit.coef_[0]).float(),
                                          float(torch.tensor(fit.intercept_[0]).float()))
    return out
