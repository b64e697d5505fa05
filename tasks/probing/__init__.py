"""Task `probing`: do labelled features fire on their concept, and how well do a few latents
classify the labelled categories compared with the raw activations?

Texts: a labeled probe set (`sae_bench.tasks.probing.probe_set`): option `probe_set=PATH`, else the suite
resource `probe_set`, else the shipped `tasks/probing/data/probe_set.jsonl`. Its sha256 is in the
artifacts; the config hash only sees the path, so edit a replacement file under a new name.
One vector per text at the context's hookpoint:
- pooled hookpoint (`pooled_final_norm`): the model's pooled final-norm vector per text, used
  for both the SAE and the raw baseline (one vector per text is what ErnOS trained on);
- token hookpoints: per-token residuals over kept tokens (BOS/pad/EOS excluded); the SAE
  representation of a text is the MAX over its tokens of each latent, the raw baseline's is the
  MEAN over its tokens of each dimension.
SAE inputs go through `sae.preprocess` for all probe texts (pooled) or all their kept tokens
(token hookpoints) at once, so "batch" standardisation (ErnOS) uses one mean/std over the whole
probe set. The raw per-text activations are memoised per hookpoint (`ctx.memo`), so every
checkpoint at the hookpoint shares one model pass; under torchrun each rank runs its share of
the probe-text batches and the vectors are gathered back in text order.

Metrics (definitions in `sae_bench.metrics.probing`):
(a) needs a feature map: `label_confirmed_fraction`, `label_confirmed_fraction/<category>`
    (AUROC >= min_auroc and permutation p < alpha, over the category's texts of both splits),
    `label_auroc_mean`; null without a map. Map categories absent from the probe set are
    untested (listed in notes), never counted as failures.
(b) any checkpoint: `sae_accuracy_k{k}` (k latents chosen by mean difference on the training
    split, logistic regression, held-out accuracy pooled over categories), `raw_accuracy_k{k}`
    (same on raw dimensions), `raw_accuracy_dense` (logistic regression on all raw dimensions).
This task never writes files and never reads checkpoint formats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sae_bench.core.progress import tqdm

from sae_bench.run import distributed
from sae_bench.core.errors import DataError, InputError
from sae_bench.metrics.probing import (
    confirmed_fractions, label_check, pooled_accuracy, sparse_probe,
)
from sae_bench.metrics.stats import mean_metric
from sae_bench.records.provenance import portable
from sae_bench.tasks.probing.probe_set import ProbeSet, load_probe_set
from sae_bench.core.registry import register_task
from sae_bench.core.task_api import Metric, MetricSpec, Task, TaskConfig, TaskOutput
from sae_bench.leaderboard_build.views import PageSection


@dataclass(frozen=True)
class ProbingConfig(TaskConfig):
    positive = ("seq_len", "k_values", "n_permutations", "C", "max_iter", "encode_batch_texts")
    unit_interval = ("min_auroc", "alpha")
    probe_set: str | None = None  # JSON-lines probe set; None: suite resource `probe_set` or the shipped set
    seq_len: int = 64  # tokens per probe text (BOS included); longer texts are truncated
    k_values: tuple[int, ...] = (1, 2, 5, 20)
    n_permutations: int = 200  # label-check permutations (p-value resolution 1/(n+1))
    min_auroc: float = 0.7
    alpha: float = 0.05
    C: float = 1.0  # inverse L2 strength of the logistic probes
    max_iter: int = 1000
    encode_batch_texts: int = 64  # texts per SAE encode call (token hookpoints); no effect on numbers


class PerTextActivations:
    """Raw activations of the probe texts at one hookpoint: per-text token vectors, or one
    pooled vector per text (`tokens is None`)."""

    def __init__(self, pooled: torch.Tensor | None, tokens: torch.Tensor | None, offsets: torch.Tensor):
        self.pooled = pooled  # [n_texts, d]
        self.tokens = tokens  # [n_kept_total, d]: kept tokens of all texts, in text order
        self.offsets = offsets  # [n_texts + 1] row ranges into `tokens`

    def raw_per_text(self) -> torch.Tensor:
        """[n_texts, d]: the pooled vector, or the mean over each text's kept tokens."""
        if self.pooled is not None:
            return self.pooled
        counts = (self.offsets[1:] - self.offsets[:-1]).clamp_min(1)
        segment = torch.repeat_interleave(torch.arange(len(counts)), self.offsets[1:] - self.offsets[:-1])
        sums = torch.zeros(len(counts), self.tokens.shape[1], dtype=torch.float64)
        sums.index_add_(0, segment, self.tokens.to(torch.float64))
        return (sums / counts[:, None]).float()


def _extract(ctx, probe_set: ProbeSet, seq_len: int) -> PerTextActivations:
    from sae_bench.inputs.corpus import tokenize
    from sae_bench.models.hookpoints import POOLED_HOOKPOINT  # lazy: task discovery stays light

    corpus = tokenize(probe_set.texts, ctx.model.tokenizer, seq_len=seq_len, corpus_id=probe_set.path)
    pooled = ctx.hookpoint == POOLED_HOOKPOINT or ctx.is_pooled
    device = ctx.model.device
    local = []  # (batch index, vectors[, kept counts]) for this rank's batches (all of them without torchrun)
    batches = list(distributed.shard(corpus.batches(ctx.batch_size)))
    for index, (_, ids, mask, keep) in tqdm(batches, desc=f"probing activations @ {ctx.hookpoint}", unit="batch",
                                            disable=not ctx.show_progress, leave=False):
        with torch.no_grad():
            if pooled:
                local.append((index, (ctx.model.pooled_final_norm(ids.to(device), mask.to(device)).float().cpu(),)))
            else:
                resid = ctx.model.residual(ctx.hookpoint, ids.to(device), mask.to(device)).float().cpu()
                local.append((index, (resid[keep], keep.sum(dim=1))))
    gathered = distributed.gather_ordered(local)  # every batch, in text order, on every rank
    vectors = [part[0] for part in gathered]
    counts = [part[1] for part in gathered if len(part) > 1]
    if pooled:
        return PerTextActivations(torch.cat(vectors), None, torch.arange(corpus.n_sequences + 1))
    counts_all = torch.cat(counts)
    if bool((counts_all == 0).any()):
        bad = int(torch.nonzero(counts_all == 0)[0])
        raise DataError(probe_set.path, f"probe text {bad} ({probe_set.items[bad].text[:40]!r}) has no kept tokens")
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), counts_all.cumsum(0)])
    return PerTextActivations(None, torch.cat(vectors), offsets)


@torch.no_grad()
def sae_per_text(sae, acts: PerTextActivations, batch_texts: int) -> torch.Tensor:
    """[n_texts, d_sae] float32: codes of the pooled vectors, or the max over each text's tokens.
    Preprocessing sees the whole probe set at once (one batch for "batch" standardisation).
    Sparse (topk) codes are reduced without ever forming a dense [tokens, d_sae] tensor."""
    if acts.pooled is not None:
        x_in, _ = sae.preprocess(acts.pooled.to(sae.device, sae.dtype))
        return sae.encode(x_in).to_dense().float().cpu()
    x_in, _ = sae.preprocess(acts.tokens.to(sae.device, sae.dtype))
    n_texts, n_latents = len(acts.offsets) - 1, sae.d_sae
    lengths = acts.offsets[1:] - acts.offsets[:-1]
    out = torch.empty(n_texts, n_latents, dtype=torch.float32)
    for start in range(0, n_texts, batch_texts):
        stop = min(start + batch_texts, n_texts)
        lo, hi = int(acts.offsets[start]), int(acts.offsets[stop])
        codes = sae.encode(x_in[lo:hi])
        segment = torch.repeat_interleave(torch.arange(stop - start), lengths[start:stop]).to(codes.values.device)
        if codes.indices is not None:  # latents absent from a token's top k count as 0
            flat = (segment[:, None] * n_latents + codes.indices).flatten()
            block = codes.values.new_zeros((stop - start) * n_latents).scatter_reduce_(
                0, flat, codes.values.flatten(), "amax", include_self=True).view(stop - start, n_latents)
        else:
            block = codes.values.new_zeros(stop - start, n_latents).scatter_reduce_(
                0, segment[:, None].expand_as(codes.values), codes.values, "amax", include_self=False)
        out[start:stop] = block.float().cpu()
    return out


def _feature_columns(sae) -> list[tuple[int, str, str]]:
    feature_map = sae.feature_map
    features = [(int(e.sae_index), str(e.label), str(e.category)) for e in feature_map.entries]
    outside = [f for f in features if not 0 <= f[0] < sae.d_sae]
    if outside:
        raise DataError(getattr(feature_map, "path", "feature map"),
                        f"feature {outside[0][0]} ({outside[0][1]!r}) is outside the SAE's {sae.d_sae} latents "
                        f"({len(outside)} such entries)")
    return features


@register_task
class ProbingTask(Task):
    name = "probing"
    page_sections = (PageSection(10, "sae_bench.tasks.probing.page:render"),)
    version = "1"
    random_sources = ("permutation test: torch.Generator(seed + 101)",
                      "logistic regression: scikit-learn random_state = seed")
    Config = ProbingConfig
    description = "feature-map label check (AUROC + permutation test) and k-sparse probes vs raw activations"
    metrics = (
        MetricSpec("label_confirmed_fraction", "higher", "share of labelled features with AUROC ≥ 0.7 and "
                   "permutation p < 0.05 on their category (/CATEGORY: within one category)",
                   "fraction", 0.02, headline=40, parts=True),
        MetricSpec("label_auroc_mean", "higher", "mean AUROC of the labelled features on their category",
                   "AUROC", 0.02),
        MetricSpec("sae_accuracy_k5", "higher", "held-out accuracy of a logistic probe on the top 5 SAE latents",
                   "fraction", 0.02, headline=41),
        MetricSpec("sae_accuracy_k*", "higher", "held-out accuracy of a logistic probe on the top k SAE latents",
                   "fraction", 0.02),
        MetricSpec("raw_accuracy_*", "none",
                   "the same probe on raw activations (k dimensions, or all: dense): a reference, not the SAE's score",
                   "fraction"),
    )

    def _probe_set(self, ctx) -> ProbeSet:
        path = self.config.probe_set or ctx.resources.get("probe_set")
        return load_probe_set(path)

    def check_inputs(self, resources) -> None:
        """k values, and the probe set (option or run resource) read and validated before any work."""
        self._k_values()
        load_probe_set(self.config.probe_set or resources.get("probe_set"))

    def _k_values(self) -> list[int]:
        ks = self.config.k_values
        if isinstance(ks, int):
            ks = [ks]
        if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
            raise InputError("--task-option probing.k_values", f"expected a list of positive integers, got {ks!r}")
        return sorted(set(ks))

    def run(self, sae, ctx) -> TaskOutput:
        cfg = self.config
        ks = self._k_values()
        if cfg.n_permutations < 1:
            raise InputError("--task-option probing.n_permutations", "must be at least 1")
        probe_set = self._probe_set(ctx)
        features = _feature_columns(sae) if sae.feature_map is not None else None
        acts = ctx.memo(f"probing/raw/{ctx.hookpoint}/{probe_set.sha256}/{cfg.seq_len}",
                        lambda: _extract(ctx, probe_set, cfg.seq_len))
        raw = acts.raw_per_text().numpy()
        latents = sae_per_text(sae, acts, cfg.encode_batch_texts).numpy()

        labels = np.array([item.label for item in probe_set.items])
        categories = [item.category for item in probe_set.items]
        metrics: dict[str, Metric] = {}
        artifacts: dict = {"probe_set": {"path": portable(probe_set.path), "sha256": probe_set.sha256,
                                         "counts": probe_set.counts()},
                           "text_representation": "pooled vector" if acts.pooled is not None else
                           "SAE: max over kept tokens per latent; raw: mean over kept tokens"}
        notes = []

        # (a) label check
        if features is None:
            metrics["label_confirmed_fraction"] = Metric.null("checkpoint has no feature map")
            metrics["label_auroc_mean"] = Metric.null("checkpoint has no feature map")
        else:
            columns = [f[0] for f in features]
            checks = label_check(latents[:, columns], labels, categories, features,
                                 n_permutations=cfg.n_permutations, generator=ctx.generator(101),
                                 min_auroc=cfg.min_auroc, alpha=cfg.alpha)
            fractions = confirmed_fractions(checks)
            metrics["label_confirmed_fraction"] = fractions.pop("")
            for category, metric in sorted(fractions.items()):
                metrics[f"label_confirmed_fraction/{category}"] = metric
            tested = [c.auroc for c in checks if c.auroc is not None]
            metrics["label_auroc_mean"] = mean_metric(torch.tensor(tested, dtype=torch.float64),
                                                      "no labelled feature has probe texts")
            artifacts["label_check"] = [c.to_json() for c in checks]
            untested = sorted({c.category for c in checks if c.auroc is None})
            if untested:
                notes.append(f"feature-map categories without probe texts (untested): {', '.join(untested)}")

        # (b) category probing
        per_category: dict[str, dict] = {}
        pooled_results: dict[str, list] = {}
        seed = ctx.seed
        for category in probe_set.categories:
            rows = np.array(probe_set.rows(category))
            y = labels[rows]
            is_train = np.array([probe_set.items[i].split == "train" for i in rows])
            entry: dict = {}
            for k in ks:
                for name, x in (("sae", latents), ("raw", raw)):
                    result = sparse_probe(x[rows], y, is_train, category, k, seed=seed, C=cfg.C, max_iter=cfg.max_iter)
                    pooled_results.setdefault(f"{name}_accuracy_k{k}", []).append(result)
                    entry[f"{name}_accuracy_k{k}"] = result.accuracy
                    if name == "sae":
                        entry[f"sae_latents_k{k}"] = result.selected
            dense = sparse_probe(raw[rows], y, is_train, category, None, seed=seed, C=cfg.C, max_iter=cfg.max_iter)
            pooled_results.setdefault("raw_accuracy_dense", []).append(dense)
            entry["raw_accuracy_dense"] = dense.accuracy
            entry["n_test"] = dense.n_test
            per_category[category] = entry
        for name in sorted(pooled_results):
            metrics[name] = pooled_accuracy(pooled_results[name])
        artifacts["per_category"] = per_category

        if sae.metadata.preprocessing.standardise == "batch":
            notes.append("batch standardisation: one mean/std over all probe texts"
                         + ("" if acts.pooled is not None else "' kept tokens"))
        if any(k > sae.d_sae for k in ks):
            notes.append(f"k above d_sae={sae.d_sae} uses all latents")
        counts = {"texts": len(probe_set.items), "categories": len(probe_set.categories),
                  "test_texts": sum(not item.split == "train" for item in probe_set.items),
                  "labelled_features": 0 if features is None else len(features)}
        if acts.pooled is None:
            counts["tokens"] = int(acts.offsets[-1])
        return TaskOutput(metrics=metrics, counts=counts, artifacts=artifacts, notes=notes)
