"""Task `autointerp`: can a judge name what a latent does, and predict where it fires from the name?

For a seeded sample of live latents (firing on at least `min_firing` kept tokens of the eval
corpus; `n_latents`, default 1000 as SAEBench) the task gathers contexts from the activations the
other tasks share (`examples.py`), asks an explainer for a one-line explanation and scores it with
a judge (`scorers.py`): SAEBench's autointerp score, delphi's detection and fuzzing (balanced
accuracy and AUROC). Judges (`judges.py`, option `judge`; without one the task skips with that reason): `local` (a causal LM in-process: the evaluated model,
or `judge_model` = any folder, hub id or .gguf our loader reads), `openai` (any OpenAI-compatible
endpoint at `base_url`, model `judge_model`, key from the environment variable `api_key_env`),
`oracle` (token-match rule, for closed-form tests). Every judge call goes through the on-disk
response cache (`cache.py`, folder `$SAE_BENCH_JUDGE_CACHE`, default ~/.cache/sae-bench/judge-cache),
so a re-run costs no call and gives the same record except timings, `created_at` and
`artifacts.judge_usage.calls_made/calls_cached`. Per-latent explanations, scores, failures and top
contexts are in `artifacts.per_latent`. This task never writes files other than cache entries.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields

import torch
from sae_bench.core.progress import tqdm

from sae_bench.core.errors import InputError
from sae_bench.core.registry import register_task
from sae_bench.core.task_api import Metric, MetricSpec, Task, TaskConfig, TaskOutput
from sae_bench.leaderboard_build.views import PageSection
from sae_bench.tasks.autointerp import cache as response_cache
from sae_bench.tasks.autointerp.examples import (
    SamplingSettings, choose_latents, live_latents, sample_latent, valid_centres,
)
from sae_bench.tasks.autointerp.judges import LocalJudge, OpenAIJudge, OracleJudge
from sae_bench.tasks.autointerp.prompts import delphi_v1, saebench_v1
from sae_bench.tasks.autointerp.scorers import SCORE_NAMES, run_protocol
from sae_bench.tasks.autointerp.scores import mean_and_stderr
from sae_bench.tasks.maxact_repro.encode import feature_activations

JUDGES = ("local", "openai", "oracle")
NO_JUDGE = "no judge chosen: set --task-option autointerp.judge=local, openai or oracle"


@dataclass(frozen=True)
class AutointerpConfig(TaskConfig):
    positive = ("n_latents", "buffer", "n_top_explain", "n_top_score", "examples_per_prompt", "judge_batch_size",
                "max_concurrency", "timeout_s")
    non_negative = ("min_firing", "n_iw_explain", "n_iw_score", "n_random_score", "n_quantiles", "max_retries")
    unit_interval = ("act_threshold_frac",)
    # local | openai | oracle. None (the default): the task skips with a reason, so a plain `sae-bench run`
    # of every task never starts a model judge nobody asked for.
    judge: str | None = None
    judge_model: str | None = None  # local: model folder/hub id/.gguf (None: the evaluated model); openai: model name
    base_url: str | None = None  # openai: the endpoint, e.g. http://127.0.0.1:8080/v1 (None: api.openai.com)
    api_key_env: str = "OPENAI_API_KEY"  # openai: the environment variable holding the key (never recorded)
    n_latents: int = 1000  # SAEBench's default sample size
    min_firing: int = 15  # live: fires on at least this many kept tokens (SAEBench's dead_latent_threshold)
    buffer: int = 10
    n_top_explain: int = 10
    n_iw_explain: int = 5
    n_top_score: int = 2
    n_iw_score: int = 2
    n_random_score: int = 10
    n_quantiles: int = 4
    act_threshold_frac: float = 0.01
    examples_per_prompt: int = 5  # delphi scorers: contexts per judge prompt
    judge_batch_size: int = 8  # local judge: prompts per generate call (no effect on answers)
    max_concurrency: int = 8  # openai judge: requests in flight
    timeout_s: float = 60.0  # openai judge: per request
    max_retries: int = 2  # openai judge: the client's retries (429/5xx/timeouts) before a call counts as failed
    use_cache: bool = True

    def sampling(self) -> SamplingSettings:
        names = {f.name for f in fields(SamplingSettings)}
        return SamplingSettings(**{n: getattr(self, n) for n in names})


def _spec(name, definition, headline=None, direction="higher", min_effect=0.02, frontier=None):
    return MetricSpec(name, direction, definition, "fraction", min_effect, headline=headline, frontier=frontier)


@register_task
class AutointerpTask(Task):
    name = "autointerp"
    page_sections = (PageSection(50, "sae_bench.tasks.autointerp.page:section"),)
    version = "1"
    Config = AutointerpConfig
    description = "automated interpretability: explain sampled latents with a judge, score detection/fuzzing/SAEBench"
    random_sources = ("latent sample: torch.randperm seeded by the run seed",
                      "contexts per latent: torch.Generator seeded by (seed, latent)",
                      "shuffles and demo numbers per latent: random.Random(seed*7919 + latent)",
                      "judge: deterministic decoding (greedy / temperature 0, fixed seed)")
    metrics = (
        _spec("autointerp_score", "SAEBench: mean over latents of (1/n) Σᵢ [i predicted] == activeᵢ on shuffled held-out contexts", 70,
              frontier=6),
        _spec("detection_balanced_accuracy", "delphi detection: mean over latents of (TPR + TNR)/2, activating vs silent contexts", 71),
        _spec("detection_auroc", "delphi detection: mean over latents of AUROC of the judge's P(\"1\")"),
        _spec("fuzzing_balanced_accuracy", "delphi fuzzing: mean over latents of (TPR + TNR)/2, correctly vs wrongly marked tokens", 72),
        _spec("fuzzing_auroc", "delphi fuzzing: mean over latents of AUROC of the judge's P(\"1\")"),
        _spec("judge_failure_fraction", "judge prompts that errored or did not parse / prompts sent", direction="lower",
              min_effect=0.01),
    )

    def skip_reason(self, sae, ctx):
        if self.config.judge is None:
            return NO_JUDGE
        if ctx.is_pooled:
            return "autointerp needs per-token activations; the pooled hookpoint has one vector per text"
        return None

    def check_inputs(self, resources) -> None:
        cfg = self.config
        if cfg.judge is not None and cfg.judge not in JUDGES:
            raise InputError(f"--task-option autointerp.judge={cfg.judge}", f"unknown judge; choose one of {', '.join(JUDGES)}")
        if cfg.judge == "openai" and not cfg.judge_model:
            raise InputError("--task-option autointerp.judge_model", "the openai judge needs a model name")
        if cfg.judge == "openai":
            try:
                import openai  # noqa: F401
            except ImportError:
                raise InputError("--task-option autointerp.judge=openai",
                                 "needs the openai package: pip install 'gemma-sae-bench[judge]'") from None

    # ------------------------------------------------------------------ judge
    def _judge(self, ctx):
        cfg = self.config
        if cfg.judge == "oracle":
            return OracleJudge()
        if cfg.judge == "openai":
            return OpenAIJudge(cfg.base_url, cfg.judge_model, api_key_env=cfg.api_key_env, timeout_s=cfg.timeout_s,
                               max_retries=cfg.max_retries, max_concurrency=cfg.max_concurrency, seed=ctx.seed)
        if cfg.judge_model is None:
            return LocalJudge(ctx.model.model, ctx.model.tokenizer, model_id=ctx.model.model_id,
                              batch_size=cfg.judge_batch_size, show_progress=ctx.show_progress)
        from sae_bench.models.adapter import ModelAdapter

        adapter = ctx.memo(f"autointerp/judge/{cfg.judge_model}", lambda: ModelAdapter.load(cfg.judge_model))
        return LocalJudge(adapter.model, adapter.tokenizer, model_id=adapter.model_id,
                          batch_size=cfg.judge_batch_size, show_progress=ctx.show_progress)

    # ------------------------------------------------------------------ activations
    @staticmethod
    @torch.no_grad()
    def _firing_counts(sae, ctx) -> torch.Tensor:
        counts = torch.zeros(sae.d_sae, dtype=torch.int64)
        for batch in ctx.activations.batches(2048):
            x_in, _ = sae.preprocess(batch.x.to(device=sae.device, dtype=sae.dtype))
            codes = sae.encode(x_in)
            if codes.indices is None:
                counts += (codes.values > 0).sum(dim=0).cpu()
            else:
                idx = codes.indices[codes.values > 0].cpu()
                counts += torch.bincount(idx.flatten(), minlength=sae.d_sae)
        return counts

    @staticmethod
    def _dense(sae, ctx, latents: list[int]) -> torch.Tensor:
        """[m, N, T] activations of `latents` at every kept position (0 elsewhere)."""
        corpus = ctx.corpus
        out = torch.zeros(len(latents), corpus.n_sequences, corpus.input_ids.shape[1])
        feats = torch.tensor(latents, dtype=torch.int64)
        for batch in ctx.activations.batches(2048):
            acts = feature_activations(sae, batch.x, feats)  # [n, m]
            out[:, batch.sequence, batch.position] = acts.T
        return out

    @staticmethod
    def _token_text(ctx) -> list[list[str]]:
        tok = ctx.model.tokenizer
        ids = ctx.corpus.input_ids
        text = {i: tok.decode([i], skip_special_tokens=True) for i in torch.unique(ids).tolist()}
        return [[text[i] for i in row] for row in ids.tolist()]

    # ------------------------------------------------------------------ run
    def gather(self, sae, ctx):
        """(live latents, sampled latents, their contexts, {latent: why skipped}) — no judge involved."""
        cfg, settings = self.config, self.config.sampling()
        live = live_latents(self._firing_counts(sae, ctx), cfg.min_firing)
        latents = choose_latents(live, cfg.n_latents, ctx.seed)
        dense = self._dense(sae, ctx, latents)
        centres = valid_centres(ctx.corpus.attention_mask, ctx.corpus.keep_mask, cfg.buffer)
        token_text = self._token_text(ctx)
        examples, skipped = [], {}
        for j, latent in enumerate(tqdm(latents, desc="autointerp: contexts", disable=not ctx.show_progress, leave=False)):
            got = sample_latent(latent, dense[j], centres, token_text, settings, ctx.seed)
            if isinstance(got, str):
                skipped[str(latent)] = got
            else:
                examples.append(got)
        return live, latents, examples, skipped

    def run(self, sae, ctx) -> TaskOutput:
        self.check_inputs(ctx.resources)
        if self.config.judge is None:  # the runner asks skip_reason first; a direct caller gets a clear error
            raise InputError("--task-option autointerp.judge", NO_JUDGE)
        cfg = self.config
        live, latents, examples, skipped = self.gather(sae, ctx)
        judge = response_cache.CachingJudge(
            self._judge(ctx), response_cache.ResponseCache(response_cache.default_folder()) if cfg.use_cache else None)
        results = run_protocol(examples, judge, seed=ctx.seed, examples_per_prompt=cfg.examples_per_prompt,
                               n_correct=cfg.n_top_score + cfg.n_iw_score)
        return self._output(results, examples, skipped, live, latents, judge)

    def _output(self, results, examples, skipped, live, latents, judge) -> TaskOutput:
        metrics = {}
        for name in SCORE_NAMES:
            mean, se, n = mean_and_stderr([r.scores.get(name) for r in results])
            metrics[name] = Metric(mean, se) if mean is not None else Metric.null(self._why_null(name, results, latents))
        sent = sum(sum(r.prompts.values()) for r in results)
        failed = sum(sum(r.failures.values()) for r in results)
        metrics["judge_failure_fraction"] = (Metric(failed / sent) if sent else
                                             Metric.null("no judge prompt was sent: no latent had enough contexts"))
        usage = judge.usage.to_json()
        n = max(len(results), 1)
        examples_blob = json.dumps([[e.latent, [c.to_json() for c in e.explain + e.score_active + e.score_random
                                                 + e.quantile + e.nonactive]] for e in examples], sort_keys=True)
        notes = []
        if failed:
            notes.append(f"{failed} of {sent} judge prompts errored or did not parse (counted per latent in "
                         "per_latent[].failures, their examples left unscored)")
        if skipped:
            notes.append(f"{len(skipped)} sampled latents had too few separate firing contexts and were not scored")
        if len(live) < self.config.n_latents:
            notes.append(f"only {len(live)} live latents (n_latents={self.config.n_latents}): all of them sampled")
        return TaskOutput(
            metrics=metrics,
            counts={"live_latents": len(live), "latents_sampled": len(latents), "latents_scored": len(results),
                    "judge_prompts": sent, "judge_failures": failed},
            artifacts={
                "judge": {"kind": self.config.judge, "identity": judge.identity,
                          "prompt_versions": {"explain": saebench_v1.VERSION, "autointerp_score": saebench_v1.VERSION,
                                              "detection": delphi_v1.VERSION, "fuzzing": delphi_v1.VERSION}},
                "judge_usage": {**usage, "tokens_per_latent": round((usage["prompt_tokens"] + usage["completion_tokens"]) / n, 1)},
                "examples_sha256": hashlib.sha256(examples_blob.encode()).hexdigest(),
                "latents": latents,
                "skipped": skipped,
                "per_latent": [r.to_json() for r in results],
            },
            notes=notes,
        )

    @staticmethod
    def _why_null(name, results, latents) -> str:
        if not latents:
            return "no live latent to sample"
        if not results:
            return "no sampled latent had enough separate firing contexts"
        if name.endswith("auroc"):
            return "the judge gave no token probabilities (or every prompt failed), so no AUROC"
        return "every judge prompt for this score errored or did not parse"
