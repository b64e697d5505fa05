"""Task `reconstruction`: how well the SAE reproduces the activations it encodes.

Metrics (definitions in `sae_bench.metrics.reconstruction`): mse, fvu, explained_variance,
cossim, l2_ratio, relative_reconstruction_bias, each with a sequence-clustered standard error.
Measured in the SAE's input space (after its preprocessing, e.g. ErnOS's L2 + standardise).
Transcoders: x_hat (from the input site) is compared with the output site's activations, the
MLP's output it predicts (`ctx.target_activations`, same order as the inputs); the record says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from sae_bench.metrics.reconstruction import ReconstructionAccumulator
from sae_bench.core.registry import register_task
from sae_bench.core.task_api import MetricSpec, Task, TaskConfig, TaskOutput


@dataclass(frozen=True)
class ReconstructionConfig(TaskConfig):
    positive = ("batch_tokens",)
    # vectors per preprocessing call; encodes are split by sae.row_chunks (bounded memory)
    batch_tokens: int = 4096


@register_task
class ReconstructionTask(Task):
    name = "reconstruction"
    version = "1"
    Config = ReconstructionConfig
    description = "mse, fvu, explained variance (about the mean), cosine, norm ratio, bias"
    metrics = (
        MetricSpec("fvu", "lower", "Σ‖x − x̂‖² / Σ‖x − μ‖²: residual variance over variance about the mean",
                   "fraction", 0.01, headline=10, ranking=2, frontier=1, depth=1),
        MetricSpec("explained_variance", "higher", "1 − fvu (variance about the mean, never about 0)",
                   "fraction", 0.01, ranking=3),
        MetricSpec("mse", "lower", "(1/T) Σ_t ‖x_t − x̂_t‖² / d: mean squared error per dimension",
                   "activation units²", 0.05, relative=True),
        MetricSpec("cossim", "higher", "(1/T) Σ_t cos(x_t, x̂_t)", "cosine", 0.01, headline=11),
        MetricSpec("l2_ratio", "none", "(1/T) Σ_t ‖x̂_t‖ / ‖x_t‖ (ideal 1, not an extreme)", "ratio"),
        MetricSpec("relative_reconstruction_bias", "none", "Σ‖x̂‖² / Σ x·x̂ (ideal 1, not an extreme)", "ratio"),
    )

    def run(self, sae, ctx) -> TaskOutput:
        size = self.config.batch_tokens
        acc = ReconstructionAccumulator(ctx.corpus.n_sequences, sae.d_in)
        inputs = ctx.activations.batches(size, device=sae.device)
        targets = ctx.splice_activations.batches(size, device=sae.device) if sae.is_transcoder else None
        for batch in inputs:
            x_in, _ = sae.preprocess(batch.x.to(sae.dtype))
            target = next(targets).x.to(sae.dtype) if targets is not None else x_in
            for rows in sae.row_chunks(len(x_in)):
                x_hat = sae.decode(sae.encode(x_in[rows]), x_in[rows])
                acc.update(target[rows], x_hat, batch.sequence[rows])
        notes = []
        if sae.metadata.preprocessing.standardise == "batch":
            notes.append("batch-standardised preprocessing depends on batch_tokens")
        if sae.is_transcoder:
            notes.append(f"transcoder: its output (from {ctx.hookpoint}) is compared with the activations at "
                         f"{ctx.splice_hookpoint}, the MLP output it predicts")
        return TaskOutput(
            metrics=acc.finalize(),
            counts={"tokens": int(acc.tokens.sum()), "sequences": int((acc.tokens > 0).sum())},
            artifacts={"per_sequence": acc.per_sequence(), "per_sequence_terms": acc.per_sequence_terms()},
            notes=notes,
        )
