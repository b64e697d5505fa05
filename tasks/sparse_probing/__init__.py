"""Task `sparse_probing`: SAEBench 0.6.0's k-sparse probing, so that our numbers sit beside its.

A task of its own rather than an option of `probing`: its data (SAEBench's eight hub datasets,
drawn per class as SAEBench draws them, `datasets.py`), pooling (MEAN over non-BOS/pad/EOS tokens of
each text, for the SAE codes and the raw activations alike) and probe protocol (`probes.py`) share
nothing with the 544-text category probing, whose numbers stay as they are; every record says
the protocol (`saebench-0.6.0-sparse-probing`) and which datasets produced its numbers.

Per dataset and class: balanced binary train/test sets, top-k dimensions by mean difference,
logistic regression, held-out accuracy; the dataset's score is the mean over its classes, the
headline the mean over datasets. `sae_top_{k}_test_accuracy` on SAE latents, `llm_top_{k}_...`
on the raw activations (a reference). Texts are tokenised to `context_length` tokens (truncated,
padded); raw per-token activations are memoised per hookpoint, so every checkpoint there shares
one model pass, and kept on disk beside the hookpoint's activation cache when the run has one
(another run or checkpoint there skips the model). SAEBench also trains dense probes on all
latents / all dimensions with early stopping on the test set (`sae_test_accuracy`, `llm_test_accuracy`): reproduced with `dense_probes=true`, off by default
because their epoch is chosen on the test set.
Randomness: SAEBench threads one torch generator through every probe of a run (so a number
depends on what ran before it, dense probes included); here each (dataset, representation, k)
draws from its own generator seeded with `random_seed`, which is also how the peer check seeds
SAEBench's `train_probe_on_activations`. It writes only its activation memo (with a cache folder).
"""

from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import dataclass

import torch
from sae_bench.core.progress import tqdm
from sae_bench.records.provenance import portable

from sae_bench.activations.memo import disk_memo
from sae_bench.core.errors import DataError, InputError
from sae_bench.core.registry import register_task
from sae_bench.core.task_api import Metric, MetricSpec, Task, TaskConfig, TaskOutput
from sae_bench.leaderboard_build.views import PageSection
from sae_bench.tasks.sparse_probing.datasets import DATASETS, load_dataset_classes, short_name
from sae_bench.tasks.sparse_probing.probes import dense_probe_accuracies, k_sparse_accuracies

PROTOCOL = "saebench-0.6.0-sparse-probing"


@dataclass(frozen=True)
class SparseProbingConfig(TaskConfig):
    positive = ("probe_train_set_size", "probe_test_set_size", "context_length", "k_values", "sae_batch_texts")
    non_negative = ("random_seed",)
    paths = ("data_dir",)
    datasets: tuple[str, ...] = DATASETS
    data_dir: str | None = None  # local copies <data_dir>/<hub id>/... (hub schema)
    from_hub: bool = False  # read datasets without a local copy from the hub (downloads GBs; online only)
    random_seed: int = 42
    probe_train_set_size: int = 4000
    probe_test_set_size: int = 1000
    context_length: int = 128
    k_values: tuple[int, ...] = (1, 2, 5)
    sae_batch_texts: int = 125  # texts per SAE encode call; no effect on the numbers
    # "bucketed": texts of similar length run together, padded to a multiple of 8 (less model work;
    # the same activations as SAEBench's layout bit for bit wherever checked, see docs/metrics.md);
    # "saebench": every text padded to context_length (SAEBench's layout: its float rounding by
    # construction). Both attend without a padding mask and pool as sums over zero-filled rows.
    padding: str = "bucketed"
    # SAEBench's dense probes on every latent / dimension (sae_test_accuracy, llm_test_accuracy):
    # off by default, as their epoch is chosen on the test set (optimistic); on to compare with SAEBench
    dense_probes: bool = False


class PooledTexts:
    """Kept-token activations of one split's texts, grouped by class (memoised per hookpoint).
    `positions`: each kept token's place in its text's row of `width` tokens; means are sums over
    zero-filled [texts, width, ·] rows, SAEBench's order of float additions."""

    def __init__(self, tokens: dict[str, torch.Tensor], offsets: dict[str, torch.Tensor],
                 positions: dict[str, torch.Tensor], width: int):
        self.tokens, self.offsets = tokens, offsets  # class -> [n_kept, d], class -> [n_texts + 1]
        self.positions, self.width = positions, width

    def _mean(self, name: str, rows: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Mean of `rows` (the kept tokens of texts start..stop of class `name`) per text."""
        offsets = self.offsets[name][start:stop + 1] - self.offsets[name][start]
        lo, hi = int(self.offsets[name][start]), int(self.offsets[name][stop])
        lengths = offsets[1:] - offsets[:-1]
        text = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
        padded = torch.zeros(len(lengths), self.width, rows.shape[1], dtype=rows.dtype)
        padded[text, self.positions[name][lo:hi]] = rows
        return padded.sum(dim=1) / lengths.to(rows.dtype)[:, None]

    def _means(self, transform, batch_texts: int) -> dict[str, torch.Tensor]:
        """Per class, the mean of `transform(kept tokens)` per text, `batch_texts` texts at a time."""
        out = {}
        for name, tokens in self.tokens.items():
            offsets, n = self.offsets[name], len(self.offsets[name]) - 1
            out[name] = torch.cat([self._mean(name, transform(tokens[int(offsets[a]):int(offsets[min(a + batch_texts, n)])]),
                                              a, min(a + batch_texts, n)) for a in range(0, n, batch_texts)])
        return out

    def raw_means(self, batch_texts: int = 125) -> dict[str, torch.Tensor]:
        return self._means(lambda rows: rows.float(), batch_texts)

    @torch.no_grad()
    def sae_means(self, sae, batch_texts: int) -> dict[str, torch.Tensor]:
        def codes(rows: torch.Tensor) -> torch.Tensor:
            x_in, _ = sae.preprocess(rows.to(sae.device, sae.dtype))
            return sae.encode(x_in).to_dense().float().cpu()

        return self._means(codes, batch_texts)


def _batches(lengths: list[int], batch_size: int, context_length: int, padding: str) -> list[tuple[list[int], int]]:
    """(text indices, width) per forward. "saebench": `batch_size` texts in their order, each at
    `context_length`. "bucketed": texts sorted by length, grouped by their length rounded up to a
    multiple of 8 (at least 16), at most `batch_size * context_length` token rows per forward."""
    if padding == "saebench":
        return [(list(range(a, min(a + batch_size, len(lengths)))), context_length)
                for a in range(0, len(lengths), batch_size)]
    width_of = lambda n: min(context_length, max(16, -(-n // 8) * 8))  # noqa: E731
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    out: list[tuple[list[int], int]] = []
    for i in order:
        width = width_of(lengths[i])
        if out and out[-1][1] == width and (len(out[-1][0]) + 1) * width <= batch_size * context_length:
            out[-1][0].append(i)
        else:
            out.append(([i], width))
    return out


def _extract(ctx, texts_by_class: dict[str, list[str]], context_length: int, desc: str,
             padding: str = "bucketed") -> PooledTexts:
    """Kept-token activations of each text, truncated to `context_length` tokens like SAEBench's
    tokenisation, attended without a padding mask (causal attention keeps the pads after a text out
    of its tokens), pooled as sums over zero-filled rows of `context_length` (SAEBench's order of
    float additions). "saebench" runs SAEBench's layout (every text padded to `context_length`);
    "bucketed" runs texts of similar length together, padded to a multiple of 8 (less model work:
    pads are computed and thrown away; the token rows of a forward stay about as many)."""
    tokenizer = ctx.model.tokenizer
    special = torch.tensor(sorted({getattr(tokenizer, f"{kind}_token_id", None)
                                   for kind in ("bos", "eos", "pad")} - {None}))
    tokens, offsets, positions = {}, {}, {}
    for name, texts in texts_by_class.items():
        encoded = tokenizer(texts, truncation=True, max_length=context_length)["input_ids"]
        counts = torch.tensor([int((~torch.isin(torch.tensor(ids), special)).sum()) for ids in encoded])
        if bool((counts == 0).any()):
            raise DataError(desc, f"class {name}: text {int(torch.nonzero(counts == 0)[0])} has no tokens to pool")
        kept: list = [None] * len(texts)
        for batch, width in tqdm(_batches([len(e) for e in encoded], ctx.batch_size, context_length, padding),
                                 desc=f"{desc} [{name}]", unit="batch", leave=False, disable=not ctx.show_progress):
            ids = torch.full((len(batch), width), int(tokenizer.pad_token_id or 0))
            for row, text in enumerate(batch):
                ids[row, :len(encoded[text])] = torch.tensor(encoded[text])
            with torch.no_grad():
                resid = ctx.model.residual(ctx.hookpoint, ids.to(ctx.model.device),
                                           torch.ones_like(ids).to(ctx.model.device)).float().cpu()
            for row, text in enumerate(batch):
                where = torch.nonzero(~torch.isin(ids[row, :len(encoded[text])], special)).flatten()
                kept[text] = (resid[row, where], where)
        tokens[name] = torch.cat([rows for rows, _ in kept])
        positions[name] = torch.cat([where for _, where in kept])
        offsets[name] = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
    return PooledTexts(tokens, offsets, positions, context_length)


def _cached_extract(ctx, texts_by_class: dict[str, list[str]], context_length: int, desc: str,
                    padding: str) -> PooledTexts:
    """`_extract`, kept on disk beside the hookpoint's activation cache when there is one (keyed by
    the texts, context length and padding), so another run or checkpoint there skips the model."""
    key = {"memo": "sparse-probing-texts/2", "context_length": context_length, "padding": padding,
           "texts_sha256": hashlib.sha256(json.dumps(texts_by_class).encode()).hexdigest()}

    def compute() -> dict[str, torch.Tensor]:
        pooled = _extract(ctx, texts_by_class, context_length, desc, padding)
        tensors = {f"{part}:{name}": getattr(pooled, part)[name] for name in texts_by_class
                   for part in ("tokens", "offsets", "positions")}
        return tensors

    tensors = disk_memo(ctx.activations, "sparse-probing-texts", key, compute)
    part = lambda kind: {name: tensors[f"{kind}:{name}"] for name in texts_by_class}  # noqa: E731
    return PooledTexts(part("tokens"), part("offsets"), part("positions"), context_length)


def _mean_metric(values: list[float]) -> Metric:
    if len(values) > 1:
        return Metric(statistics.mean(values), statistics.stdev(values) / len(values) ** 0.5)
    return Metric(values[0])


@register_task
class SparseProbingTask(Task):
    name = "sparse_probing"
    page_sections = (PageSection(40, "sae_bench.tasks.sparse_probing.page:render"),)
    version = "1"
    Config = SparseProbingConfig
    description = "SAEBench 0.6.0's k-sparse probing on its datasets (mean-pooled texts, top-k by mean difference)"
    random_sources = ("negative sampling and shuffling: torch.Generator(random_seed) per dataset, representation and k "
                      "(dense probes: the same, then their initialisation and epoch permutations)",
                      "class texts: pandas sample(random_state=random_seed) / random.Random(random_seed), SAEBench's draws",
                      "logistic regression: scikit-learn lbfgs (deterministic)")
    metrics = (
        MetricSpec("sae_top_1_test_accuracy", "higher", "mean over SAEBench's datasets of the mean over classes of the "
                   "held-out accuracy of a logistic probe on the 1 latent with the largest mean difference "
                   "(/DATASET: one dataset)", "fraction", 0.01, headline=61, parts=True, frontier=5),
        MetricSpec("sae_top_2_test_accuracy", "higher", "the same with the top 2 latents (/DATASET: one dataset)",
                   "fraction", 0.01, parts=True),
        MetricSpec("sae_top_5_test_accuracy", "higher", "the same with the top 5 latents (/DATASET: one dataset)",
                   "fraction", 0.01, parts=True),
        MetricSpec("sae_top_*_test_accuracy*", "higher", "the same with the top k latents (/DATASET: one dataset)",
                   "fraction", 0.01),
        MetricSpec("sae_test_accuracy", "higher", "with dense_probes: SAEBench's dense probe on every latent "
                   "(AdamW, lr 1e-2, batches of 250, at most 100 epochs; the best held-out accuracy, training "
                   "stopped after 10 epochs without a better one: chosen on the test set) (/DATASET: one dataset)",
                   "fraction", 0.01, parts=True),
        MetricSpec("llm_test_accuracy", "none", "with dense_probes: the same dense probe on every raw activation "
                   "dimension: a reference (/DATASET: one dataset)", "fraction", parts=True),
        MetricSpec("llm_top_*_test_accuracy*", "none", "the same probe on the top k raw activation dimensions: a "
                   "reference, not the SAE's score (/DATASET: one dataset)", "fraction"),
    )

    def skip_reason(self, sae, ctx) -> str | None:
        if ctx.is_pooled or ctx.hookpoint == "pooled_final_norm":
            return "SAEBench's sparse probing mean-pools per-token activations; a pooled hookpoint has no tokens"
        from sae_bench.models.loading import hub_offline

        if self.config.data_dir is None and not self.config.from_hub:
            return ("SAEBench's probing datasets: give local copies (--task-option sparse_probing.data_dir=FOLDER) or "
                    "--task-option sparse_probing.from_hub=true (downloads several GB)")
        if self.config.data_dir is None and hub_offline():
            return "SAEBench's probing datasets: no local copy (sparse_probing.data_dir) and the hub is offline"
        return None

    def _k_values(self) -> list[int]:
        ks = self.config.k_values
        ks = [ks] if isinstance(ks, int) else list(ks)
        if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
            raise InputError("--task-option sparse_probing.k_values", f"expected positive integers, got {ks!r}")
        return sorted(set(ks))

    def check_inputs(self, resources) -> None:
        self._k_values()
        if self.config.padding not in ("saebench", "bucketed"):
            raise InputError("--task-option sparse_probing.padding",
                             f"expected 'saebench' or 'bucketed', got {self.config.padding!r}")
        names = [self.config.datasets] if isinstance(self.config.datasets, str) else list(self.config.datasets)
        unknown = [name for name in names if name not in DATASETS]
        if not names or unknown:
            raise InputError("--task-option sparse_probing.datasets",
                             f"unknown dataset {unknown[0] if unknown else '(none)'!r}; SAEBench's: {', '.join(DATASETS)}")
        if self.config.data_dir is not None and not __import__("os").path.isdir(self.config.data_dir):
            raise InputError(self.config.data_dir, "sparse_probing data_dir is not a folder")

    def run(self, sae, ctx) -> TaskOutput:
        cfg = self.config
        ks = self._k_values()
        names = [cfg.datasets] if isinstance(cfg.datasets, str) else list(cfg.datasets)
        per_dataset: dict[str, dict] = {}
        scores: dict[str, list[float]] = {}
        counts = {"datasets": len(names), "classes": 0, "train_texts": 0, "test_texts": 0}
        for dataset in names:
            key = f"sparse_probing/{ctx.hookpoint}/{dataset}/{cfg.data_dir}/{cfg.probe_train_set_size}/" \
                  f"{cfg.probe_test_set_size}/{cfg.context_length}/{cfg.random_seed}/{cfg.padding}"
            splits = ctx.memo(key, lambda: self._dataset_activations(ctx, dataset))
            train, test = splits
            counts["classes"] += len(train.tokens)
            counts["train_texts"] += sum(len(o) - 1 for o in train.offsets.values())
            counts["test_texts"] += sum(len(o) - 1 for o in test.offsets.values())
            entry: dict = {}
            representations = {"llm": (train.raw_means(cfg.sae_batch_texts), test.raw_means(cfg.sae_batch_texts)),
                               "sae": (train.sae_means(sae, cfg.sae_batch_texts), test.sae_means(sae, cfg.sae_batch_texts))}
            for rep, (x_train, x_test) in representations.items():
                probes = [(f"{rep}_test_accuracy", None)] if cfg.dense_probes else []
                for name, k in probes + [(f"{rep}_top_{k}_test_accuracy", k) for k in ks]:
                    generator = torch.Generator().manual_seed(cfg.random_seed)
                    by_class = (dense_probe_accuracies(x_train, x_test, generator) if k is None
                                else k_sparse_accuracies(x_train, x_test, k, generator))
                    entry[name] = {"mean": statistics.mean(by_class.values()), "per_class": by_class}
                    scores.setdefault(name, []).append(entry[name]["mean"])
            per_dataset[short_name(dataset)] = entry
        metrics: dict[str, Metric] = {}
        for name, values in sorted(scores.items()):
            metrics[name] = _mean_metric(values)
            for dataset in names:
                metrics[f"{name}/{short_name(dataset)}"] = Metric(per_dataset[short_name(dataset)][name]["mean"])
        artifacts = {"protocol": PROTOCOL, "datasets": names, "data_dir": portable(cfg.data_dir) or "hub",
                     "pooling": "mean over non-BOS/pad/EOS tokens (SAE codes and raw activations)",
                     "per_dataset": per_dataset}
        return TaskOutput(metrics, counts, artifacts)

    def _dataset_activations(self, ctx, dataset: str):
        cfg = self.config
        train, test = load_dataset_classes(dataset, cfg.data_dir, cfg.probe_train_set_size, cfg.probe_test_set_size,
                                           cfg.random_seed, cfg.from_hub)
        for split, data in (("train", train), ("test", test)):
            small = [name for name, texts in data.items() if len(texts) < 2]
            if small:
                raise DataError(dataset, f"{split} class {small[0]!r} has {len(data[small[0]])} text(s): a probe needs "
                                         "at least 2 (raise probe_train_set_size / probe_test_set_size or the data)")
        return (_cached_extract(ctx, train, cfg.context_length, f"{short_name(dataset)} train", cfg.padding),
                _cached_extract(ctx, test, cfg.context_length, f"{short_name(dataset)} test", cfg.padding))
