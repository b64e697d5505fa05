"""SAEBench 0.6.0's k-sparse probing protocol on pooled vectors (one per text), reproduced.

For each class c of a dataset (class -> [n_c, D] vectors, train and test alike):
- balanced binary data: the n_c texts of c are positives; ceil(n_c / (#classes − 1)) texts are
  drawn from each other class (`randperm`), then n_c of those (`randperm`), and the 2 n_c rows are
  shuffled (`randperm`) — train first, then test, one torch generator for the whole dataset;
- the k dimensions with the largest |mean(positives) − mean(negatives)| on the training rows,
  kept in index order;
- scikit-learn LogisticRegression(C=1, max_iter=1000: L2, lbfgs) on them; held-out accuracy.
With `dense_probe_accuracies`, SAEBench's dense probe on every dimension instead (AdamW, epochs
chosen on the held-out set). The dataset's number is the mean accuracy over its classes. Pure:
arrays in, numbers out.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def balanced_binary(vectors: dict[str, torch.Tensor], positive: str,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows [2n, D], labels [2n] int: 1 positive, 0 negative), shuffled."""
    pos = vectors[positive]
    n = len(pos)
    others = [name for name in vectors if name != positive]
    per_class = math.ceil(n / len(others))
    negatives = torch.cat([vectors[name][torch.randperm(len(vectors[name]), generator=generator)[:per_class]]
                           for name in others])
    negatives = negatives[torch.randperm(len(negatives), generator=generator)[:n]]
    if len(negatives) < n:
        raise ValueError(f"class {positive!r}: {len(negatives)} negatives for {n} positives")
    rows = torch.cat([pos, negatives])
    labels = torch.cat([torch.ones(n, dtype=torch.int64), torch.zeros(n, dtype=torch.int64)])
    order = torch.randperm(2 * n, generator=generator)
    return rows[order], labels[order]


def class_tasks(train: dict[str, torch.Tensor], test: dict[str, torch.Tensor], generator: torch.Generator):
    """Per class (in `train` order): (class, x_train, y_train, x_test, y_test), the balanced binary
    train set drawn before the test set, as SAEBench draws them."""
    for name in train:
        yield (name, *balanced_binary(train, name, generator), *balanced_binary(test, name, generator))


def top_k_dims(rows: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (ascending) of the k dimensions with the largest |mean difference| between the labels."""
    diff = (rows[labels == 1].mean(dim=0) - rows[labels == 0].mean(dim=0)).abs()
    keep = torch.zeros(rows.shape[1], dtype=torch.bool)
    keep[torch.argsort(diff, descending=True)[:k]] = True
    return torch.nonzero(keep).flatten()


def k_sparse_accuracies(train: dict[str, torch.Tensor], test: dict[str, torch.Tensor], k: int,
                        generator: torch.Generator) -> dict[str, float]:
    """{class: held-out accuracy of the k-sparse probe}, classes in `train` order. The fits run with
    one BLAS thread: on these tiny problems more threads only spin (about 15x the CPU, same numbers)."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    out = {}
    with threadpool_limits(1):
        for name, x_train, y_train, x_test, y_test in class_tasks(train, test, generator):
            dims = top_k_dims(x_train, y_train, k)
            fit = LogisticRegression(C=1.0, max_iter=1000).fit(x_train[:, dims].float().numpy(), y_train.numpy())
            predicted = fit.predict(x_test[:, dims].float().numpy())
            out[name] = float(np.mean(predicted == y_test.numpy()))
    return out


def dense_probe_accuracies(train: dict[str, torch.Tensor], test: dict[str, torch.Tensor], generator: torch.Generator,
                           *, batch_size: int = 250, epochs: int = 100, lr: float = 1e-2,
                           patience: int = 10) -> dict[str, float]:
    """{class: best held-out accuracy of a logistic probe on every dimension}, SAEBench 0.6.0's
    dense probe (`llm_test_accuracy` / `sae_test_accuracy`), per class on the balanced binary data:
    a Linear(D, 1) with PyTorch's default initialisation (drawn from `generator` after the data),
    AdamW(lr) on the mean binary cross-entropy of the logits over minibatches of `batch_size` in a
    new permutation each epoch; after each epoch the held-out accuracy (logit > 0 predicts the
    class); the best one is the number, and training stops after `patience` epochs without a
    strictly better one. The epoch is chosen on the held-out set, so the number is optimistic."""
    import torch.nn.functional as F

    out = {}
    with torch.enable_grad():
        for name, x_train, y_train, x_test, y_test in class_tasks(train, test, generator):
            x_train, x_test = x_train.float(), x_test.float()
            weight = torch.empty(1, x_train.shape[1])
            torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)  # Linear's default
            bound = 1 / math.sqrt(x_train.shape[1])
            bias = torch.empty(1).uniform_(-bound, bound, generator=generator)
            weight.requires_grad_(True)
            bias.requires_grad_(True)
            optimiser = torch.optim.AdamW([weight, bias], lr=lr)
            target = y_train.float()
            best, stale = 0.0, 0
            for _ in range(epochs):
                order = torch.randperm(len(x_train), generator=generator)
                for start in range(0, len(x_train), batch_size):
                    rows = order[start:start + batch_size]
                    logits = F.linear(x_train[rows], weight, bias).squeeze(-1)
                    loss = F.binary_cross_entropy_with_logits(logits, target[rows])
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                with torch.no_grad():
                    correct = torch.cat([(F.linear(x_test[a:a + batch_size], weight, bias).squeeze(-1) > 0).long()
                                         == y_test[a:a + batch_size] for a in range(0, len(x_test), batch_size)])
                    accuracy = correct.float().mean().item()
                if accuracy > best:
                    best, stale = accuracy, 0
                else:
                    stale += 1
                if stale >= patience:
                    break
            out[name] = best
    return out
