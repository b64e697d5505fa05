"""Task `sparsity`: how sparse the SAE's codes are on the evaluated tokens.

Metrics (definitions in `sae_bench.metrics.sparsity`): l0, l1 (sequence-clustered standard
errors), dead_fraction, dense_fraction (sequence-bootstrap standard errors seeded from
`ctx.generator`). Artifacts: the log10 firing-frequency histogram (bin edges, counts, dead count)
and per-sequence l0/l1. `counts.tokens` is the number of vectors the fractions rest on: a dead
fraction is meaningless without it.

The vectors are those of `ctx.activations`, which already excludes BOS, pad and EOS positions
(the corpus keep mask); for the pooled source each "token" is one text. TopK codes stay sparse.
"""

from __future__ import annotations

from dataclasses import dataclass

from sae_bench.metrics.sparsity import DEFAULT_DENSE_THRESHOLD, SparsityAccumulator
from sae_bench.core.registry import register_task
from sae_bench.core.task_api import MetricSpec, Task, TaskConfig, TaskOutput
from sae_bench.leaderboard_build.views import RowPlot

RNG_OFFSET = 7_001  # this task's stream of ctx.generator (the benchmarks' reference reuses it)


@dataclass(frozen=True)
class SparsityConfig(TaskConfig):
    positive = ("bootstrap_replicates", "histogram_bins_per_decade", "batch_tokens")
    unit_interval = ("dense_threshold",)
    dense_threshold: float = DEFAULT_DENSE_THRESHOLD  # a latent is dense if it fires on more than this share
    bootstrap_replicates: int = 200  # sequence-bootstrap replicates for dead/dense standard errors
    histogram_bins_per_decade: int = 4
    # vectors per preprocessing call; encodes are split by sae.row_chunks (bounded memory)
    batch_tokens: int = 4096


@register_task
class SparsityTask(Task):
    name = "sparsity"
    row_plots = (RowPlot(10, "histogram", "firing", "Firing frequency of every latent on the evaluated tokens (log10 "
                         "bins; dead latents, which never fired, in their own bar).",
                         "sae_bench.tasks.sparsity.plots:draw_histogram"),)
    version = "1"
    random_sources = ("bootstrap of dead/dense fractions: torch.Generator(seed + 7001)",)
    Config = SparsityConfig
    description = "l0, l1, dead and dense latent fractions, firing-frequency histogram"
    metrics = (
        MetricSpec("l0", "none", "(1/T) Σ_t #{j : f_tj ≠ 0}: active latents per vector (a design choice)",
                   "latents", headline=20, depth=4),
        MetricSpec("l1", "none", "(1/T) Σ_t Σ_j |f_tj|: code mass per vector (a design choice)", "code units"),
        MetricSpec("dead_fraction", "lower", "share of latents that never fire on the evaluated vectors",
                   "fraction", 0.01, headline=21),
        MetricSpec("dense_fraction", "lower", "share of latents firing on more than `dense_threshold` of the vectors",
                   "fraction", 0.01),
    )

    def run(self, sae, ctx) -> TaskOutput:
        cfg = self.config
        acc = SparsityAccumulator(ctx.corpus.n_sequences, sae.d_sae, dense_threshold=cfg.dense_threshold)
        for batch in ctx.activations.batches(cfg.batch_tokens, device=sae.device):
            x_in, _ = sae.preprocess(batch.x.to(sae.dtype))
            for rows in sae.row_chunks(len(x_in)):
                acc.update(sae.encode(x_in[rows]), batch.sequence[rows])
        metrics = acc.finalize(replicates=cfg.bootstrap_replicates, generator=ctx.generator(RNG_OFFSET))
        notes = ["dead/dense standard errors: sequence bootstrap, "
                 f"{cfg.bootstrap_replicates} replicates, seed {ctx.seed}+{RNG_OFFSET}"]
        if ctx.is_pooled:
            notes.append("pooled source: every 'token' is one text's pooled vector")
        if sae.metadata.preprocessing.standardise == "batch":
            notes.append("batch-standardised preprocessing depends on batch_tokens")
        return TaskOutput(
            metrics=metrics,
            counts={"tokens": acc.n_vectors, "sequences": int((acc.tokens > 0).sum()), "latents": sae.d_sae},
            artifacts={"firing_histogram": acc.histogram(cfg.histogram_bins_per_decade),
                       "per_sequence": acc.per_sequence(), "per_sequence_terms": acc.per_sequence_terms()},
            notes=notes,
        )
