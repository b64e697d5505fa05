"""One site (hookpoint) of a run: every task of every checkpoint evaluated there, sharing one
EvalContext, so the model's activations at that site are extracted once.

Used by `sae_bench.run.runner.evaluate` and by the benchmarks (which time exactly this loop). Never
writes files: outputs go to the `emit` callback (the runner's RecordSink).
"""

from __future__ import annotations

import time
import types
from collections import OrderedDict
from typing import TYPE_CHECKING, Callable

import torch

from sae_bench.activations import ActivationSource
from sae_bench.core.context import EvalContext, TokenizedCorpus
from sae_bench.core.task_api import Task

if TYPE_CHECKING:  # pragma: no cover
    from sae_bench.run.config import CheckpointSpec, RunConfig


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


def site_contexts(config: RunConfig, model, corpus: TokenizedCorpus, device: str,
                  sites: list[tuple[str, str | None]], *, clean_final: bool = False, label: str = "") -> list[EvalContext]:
    """One EvalContext per (hookpoint, output hookpoint) of `sites`, sharing one ActivationSource per
    hookpoint. With two or more residual sites whose activations are not all cached, one model pass
    per batch captures them all (`sae_bench.activations.multi_site`), with `clean_final` also the clean
    final states spliced loss shares across sites; one site alone extracts as `site_context` does."""
    from sae_bench.activations.multi_site import capture_together

    sources: dict[str, ActivationSource] = {}

    def source_at(site: str) -> ActivationSource:
        if site not in sources:
            sources[site] = ActivationSource(model, site, corpus, cache_dir=config.cache_dir,
                                             batch_size=config.batch_size, show_progress=config.show_progress)
        return sources[site]

    contexts = [EvalContext(model=model, hookpoint=hp, corpus=corpus, activations=source_at(hp), output_hookpoint=out,
                            target_activations=source_at(out) if out else None, device=torch.device(device),
                            seed=config.seed, resources=dict(config.resources), batch_size=config.batch_size,
                            show_progress=config.show_progress) for hp, out in sites]
    residual = [s for s in sources.values() if not s.pooled]
    if len(residual) > 1 and not all(s.is_complete for s in residual):
        capture_together(model, residual, corpus, config.batch_size, final=clean_final,
                         show_progress=config.show_progress, label=label)
    return contexts


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
        self._emit_finished(task, items, outputs, time.perf_counter() - start)

    def _emit_finished(self, task: Task, items: list, outputs: list, seconds_shared: float) -> None:
        shared = seconds_shared / len(items)
        for (spec, sae, _, seconds), output in zip(items, outputs):
            self.emit(task, output, sae, spec, self.ctx.hookpoint, seconds + shared)
            self._step()


def finish_sites(sites: list[SiteRun]) -> None:
    """Finish the prepared work of several sites of one run. A task that can score sites together
    (`finish_sites(work)`, e.g. spliced loss sharing the clean log-probs of a multi-site pass) gets
    them in one call; every other task finishes site by site, as `SiteRun.finish` does."""
    names = list(dict.fromkeys(name for site in sites for name in site.held))
    for name in names:
        holders = [site for site in sites if site.held.get(name, (None, []))[1]]
        task = holders[0].held[name][0] if holders else None
        if task is None or len(holders) < 2 or not hasattr(task, "finish_sites"):
            for site in holders:
                site._finish(site.held[name][0])
            continue
        work = [(site, site.held.pop(name)[1]) for site in holders]
        torch.manual_seed(holders[0].ctx.seed)
        start = time.perf_counter()
        outputs = task.finish_sites([(site.ctx, [state for _, _, state, _ in items]) for site, items in work])
        seconds = (time.perf_counter() - start) / len(work)
        for (site, items), site_outputs in zip(work, outputs):
            site._emit_finished(task, items, site_outputs, seconds)
    for site in sites:
        site.finish()


def by_site(checked: list) -> "OrderedDict[tuple[str, str | None], list]":
    """Checkpoints that passed preflight (`Checked`) grouped by where they read and write:
    (hookpoint, None) for SAEs, (input site, output site) for transcoders, in the order given."""
    sites: "OrderedDict[tuple[str, str | None], list]" = OrderedDict()
    for item in checked:
        sites.setdefault((item.hookpoint, item.output_hookpoint), []).append(item)
    return sites


def budget_bytes(site_memory_gb: float | None) -> int:
    """The memory the sites of one model pass may hold together (`--site-memory-gb`, else the default)."""
    from sae_bench.activations.multi_site import default_budget_bytes

    return int(site_memory_gb * 1e9) if site_memory_gb else default_budget_bytes()


def site_groups(site_memory_gb: float | None, model, corpus: TokenizedCorpus, sites: "OrderedDict") -> list[list]:
    """The sites in groups captured by one model pass each, under the memory budget (`--site-memory-gb`);
    InputError when one site alone does not fit. A transcoder's site holds two sources."""
    from sae_bench.activations.multi_site import group_sites, site_bytes

    one = site_bytes(corpus, model.d_model, model.dtype)
    items = list(sites.items())
    biggest = max((2 if output else 1) * one for (_hp, output), _ in items) if items else one
    return group_sites(items, biggest, budget_bytes(site_memory_gb))
