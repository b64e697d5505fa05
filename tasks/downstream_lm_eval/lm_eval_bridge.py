"""Downstream task accuracy through lm-evaluation-harness, clean or with an SAE spliced in.

`evaluate_tasks(model, task_names, ...)` wraps the adapter's already-loaded HF module and
tokenizer in lm-eval's `HFLM` (no second copy of the weights), builds an in-process
`TaskManager` over the shipped local task folder `lm_eval_tasks/` beside it (plus any extra folders),
and runs `lm_eval.simple_evaluate`. `sae_splice(model, hookpoint, sae)` is the context manager that
replaces the residual at `hookpoint` by `sae.splice(x)` for every forward lm-eval makes, at
positions whose token is not BOS, pad or EOS (the same positions the harness evaluates
everywhere else; BOS keeps its clean residual). Its hooks are always removed.

Offline: nothing here downloads; the local task's dataset is read from the jsonl beside its YAML.
lm-eval is imported lazily (it is slow to import). Under torchrun every rank runs the whole
lm-eval evaluation on its own model copy (not sharded: HFLM around a loaded module is one
process's model), so every rank holds the same scores. This module never writes files and never
computes anything but lm-eval's own per-document scores.
"""

from __future__ import annotations

import contextlib
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch

from sae_bench.core.errors import InputError

DEFAULT_TASK = "sae_bench_continuation"  # shipped in lm_eval_tasks/ beside this module, runs offline


def local_tasks_dir() -> Path:
    """The shipped lm-eval task folder, beside this module (editable install or wheel)."""
    return Path(__file__).resolve().parent / "lm_eval_tasks"


@dataclass
class TaskScores:
    """One lm-eval task's accuracy: aggregate, lm-eval's stderr, and per-document scores by doc_id."""

    task: str
    acc: float
    acc_stderr: float | None
    per_doc: dict[int, float]


def _task_manager(task_names: Sequence[str], include_paths: Sequence[Path]):
    from lm_eval.tasks import TaskManager

    paths = [str(p) for p in include_paths]
    local = TaskManager(include_path=paths, include_defaults=False)
    if all(name in local.all_tasks for name in task_names):
        return local  # do not index lm-eval's thousands of built-in YAMLs when not needed
    manager = TaskManager(include_path=paths)
    unknown = [name for name in task_names if name not in manager.all_tasks]
    if unknown:
        raise InputError(f"lm_eval_tasks={unknown[0]}", "not an lm-eval task (nor in the local task folders)")
    return manager


def make_lm(model, *, batch_size: int = 32, max_length: int | None = None):
    """lm-eval HFLM around the adapter's loaded module and tokenizer (weights are shared, not copied)."""
    from lm_eval.models.huggingface import HFLM

    with _silenced():  # its warnings about being handed a loaded model are expected: that is the design
        return HFLM(pretrained=model.model, tokenizer=model.tokenizer, batch_size=batch_size, max_length=max_length)


@contextmanager
def _silenced() -> Iterator[None]:
    """lm-eval's bars, log lines and the stderr of the subprocesses it starts (`git describe` prints
    "fatal: not a git repository" outside a clone) go to a sink, at the file-descriptor level since
    the subprocesses write to fd 2 directly. The runner's one overall progress bar stands for them."""
    import io
    import logging
    import sys
    import tempfile
    from contextlib import redirect_stderr

    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                with redirect_stderr(io.StringIO()):
                    yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)
        logger.setLevel(level)


def evaluate_tasks(lm, task_names: Sequence[str], *, include_paths: Sequence[Path] = (), limit: int | float | None = None,
                   num_fewshot: int | None = None, seed: int = 0, quiet: bool = False) -> dict[str, TaskScores]:
    """Run lm-eval tasks on `lm` (from `make_lm`) and return accuracy per task. lm-eval's own progress
    bars and log lines are always swallowed (it offers no switch for them; `quiet` is kept for
    callers); errors still raise."""
    import lm_eval

    paths = [local_tasks_dir(), *[Path(p) for p in include_paths]]
    manager = _task_manager(task_names, paths)
    with _as_local_rank_zero(), _silenced():
        out = lm_eval.simple_evaluate(
            model=lm, tasks=list(task_names), task_manager=manager, limit=limit, num_fewshot=num_fewshot,
            log_samples=True, random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
            fewshot_random_seed=seed, verbosity="ERROR")
    scores = {}
    for name in task_names:
        result = out["results"].get(name)
        if result is None or "acc,none" not in result:
            raise InputError(f"lm_eval_tasks={name}", "task reports no 'acc' metric (only accuracy tasks are supported)")
        stderr = result.get("acc_stderr,none")
        stderr = float(stderr) if isinstance(stderr, (int, float)) and math.isfinite(stderr) else None
        per_doc = {int(s["doc_id"]): float(s["acc"]) for s in out["samples"][name]}
        scores[name] = TaskScores(name, float(result["acc,none"]), stderr, per_doc)
    return scores


@contextmanager
def _as_local_rank_zero() -> Iterator[None]:
    """lm-eval returns results only where LOCAL_RANK is 0 (it takes torchrun for tensor parallelism);
    our ranks each run the whole evaluation themselves, so each must get its results."""
    saved = os.environ.get("LOCAL_RANK")
    if saved is not None:
        os.environ["LOCAL_RANK"] = "0"
    try:
        yield
    finally:
        if saved is not None:
            os.environ["LOCAL_RANK"] = saved


def _excluded_token_ids(model) -> set[int]:
    tok = model.tokenizer
    ids = {getattr(model, "bos_token_id", None), tok.bos_token_id, tok.pad_token_id, tok.eos_token_id}
    return {int(i) for i in ids if i is not None}


@contextmanager
def sae_splice(model, hookpoint: str, sae, output_hookpoint: str | None = None) -> Iterator[None]:
    """Replace the residual at `hookpoint` with sae.splice(x) at non-BOS/pad/EOS positions.
    A transcoder (`output_hookpoint` given) reads `hookpoint` and replaces `output_hookpoint` (a later
    module of the same forward) with sae.splice(input).

    The token ids of each forward are read by a pre-hook on the HF module (lm-eval calls it with
    `input_ids`); if they cannot be seen, every position is spliced."""
    excluded = torch.tensor(sorted(_excluded_token_ids(model)), dtype=torch.int64)
    seen: dict[str, torch.Tensor | None] = {"ids": None}

    def remember_ids(_module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        seen["ids"] = ids if isinstance(ids, torch.Tensor) else None

    def replace(x: torch.Tensor) -> torch.Tensor:
        source = x if inputs is None else inputs.value
        ids = seen["ids"]
        if ids is None or tuple(ids.shape) != tuple(x.shape[:2]):
            return sae.splice(source.to(sae.device, sae.dtype)).to(x.device, x.dtype)
        keep = ~torch.isin(ids, excluded.to(ids.device))
        out = x.clone()
        if bool(keep.any()):
            out[keep] = sae.splice(source[keep].to(sae.device, sae.dtype)).to(x.device, x.dtype)
        return out

    handle = model.model.register_forward_pre_hook(remember_ids, with_kwargs=True)
    try:
        with contextlib.ExitStack() as stack:
            inputs = stack.enter_context(model.capture(hookpoint)) if output_hookpoint else None
            stack.enter_context(model.splice(output_hookpoint or hookpoint, replace))
            yield
    finally:
        handle.remove()
