"""Task `maxact_repro`: do a checkpoint's stored max-activation examples reproduce when re-encoded?

Given a parquet in gemma-loupe's schema (found by the rule in `sae_bench.tasks.maxact_repro.locate`: task
option `parquet`, run resource `maxact`, `maxact.parquet` beside the weights, or the bundled
fixtures by checkpoint sha256), every stored context is re-encoded (deduplicated across features,
batched) and scored: peak_position_agreement, peak_relative_error, spearman (per-token rank
correlation) and reproduced_fraction (features whose examples mostly reproduce within tol_rel and
tol_rho), each over features with its standard error; definitions in `sae_bench.metrics.maxact`.

Files with document ids and offsets (our own `sae-bench maxact build`) re-run the exact document
prefix from the run's corpus (or the `corpus` option) and reproduce up to float rounding. Files
without them (gemma-loupe's) can only re-run the stored window alone; those windows are cut from
longer documents, so activations change and the notes say so. Pooled hookpoints are skipped: the
examples are per token.

The task's whole story lives in this folder: `schema` reads and writes the parquet files, `tokens`
maps stored token strings back to ids, `encode` gives per-token feature activations, `build`
produces a file from a corpus (`sae-bench maxact build`), `repro` re-encodes stored contexts and
scores them, `locate` finds a checkpoint's file. Nothing here writes result records (the runner does).
"""

from __future__ import annotations

from dataclasses import dataclass

from sae_bench.core.errors import InputError
from sae_bench.checkpoints.safe_tensors import sha256_file
from sae_bench.tasks.maxact_repro.locate import find_parquet, metadata_mismatch
from sae_bench.tasks.maxact_repro.repro import ReproSettings, corpus_mismatch, reproduce
from sae_bench.tasks.maxact_repro.schema import read_maxact
from sae_bench.metrics.maxact import Tolerances
from sae_bench.records.provenance import portable
from sae_bench.core.registry import register_task
from sae_bench.core.task_api import MetricSpec, Task, TaskConfig, TaskOutput
from sae_bench.leaderboard_build.views import PageSection

NO_PARQUET = ("no max-activation parquet for this checkpoint (looked for: option maxact_repro.parquet, resource "
              "'maxact', maxact.parquet beside the weights, bundled fixtures/maxact matched by sha256)")


@dataclass(frozen=True)
class MaxActReproConfig(TaskConfig):
    positive = ("max_features", "tol_rel")
    unit_interval = ("tol_rho", "min_example_fraction")
    parquet: str | None = None  # explicit file (used even if it names another checkpoint)
    corpus: str | None = None  # the build corpus, for exact re-runs when the run's corpus differs
    corpus_column: str = "text"
    # The N lowest-numbered features of the file (None: all). gemma-loupe's layer files hold 49,152
    # features x 20 examples; 1024 features keep a run to ~20k contexts.
    max_features: int | None = 1024
    tol_rel: float = 0.1
    tol_rho: float = 0.7
    min_example_fraction: float = 0.5


@register_task
class MaxActReproTask(Task):
    name = "maxact_repro"
    page_sections = (PageSection(20, "sae_bench.tasks.maxact_repro.page:render"),)
    commands = {"maxact": "sae_bench.tasks.maxact_repro.command"}
    version = "1"
    Config = MaxActReproConfig
    description = "re-encode stored max-activation contexts: peak agreement, peak rel. error, Spearman, reproduced"
    metrics = (
        MetricSpec("reproduced_fraction", "higher",
                   "share of features whose stored peaks re-encode within tolerance (peak, relative error, Spearman)",
                   "fraction", 0.02, headline=50),
        MetricSpec("examples_reproduced_fraction", "higher", "share of stored examples reproduced within tolerance",
                   "fraction", 0.02),
        MetricSpec("peak_position_agreement", "higher", "share of examples whose re-encoded peak is at the stored position",
                   "fraction", 0.02),
        MetricSpec("peak_relative_error", "lower", "mean |re-encoded − stored peak| / |stored peak|", "fraction", 0.02),
        MetricSpec("spearman", "higher", "mean Spearman correlation of re-encoded and stored context activations",
                   "correlation", 0.02),
    )

    def _locate(self, sae, ctx):
        return find_parquet(sae, ctx.hookpoint, explicit=self.config.parquet, resources=ctx.resources)

    def skip_reason(self, sae, ctx) -> str | None:
        if ctx.is_pooled:
            return ("max-activation examples are per token; the pooled final-norm hookpoint has one vector per "
                    "text, so there is nothing to re-encode")
        return None if self._locate(sae, ctx) is not None else NO_PARQUET

    def _check_config(self) -> Tolerances:
        cfg = self.config
        if cfg.max_features is not None and cfg.max_features < 1:
            raise InputError("--task-option maxact_repro.max_features", "must be at least 1")
        if cfg.tol_rel < 0 or not -1 <= cfg.tol_rho <= 1 or not 0 < cfg.min_example_fraction <= 1:
            raise InputError("--task-option maxact_repro", "need tol_rel >= 0, -1 <= tol_rho <= 1 and "
                                                           "0 < min_example_fraction <= 1")
        return Tolerances(cfg.tol_rel, cfg.tol_rho, cfg.min_example_fraction)

    def check_inputs(self, resources) -> None:
        """Tolerances, and an explicit parquet read in full (schema and rows) before any work."""
        self._check_config()
        if self.config.parquet:
            read_maxact(self.config.parquet, max_features=self.config.max_features)

    def _corpus(self, table, ctx):
        if corpus_mismatch(table, ctx.corpus) is None or not self.config.corpus or not table.has_offsets:
            return ctx.corpus
        from sae_bench.inputs.corpus import load_corpus

        seq_len = int(table.metadata.get("seq_len") or ctx.corpus.seq_len)
        key = f"maxact_repro/corpus/{self.config.corpus}/{self.config.corpus_column}/{seq_len}"
        return ctx.memo(key, lambda: load_corpus(self.config.corpus, ctx.model.tokenizer, seq_len=seq_len,
                                                 column=self.config.corpus_column))

    def run(self, sae, ctx) -> TaskOutput:
        tolerances = self._check_config()
        located = self._locate(sae, ctx)
        if located is None:  # the runner asks skip_reason first; a direct caller gets a clear error
            raise InputError(f"{sae.metadata.checkpoint_id}@{ctx.hookpoint}", NO_PARQUET)
        table = read_maxact(located.path, max_features=self.config.max_features)
        result = reproduce(table, sae, ctx.model, ctx.hookpoint, corpus=self._corpus(table, ctx),
                           settings=ReproSettings(tolerances, batch_size=ctx.batch_size,
                                                  show_progress=ctx.show_progress))
        notes = list(result.notes)
        mismatch = metadata_mismatch(located.metadata, sae.metadata.weights_sha256, ctx.hookpoint)
        if mismatch:
            notes.insert(0, f"the parquet was {mismatch}: it describes another SAE, so low reproduction is expected")
        elif not located.metadata.get("checkpoint_sha256"):
            notes.insert(0, "the parquet records no checkpoint sha256; it is assumed to describe this checkpoint")
        if self.config.max_features is not None and table.n_features_in_file > len(table.features()):
            notes.append(f"scored the {len(table.features())} lowest-numbered of the file's "
                         f"{table.n_features_in_file} features (max_features)")
        return TaskOutput(
            metrics=result.metrics,
            counts=result.counts,
            artifacts={
                "parquet": {"path": portable(located.path), "sha256": sha256_file(located.path), "found_by": located.how,
                            "metadata": located.metadata},
                "mode": result.mode,
                "tolerances": {"tol_rel": tolerances.tol_rel, "tol_rho": tolerances.tol_rho,
                               "min_example_fraction": tolerances.min_example_fraction},
                "per_feature": [f.to_json() for f in result.features],
                "unmappable": result.unmappable,
            },
            notes=notes,
        )
