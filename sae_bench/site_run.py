"""One site (hookpoint) of a run: every task of every checkpoint evaluated there, sharing one
EvalContext, so the model's activations at that site are extracted once.

Used by `sae_bench.runner.evaluate` and by the benchmarks (which time exactly this loop). Never
writes files: outputs go to the `emit` callback (the runner's RecordSink).
"""

from __future__ import annotations

import time
import types
from collections import OrderedDict
from typing import TYPE_CHECKING, Callable

import torch

from sae_bench.activations import ActivationSource
from sae_bench.context import EvalContext, TokenizedCorpus
from sae_bench.task_api import Task

if TYPE_CHECKING:  # pragma: no cover
    from sae_bench.runner import CheckpointSpec, RunConfig


def site_context(config: RunConfig, model, corpus: TokenizedCorpus, device: str, hookpoint: str,
                 output_hookpoint: str | None = None) -> EvalContext:
    """The EvalContext every task and checkpoint at one site shares (activations extracted once)."""
    def source_at(site: str) -> ActivationSource:
        return ActivationSource(model, site, corpus, cache_dir=config.cache_dir, batch_size=config.batch_size,
                                show_progress=config.show_progress)

    return EvalContext(model=model, hookpoint=hookpoint, corpus=corpus, activations=source_at(hookpoint),
                       output_hookpoint=output_hookpoint,
                       target_activations=source_at(output_hookpoint) if output_hookpoint else None,
                       device=torch.device(device), seed=config.seed, resources=dict(config.resources),
                       batch_size=config.batch_size, show_progress=config.show_progress)


Emit = Callable[..., None]  # emit(task, output, sae, spec, hookpoint, seconds)


class SiteRun:
    """The tasks of every checkpoint at one site, sharing one EvalContext. `add` runs a checkpoint's
    tasks (or, for two-step tasks, `Task.shares_work`, prepares them); `finish` completes the
    prepared ones together. Each output goes to `emit(task, output, sae, spec, hookpoint, seconds)`;
    tasks that do not apply are listed in `skipped` as (checkpoint, hookpoint, task, reason)."""

    def __init__(self, ctx: EvalContext, emit: Emit, skipped: list | None = None, bar=None):
        self.ctx, self.emit = ctx, emit
        self.bar = bar  # the run's one progress bar (tqdm): named after the checkpoint x task, a step each
        self.skipped = skipped if skipped is not None else []
        self.held: "OrderedDict[str, tuple[Task, list]]" = OrderedDict()

    def add(self, sae, spec: CheckpointSpec, tasks: list[Task]) -> None:
        ctx = self.ctx
        for task in tasks:
            self._describe(spec, task)
            reason = task.skip_reason(sae, ctx)
            if reason:
                self.skipped.append((spec.display_id, ctx.hookpoint, task.name, reason))
                self._step()
                continue
            torch.manual_seed(ctx.seed)
            start = time.perf_counter()
            if not task.shares_work:
                self.emit(task, task.run(sae, ctx), sae, spec, ctx.hookpoint, time.perf_counter() - start)
                self._step()
                continue
            # only the metadata is kept: the SAE itself is released before the next checkpoint loads
            state = task.prepare(sae, ctx)
            self.held.setdefault(task.name, (task, []))[1].append(
                (spec, types.SimpleNamespace(metadata=sae.metadata), state, time.perf_counter() - start))
            if self._held_bytes(task) > task.max_pending_bytes:
                self._finish(task)

    def _describe(self, spec: CheckpointSpec, task: Task) -> None:
        if self.bar is not None:
            self.bar.set_description(f"{spec.display_id} @ {self.ctx.hookpoint} × {task.name}")

    def _step(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def finish(self) -> None:
        for task, _ in list(self.held.values()):
            self._finish(task)

    def _held_bytes(self, task: Task) -> int:
        return sum(int(getattr(state, "nbytes", 0)) for _, _, state, _ in self.held.get(task.name, (task, []))[1])

    def _finish(self, task: Task) -> None:
        _, items = self.held.pop(task.name, (task, []))
        if not items:
            return
        torch.manual_seed(self.ctx.seed)
        start = time.perf_counter()
        outputs = task.finish([state for _, _, state, _ in items], self.ctx)
        shared = (time.perf_counter() - start) / len(items)
        for (spec, sae, _, seconds), output in zip(items, outputs):
            self.emit(task, output, sae, spec, self.ctx.hookpoint, seconds + shared)
            self._step()
