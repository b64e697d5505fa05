"""Task `downstream_lm_eval`: lm-eval task accuracy, clean vs with the SAE spliced in.

Runs lm-evaluation-harness in-process (`lm_eval_bridge`) on the context's model twice:
clean (memoised per hookpoint and config: it does not depend on the checkpoint) and with
`sae.splice` replacing the residual at the hookpoint (non-BOS/pad/EOS positions). Default task:
the shipped local `sae_bench_continuation` (4-way: which ending continues this fixture text);
any lm-eval task name with an `acc` metric works for real models (`lm_eval_tasks` option).

Metrics, for one task: acc_clean, acc_spliced (stderr: lm-eval's acc_stderr) and
acc_delta = acc_spliced − acc_clean with the *paired* standard error sd_i(d_i)/√n over documents
(d_i = spliced − clean score of document i; the same documents are scored in both runs). With
several tasks, the same three per task as `acc_clean/<task>` …, and acc_clean/acc_spliced/acc_delta
are the unweighted mean over tasks with se = √(Σ se_t²)/n_tasks. Artifacts: per-document deltas.
Transcoders read their input site and replace the MLP output they predict.
Skipped for the pooled hookpoint (nothing to splice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sae_bench.tasks.downstream_lm_eval.lm_eval_bridge import DEFAULT_TASK
from sae_bench.core.registry import register_task
from sae_bench.core.task_api import Metric, MetricSpec, Task, TaskConfig, TaskOutput


@dataclass(frozen=True)
class DownstreamConfig(TaskConfig):
    positive = ("limit", "batch_size", "max_length")
    non_negative = ("num_fewshot",)
    lm_eval_tasks: tuple[str, ...] | str = (DEFAULT_TASK,)  # lm-eval task names (comma-separated string ok)
    include_path: str | None = None  # extra lm-eval task folder(s), os.pathsep-separated
    limit: int | float | None = None  # documents per task (lm-eval's limit)
    num_fewshot: int | None = None
    batch_size: int = 32
    max_length: int | None = None  # None: the model's own maximum

    def task_names(self) -> list[str]:
        names = self.lm_eval_tasks.split(",") if isinstance(self.lm_eval_tasks, str) else list(self.lm_eval_tasks)
        return [n.strip() for n in names if n.strip()]


def _paired_delta(clean: dict[int, float], spliced: dict[int, float]) -> tuple[float, float | None, list[float]]:
    docs = sorted(set(clean) & set(spliced))
    d = torch.tensor([spliced[i] - clean[i] for i in docs], dtype=torch.float64)
    if d.numel() == 0:
        return math.nan, None, []
    se = float(d.std(unbiased=True) / math.sqrt(d.numel())) if d.numel() > 1 else None
    return float(d.mean()), se, d.tolist()


def _combine(metrics: list[Metric]) -> Metric:
    value = sum(m.value for m in metrics) / len(metrics)
    if any(m.stderr is None for m in metrics):
        return Metric(value, None)
    return Metric(value, math.sqrt(sum(m.stderr**2 for m in metrics)) / len(metrics))


@register_task
class DownstreamLmEvalTask(Task):
    name = "downstream_lm_eval"
    runs_suffix = True
    version = "1"
    random_sources = ("lm-eval: random_seed, numpy_random_seed, torch_random_seed and fewshot_random_seed = seed",)
    Config = DownstreamConfig
    description = "lm-eval accuracy clean vs SAE-spliced (default: local topic multiple choice)"
    metrics = (
        MetricSpec("acc_spliced", "higher", "lm-eval accuracy with the SAE spliced in (/TASK: one lm-eval task)",
                   "fraction", 0.01, headline=60, parts=True),
        MetricSpec("acc_delta", "higher", "acc_spliced − acc_clean, paired over documents (/TASK: one lm-eval task)",
                   "fraction", 0.01, headline=61, parts=True),
        MetricSpec("acc_clean", "none", "lm-eval accuracy of the unmodified model, a property of the model "
                                        "(/TASK: one lm-eval task)", "fraction", parts=True),
    )

    def skip_reason(self, sae, ctx) -> str | None:
        if ctx.is_pooled:
            return "downstream accuracy needs a residual hookpoint to splice; the pooled final-norm source has none"
        return None

    def run(self, sae, ctx) -> TaskOutput:
        import os

        from sae_bench.tasks.downstream_lm_eval import lm_eval_bridge as downstream

        cfg = self.config
        names = cfg.task_names()
        paths = [p for p in (cfg.include_path or "").split(os.pathsep) if p]
        lm = ctx.memo(f"downstream_lm_eval/lm/{cfg.batch_size}/{cfg.max_length}",
                      lambda: downstream.make_lm(ctx.model, batch_size=cfg.batch_size, max_length=cfg.max_length))
        run = lambda: downstream.evaluate_tasks(lm, names, include_paths=paths, limit=cfg.limit,  # noqa: E731
                                                num_fewshot=cfg.num_fewshot, seed=ctx.seed, quiet=not ctx.show_progress)
        clean = ctx.memo(f"downstream_lm_eval/clean/{cfg.config_hash()}", run)
        with downstream.sae_splice(ctx.model, ctx.hookpoint, sae, ctx.output_hookpoint):
            spliced = run()
        metrics: dict[str, Metric] = {}
        per_doc: dict[str, list[float]] = {}
        documents = 0
        triples = []
        for name in names:
            c, s = clean[name], spliced[name]
            delta, delta_se, deltas = _paired_delta(c.per_doc, s.per_doc)
            triple = (Metric(c.acc, c.acc_stderr), Metric(s.acc, s.acc_stderr),
                      Metric(delta, delta_se) if deltas else Metric.null("no documents scored"))
            triples.append(triple)
            per_doc[name] = deltas
            documents += len(deltas)
            if len(names) > 1:
                for key, metric in zip(("acc_clean", "acc_spliced", "acc_delta"), triple):
                    metrics[f"{key}/{name}"] = metric
        if len(names) == 1:
            metrics.update(zip(("acc_clean", "acc_spliced", "acc_delta"), triples[0]))
        else:
            for j, key in enumerate(("acc_clean", "acc_spliced", "acc_delta")):
                parts = [t[j] for t in triples]
                metrics[key] = (_combine(parts) if all(p.value is not None for p in parts)
                                else Metric.null("a task scored no documents"))
        return TaskOutput(
            metrics=metrics,
            counts={"documents": documents, "tasks": len(names)},
            artifacts={"per_document": {"acc_delta": per_doc}, "lm_eval_tasks": names},
            notes=["acc_delta stderr is paired over documents; acc_clean/acc_spliced stderr are lm-eval's",
                   "spliced at non-BOS/pad/EOS positions only"],
        )
