"""The evaluation runner: checkpoints x tasks at their hookpoints, one result record each.

Order of work: check every input first (model, corpus, each checkpoint's file, hookpoint and
width) so that bad input fails before any result is written; then, per hookpoint, build one
EvalContext (activations extracted once) and evaluate the checkpoints there one at a time (so a
35-layer release never sits in memory at once). Tasks with shared work (`Task.shares_work`, e.g.
spliced loss) prepare each checkpoint then and are finished together at the end of the hookpoint,
so their records come after the others'. A record that already exists for the same task
version, config, checkpoint sha256 and corpus is reused, which makes interrupted runs resumable.

The runner owns output: tasks return numbers, this module writes records atomically.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import json
import platform
import sys
import time
import types
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch

import sae_bench
from sae_bench import distributed, registry
from sae_bench.activations import ActivationSource
from sae_bench.activations.source import POOLED_HOOKPOINT
from sae_bench.context import EvalContext, TokenizedCorpus
from sae_bench.errors import CheckpointError, InputError
from sae_bench.options import (boolean, check_values, comma_list, int_at_least, option, parse_task_options,
                               positive_int, torch_dtype)
from sae_bench.packing import packing_problem
from sae_bench.results import (SCHEMA_VERSION, ResultRecord, read_record, record_path, remove_stale_temp_files,
                               validate, write_record)
from sae_bench.task_api import MetricSpec, Task, TaskOutput


@dataclass
class CheckpointSpec:
    """One checkpoint to evaluate. `hookpoint`: the checkpoint's own (a sparsify subfolder) and
    where it is evaluated; `options` go to `load_checkpoint` (activation, preprocessing ...)."""

    ref: str
    hookpoint: str | None = None
    format: str | None = None
    label: str | None = None
    revision: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    trained_on: str | None = None  # the model it was trained on, when known from outside (the release registry)

    @property
    def display_id(self) -> str:
        return self.label or self.ref

    def load(self, device: str = "cpu", dtype: torch.dtype | None = None):
        """The SAE on `device` (cast to `dtype` if given; see `sae_bench.checkpoints.load_checkpoint`)."""
        from sae_bench.checkpoints import load_checkpoint

        return load_checkpoint(self.ref, hookpoint=self.hookpoint, format=self.format, revision=self.revision,
                               device=device, dtype=dtype, **self.options)

    @classmethod
    def parse(cls, text: str, **kwargs: Any) -> "CheckpointSpec":
        """`REF`, `REF@SUBFOLDER` (a hub id or path, optionally the hookpoint or sae_id folder inside it)
        or `RELEASE:LAYER` of a known release (`sae-bench releases`). The one parser of checkpoint
        references (run, compare, maxact). An existing path that contains "@" or ":" is a REF."""
        from sae_bench import releases

        found = releases.parse_short_ref(text) if not Path(text).exists() else None
        if found is not None:
            return cls.from_release(found, **kwargs)
        ref, hookpoint = text, None
        if "@" in text and not Path(text).exists():
            ref, _, hookpoint = text.rpartition("@")
        return cls(ref=ref, hookpoint=hookpoint or None, **kwargs)

    @classmethod
    def from_release(cls, found, **kwargs: Any) -> "CheckpointSpec":
        """One checkpoint of a known release (a `sae_bench.releases.ReleaseCheckpoint`)."""
        subfolder = found.subfolder or (found.hookpoint if found.format == "ernos" else None)
        return cls(ref=found.ref, hookpoint=subfolder, format=found.format, label=found.label,
                   trained_on=found.model, **kwargs)


@dataclass
class RunConfig:
    """What one evaluation run reads and where it writes. The fields declared with `option` are the
    command-line options of `sae-bench run` (and, in part, of compare and maxact): their help text,
    default and check live here and nowhere else."""

    model: str = option(help="model folder, hub id or .gguf file")
    corpus: str = option(help="corpus file or hub dataset id")
    results_dir: Path = option(help="results folder", flag="--results", type=Path)
    model_label: str | None = None  # the id records carry (a suite names it relative to its folder)
    corpus_label: str | None = None
    model_revision: str | None = option(None, "model revision (hub)", flag="--revision")
    gguf_file: str | None = option(None, "GGUF file name inside --model")
    trust_remote_code: bool = option(False, "run the model repository's own code (transformers trust_remote_code)")
    seq_len: int = option(128, "tokens per sequence (BOS included)", check=int_at_least(2))
    max_documents: int | None = option(None, "read at most this many corpus documents (default: all)",
                                       check=positive_int)
    corpus_split: str = option("train", "split of a hub dataset corpus")
    corpus_column: str = option("text", "column of the corpus: texts, or lists of token ids (a pre-tokenized "
                                        "corpus)")
    corpus_packing: str = option("document", "document: one document per row, right-padded; pack: documents "
                                             "concatenated into full rows, BOS first and BOS between documents "
                                             "(as SAELens and SAEBench)", metavar="{document,pack}",
                                 check=packing_problem)
    corpus_prepend_bos: bool = option(False, "pre-tokenized corpus: put BOS first in each document row "
                                             "(default: the token ids verbatim)", check=boolean)
    tasks: list[str] | None = option(None, "comma-separated task names (default: all registered tasks)",
                                     type=comma_list)
    task_options: dict[str, dict[str, Any]] = option(
        help="a task's option, JSON value (repeatable), e.g. probing.k_values=[1,5]", flag="--task-option",
        metavar="TASK.OPTION=VALUE", append=True, convert=parse_task_options, default_factory=dict)
    cache_dir: Path | None = option(None, "activation cache folder (none: no cache)", type=Path)
    device: str = option("cpu", "cpu, cuda, cuda:N, or auto (spread a model too large for one device: "
                                "device_map='auto')")
    dtype: str = option("float32", "model dtype (float32, bfloat16, float16)", check=torch_dtype)
    seed: int = option(0, "random seed (torch, probes, sampling)")
    batch_size: int = option(8, "sequences per model forward", check=positive_int)
    resources: dict[str, Path] = field(default_factory=dict)
    overwrite: bool = option(False, "recompute records that already exist")
    show_progress: bool = option(True, "no progress bars", flag="--quiet", invert=True)
    allow_model_mismatch: bool = option(False, "evaluate checkpoints trained on another model (base vs -it, another "
                                               "size); the records and the leaderboard say so")

    def check(self) -> None:
        """Raise InputError for the first option whose value is out of range (before any work)."""
        check_values(RunConfig, {f.name: getattr(self, f.name) for f in dataclasses.fields(self)})


@dataclass
class RunReport:
    records: list[ResultRecord] = field(default_factory=list)
    reused: int = 0
    skipped: list[tuple[str, str, str, str]] = field(default_factory=list)  # (checkpoint, hookpoint, task, reason)
    table_path: Path | None = None  # <results>/results.parquet, rewritten after the run (writer only)
    warnings: list[str] = field(default_factory=list)  # also written to stderr when found


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape the numbers (read once per process: a lookup costs ~3 ms)."""
    return dict(_library_versions())


@functools.lru_cache(maxsize=1)
def _library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for dist in ("torch", "transformers", "safetensors", "eai-sparsify", "numpy", "datasets", "lm-eval", "scikit-learn"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return versions


def _option_fits(value: Any, hint: Any) -> bool:
    """Whether a JSON-decoded task option fits its Config field's type (simple types, unions, tuple/list of
    them); other types are left to the task."""
    import types
    import typing

    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_option_fits(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (tuple, list):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return isinstance(value, (list, tuple)) and (not args or all(_option_fits(v, args[0]) for v in value))
    return True


def _check_option_types(name: str, cls, overrides: dict[str, Any]) -> None:
    import typing

    try:
        hints = typing.get_type_hints(cls.Config)
    except Exception:  # an annotation we cannot resolve: the task checks its own options
        return
    for key, value in overrides.items():
        hint = hints.get(key)
        if hint is not None and not _option_fits(value, hint):
            wanted = getattr(hint, "__name__", None) if typing.get_origin(hint) is None else None
            raise InputError(f"--task-option {name}.{key}={json.dumps(value)}",
                             f"expected {wanted or str(hint)}, got {type(value).__name__}")


def build_tasks(names: list[str] | None, options: dict[str, dict[str, Any]]) -> list[Task]:
    registry.discover()
    chosen = names if names else list(registry.all_tasks())
    tasks = []
    for name in chosen:
        cls = registry.get_task(name)
        overrides = options.get(name, {})
        valid = {f.name for f in dataclasses.fields(cls.Config)}
        unknown = sorted(set(overrides) - valid)
        if unknown:
            raise InputError(f"--task-option {name}.{unknown[0]}", f"unknown option; {name} accepts: {', '.join(sorted(valid))}")
        _check_option_types(name, cls, overrides)
        task = cls(**overrides)
        problems = task.config.problems()
        if problems:
            raise InputError(f"--task-option {name}", "; ".join(problems))
        tasks.append(task)
    return tasks


def sae_compute_dtype(device: str, model_dtype: torch.dtype, hookpoint: str) -> torch.dtype | None:
    """The dtype the SAE's weights are cast to for evaluation, None to keep the file's.

    On CUDA with a bf16/fp16 model, residual-stream SAEs run in the model's dtype (their inputs
    are that dtype's activations, so nothing is lost on the way in, and the encoder matmul runs on
    the tensor cores); every metric still accumulates in float32/float64 (the accumulators upcast).
    Pooled-source SAEs (ErnOS) keep their own dtype: their inputs are float32 means."""
    if torch.device(device).type == "cuda" and model_dtype in (torch.bfloat16, torch.float16) \
            and hookpoint != POOLED_HOOKPOINT:
        return model_dtype
    return None


def _eval_hookpoint(spec: CheckpointSpec, sae) -> str:
    """Where the checkpoint reads: what its loader says (a SAELens hook_name, a Gemma Scope folder's layer,
    a sparsify folder), else the spec's hookpoint. A spec hookpoint may be only the subfolder to load."""
    hookpoint = sae.metadata.hookpoint or spec.hookpoint
    if not hookpoint:
        raise CheckpointError(spec.ref, "no hookpoint given and the checkpoint does not name one")
    # A sparsify hookpoint may carry its run folder ("sae-run/language_model.layers.3").
    return hookpoint.rsplit("/", 1)[-1]


def _canonical(model, hookpoint: str) -> str:
    return hookpoint if hookpoint == POOLED_HOOKPOINT else model.resolve_hookpoint(hookpoint).name


def checked_checkpoint(model, spec: CheckpointSpec, device: str, dtype: torch.dtype | None = None):
    """Load `spec`'s SAE and check it against the model: (sae, canonical hookpoint). Raises
    CheckpointError when no hookpoint is known, a hookpoint does not resolve (a transcoder's output
    site too) or the SAE's width does not fit the model's."""
    sae = spec.load(device, dtype)
    hookpoint = _canonical(model, _eval_hookpoint(spec, sae))
    if sae.metadata.output_hookpoint:
        _canonical(model, sae.metadata.output_hookpoint)
    if sae.d_in != model.d_model:
        raise CheckpointError(sae.metadata.weights_path or spec.ref,
                              f"SAE d_in={sae.d_in} does not match the model's hidden size {model.d_model} at {hookpoint}")
    return sae, hookpoint


class Checked(NamedTuple):
    """A checkpoint that passed preflight: where it reads (and, for transcoders, what it predicts)."""

    spec: CheckpointSpec
    hookpoint: str
    output_hookpoint: str | None
    sha256: str
    mismatch: dict[str, str] | None  # {"trained_on", "evaluated", "problem"} when allowed to differ


def model_mismatch(spec: CheckpointSpec, sae, evaluated: str, allow: bool) -> dict[str, str] | None:
    """The model-mismatch guard: a checkpoint that names the model it was trained on (registry, SAELens
    model_name, sparsify run config, ErnOS source_model) must be evaluated on that model; otherwise a
    one-line InputError, or with `allow` the facts for the record's note."""
    from sae_bench.model_identity import mismatch_problem

    trained_on = spec.trained_on or sae.metadata.source_model
    problem = mismatch_problem(trained_on, evaluated) if trained_on else None
    if problem is None:
        return None
    if not allow:
        raise CheckpointError(spec.display_id, f"{problem}; evaluate it on {trained_on}, or pass "
                                               "--allow-model-mismatch to evaluate it anyway (the records say so)")
    return {"trained_on": trained_on, "evaluated": evaluated, "problem": problem}


def preflight(model, specs: list[CheckpointSpec], device: str, evaluated_model: str | None = None,
              allow_model_mismatch: bool = False) -> list[Checked]:
    """Check every checkpoint against the model before any work: hookpoints resolve, widths fit, and
    it was trained on this model (`evaluated_model`, default the adapter's id) unless allowed."""
    checked = []
    for spec in specs:
        sae, hookpoint = checked_checkpoint(model, spec, device)
        if spec.label is None and spec.hookpoint and \
                spec.hookpoint.rsplit("/", 1)[-1] != (sae.metadata.hookpoint or "").rsplit("/", 1)[-1]:
            # the spec's hookpoint only named a folder (a SAELens sae_id, a Gemma Scope width/l0 folder):
            # it is part of the checkpoint's identity, so two folders of one repo never share records
            spec.label = f"{spec.ref}@{spec.hookpoint}"
        output = sae.metadata.output_hookpoint
        output = _canonical(model, output) if output else None
        mismatch = model_mismatch(spec, sae, evaluated_model or model.model_id, allow_model_mismatch)
        checked.append(Checked(spec, hookpoint, output, sae.metadata.weights_sha256 or "", mismatch))
        del sae
    return checked


def first_batch_explained_variance(sae, ctx) -> float | None:
    """Explained variance on the first activation batch (the scale check before any task runs)."""
    from sae_bench.metrics.reconstruction import ReconstructionAccumulator

    first = next(ctx.activations.batches(4096, device=sae.device), None)
    if first is None or first.x.shape[0] < 2:
        return None
    x_in, _ = sae.preprocess(first.x.to(sae.dtype))
    target = x_in
    if sae.is_transcoder:
        target = next(ctx.splice_activations.batches(4096, device=sae.device)).x.to(sae.dtype)
    acc = ReconstructionAccumulator(ctx.corpus.n_sequences, sae.d_in)
    rows = sae.row_chunks(len(x_in))[0]
    acc.update(target[rows], sae.decode(sae.encode(x_in[rows]), x_in[rows]), first.sequence[rows])
    return acc.finalize()["explained_variance"].value


def _existing(path: Path, task: Task, sha256: str, corpus: TokenizedCorpus) -> ResultRecord | None:
    if not path.exists():
        return None
    try:
        record = read_record(path)
    except InputError:
        return None  # unreadable: recompute and replace atomically
    data = record.data
    same = (data["task"]["version"] == task.version and data["task"]["config_hash"] == task.config.config_hash()
            and data["checkpoint"].get("sha256") == sha256 and data["corpus"]["hash"] == corpus.corpus_hash
            and data["corpus"].get("seq_len") == corpus.seq_len)  # the hash names the documents, seq_len the rows
    return record if same else None


def declared_specs(task: Task, output: TaskOutput) -> dict[str, MetricSpec]:
    """The specs of the metrics `output` reports, by declared name; InputError naming the first
    metric the task does not declare (so no record carries a metric nothing knows how to read)."""
    used: dict[str, MetricSpec] = {}
    for metric in sorted(output.metrics):
        spec = task.metric_spec(metric)
        if spec is None:
            raise InputError(f"task {task.name}", f"reported metric {metric!r}, which it does not declare in "
                                                  f"`metrics` (declared: {', '.join(s.name for s in task.metrics)})")
        used[spec.name] = spec
    return used


def make_record(*, task: Task, output: TaskOutput, sae, spec: CheckpointSpec, model, hookpoint: str,
                corpus: TokenizedCorpus, config: RunConfig, corpus_label: str, model_label: str,
                seconds: float, mismatch: dict[str, str] | None = None,
                extra_notes: list[str] | None = None) -> dict[str, Any]:
    meta = sae.metadata
    notes = list(output.notes) + list(extra_notes or [])
    if mismatch:
        notes.insert(0, f"MODEL MISMATCH: this checkpoint {mismatch['problem']}; evaluated anyway "
                        "(--allow-model-mismatch)")
    record = {
        "schema_version": SCHEMA_VERSION,
        "harness_version": sae_bench.__version__,
        "task": {"name": task.name, "version": task.version, "config": task.config.to_json(),
                 "config_hash": task.config.config_hash()},
        "checkpoint": {"id": spec.display_id, "format": meta.format, "sha256": meta.weights_sha256 or "",
                       "d_in": meta.d_in, "d_sae": meta.d_sae, "activation": dataclasses.asdict(meta.activation),
                       "preprocessing": dataclasses.asdict(meta.preprocessing), "hookpoint": meta.hookpoint,
                       **({"output_hookpoint": meta.output_hookpoint} if meta.output_hookpoint else {}),
                       "source_model": meta.source_model, "dtype": meta.dtype},
        "model": {"id": model_label, "revision": model.revision or ""},
        "hookpoint": hookpoint,
        "corpus": {**corpus.describe(), "id": corpus_label},
        "counts": {"sequences_total": corpus.n_sequences, "tokens_total": corpus.n_tokens,
                   "tokens_kept": corpus.n_kept, **output.counts},
        "metrics": {name: metric.to_json() for name, metric in sorted(output.metrics.items())},
        "metric_specs": {name: spec.to_json() for name, spec in sorted(declared_specs(task, output).items())},
        "artifacts": output.artifacts,
        "notes": notes,
        "seed": config.seed,
        "randomness": {"seed": config.seed, "torch_manual_seed": config.seed,
                       "sources": list(task.random_sources) or ["none: deterministic given the inputs"]},
        "dtype": config.dtype,
        "device": str(config.device),
        "libraries": library_versions(),
        "timings": {"task_seconds": round(seconds, 3), "world_size": distributed.world_size()},
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if mismatch:
        record["model_mismatch"] = {"trained_on": mismatch["trained_on"], "evaluated": mismatch["evaluated"]}
    return record


def evaluate(config: RunConfig, checkpoints: list[CheckpointSpec],
             on_record: Callable[[ResultRecord], None] | None = None) -> RunReport:
    """Evaluate `checkpoints` with `config.tasks`; write one record per checkpoint x task."""
    from sae_bench.corpus import load_corpus
    from sae_bench.models import ModelAdapter

    if distributed.init_from_env(config.device):  # under torchrun: batches are sharded across ranks
        config = dataclasses.replace(config, device=distributed.local_device(config.device))
        if config.device == "auto":
            raise InputError("--device auto", "not supported under torchrun (each rank would spread the model over "
                                              "every GPU): use --device cuda, one GPU per rank, or one process")
    torch.manual_seed(config.seed)
    tasks = build_tasks(config.tasks, config.task_options)
    for task in tasks:  # input files named by task options (a parquet, a probe set) fail before any record
        task.check_inputs(dict(config.resources))
    if not checkpoints:
        raise InputError("checkpoints", "nothing to evaluate: give at least one checkpoint")
    config.check()
    dtype = getattr(torch, config.dtype)
    model = ModelAdapter.load(config.model, revision=config.model_revision, gguf_file=config.gguf_file,
                              device=config.device, dtype=dtype, trust_remote_code=config.trust_remote_code)
    # `--device auto` spreads the model with device_map="auto"; SAEs and inputs go where its embeddings are.
    device = str(model.device) if config.device == "auto" else config.device
    checked = preflight(model, checkpoints, device, evaluated_model=config.model_label or str(config.model),
                        allow_model_mismatch=config.allow_model_mismatch)
    # Leftovers of killed runs: temp files whose writer is gone (live concurrent writers are kept).
    if distributed.is_writer():
        remove_stale_temp_files(config.results_dir)
        if config.cache_dir is not None:
            remove_stale_temp_files(config.cache_dir)
    corpus = load_corpus(config.corpus, model.tokenizer, seq_len=config.seq_len, split=config.corpus_split,
                         column=config.corpus_column, max_documents=config.max_documents,
                         packing=config.corpus_packing, prepend_bos=config.corpus_prepend_bos)
    corpus_label = config.corpus_label or str(config.corpus)
    model_label = config.model_label or str(config.model)

    # Transcoders form their own groups: (input site, output site); SAEs: (hookpoint, None).
    by_hookpoint: "OrderedDict[tuple[str, str | None], list[Checked]]" = OrderedDict()
    for item in checked:
        by_hookpoint.setdefault((item.hookpoint, item.output_hookpoint), []).append(item)
    mismatches = {item.spec.display_id: item.mismatch for item in checked}
    scale_notes: dict[str, list[str]] = {}

    def source_at(site: str) -> ActivationSource:
        return ActivationSource(model, site, corpus, cache_dir=config.cache_dir, batch_size=config.batch_size,
                                show_progress=config.show_progress)

    report = RunReport()

    def emit(task: Task, output: TaskOutput, sae, spec: CheckpointSpec, seconds: float) -> None:
        data = make_record(task=task, output=output, sae=sae, spec=spec, model=model, hookpoint=ctx.hookpoint,
                           corpus=corpus, config=config, corpus_label=corpus_label,
                           model_label=model_label, seconds=seconds, mismatch=mismatches.get(spec.display_id),
                           extra_notes=scale_notes.get(spec.display_id))
        if not distributed.is_writer():  # other ranks only lend their share of the forwards
            report.records.append(validate(data, f"rank {distributed.rank()}"))
            return
        path = write_record(config.results_dir, data)
        record = read_record(path)
        report.records.append(record)
        if on_record:
            on_record(record)

    for (hookpoint, output_hookpoint), group in by_hookpoint.items():
        held = _Held()
        ctx = EvalContext(model=model, hookpoint=hookpoint, corpus=corpus, activations=source_at(hookpoint),
                          output_hookpoint=output_hookpoint,
                          target_activations=source_at(output_hookpoint) if output_hookpoint else None,
                          device=torch.device(device), seed=config.seed, resources=dict(config.resources),
                          batch_size=config.batch_size, show_progress=config.show_progress)
        for spec, _, _, sha256, _ in group:
            found = {}
            for task in tasks:
                path = record_path(config.results_dir, spec.display_id, hookpoint, task.name)
                reusable = distributed.is_writer() and not config.overwrite
                existing = _existing(path, task, sha256, corpus) if reusable else None
                if existing is not None:
                    found[task.name] = existing
            # Under torchrun every rank must run the same tasks (they share collectives): rank 0's files decide.
            found = distributed.from_writer(found)
            pending = []
            for task in tasks:
                existing = found.get(task.name)
                if existing is not None:
                    report.records.append(existing)
                    report.reused += 1
                    if on_record:
                        on_record(existing)
                else:
                    pending.append(task)
            if not pending:
                continue
            sae = spec.load(device, sae_compute_dtype(device, model.dtype, hookpoint))
            scale_notes[spec.display_id] = _scale_check(sae, ctx, spec, report)
            for task in pending:
                reason = task.skip_reason(sae, ctx)
                if reason:
                    report.skipped.append((spec.display_id, hookpoint, task.name, reason))
                    continue
                torch.manual_seed(config.seed)
                start = time.perf_counter()
                if task.shares_work:  # finished together with the hookpoint's other checkpoints
                    held.add(task, spec, sae, task.prepare(sae, ctx), time.perf_counter() - start)
                    if held.nbytes(task) > task.max_pending_bytes:
                        held.finish(task, ctx, emit)
                    continue
                output = task.run(sae, ctx)
                emit(task, output, sae, spec, time.perf_counter() - start)
            del sae
        held.finish_all(ctx, emit)
    if distributed.is_writer():  # the tidy table of every record in the folder, this run's included
        from sae_bench.results_table import write_results_parquet

        report.table_path = write_results_parquet(config.results_dir,
                                                  None if Path(config.results_dir).is_dir() else [])
    distributed.barrier()
    return report


class _Held:
    """Prepared states of two-step tasks (`Task.shares_work`) at one hookpoint, until finished together."""

    def __init__(self):
        self.by_task: "OrderedDict[str, tuple[Task, list]]" = OrderedDict()

    def add(self, task: Task, spec: CheckpointSpec, sae, state, seconds: float) -> None:
        # only the metadata is kept: the SAE itself is released before the next checkpoint loads
        self.by_task.setdefault(task.name, (task, []))[1].append(
            (spec, types.SimpleNamespace(metadata=sae.metadata), state, seconds))

    def nbytes(self, task: Task) -> int:
        return sum(int(getattr(state, "nbytes", 0)) for _, _, state, _ in self.by_task.get(task.name, (task, []))[1])

    def finish(self, task: Task, ctx: EvalContext, emit) -> None:
        _, items = self.by_task.pop(task.name, (task, []))
        if not items:
            return
        torch.manual_seed(ctx.seed)
        start = time.perf_counter()
        outputs = task.finish([state for _, _, state, _ in items], ctx)
        shared = (time.perf_counter() - start) / len(items)
        for (spec, sae, _, seconds), output in zip(items, outputs):
            emit(task, output, sae, spec, seconds + shared)

    def finish_all(self, ctx: EvalContext, emit) -> None:
        for task, _ in list(self.by_task.values()):
            self.finish(task, ctx, emit)


def _scale_check(sae, ctx, spec: CheckpointSpec, report: RunReport) -> list[str]:
    """Warn (stderr, report, record notes) when the widths fit but the SAE explains less than nothing
    on the first batch: the activations are not on the scale it was trained on (another model?)."""
    if ctx.is_pooled:
        return []
    ev = first_batch_explained_variance(sae, ctx)
    if ev is None or ev >= 0:
        return []
    message = (f"explained variance {ev:.4g} on the first batch at {ctx.hookpoint}: d_in fits but the activations "
               "are far from the scale this SAE was trained on (another model or site?)")
    if distributed.is_writer():
        print(f"sae-bench: warning: {spec.display_id}: {message}", file=sys.stderr)
    report.warnings.append(f"{spec.display_id}: {message}")
    return [f"WARNING: {message}"]


def load_suite(path: str | Path) -> tuple[dict[str, Any], list[CheckpointSpec]]:
    """A suite file: {"model", "corpus", "seq_len", "checkpoints": [{"path", "hookpoint", ...}]} and
    optionally "corpus_column", "corpus_packing", "corpus_prepend_bos"; paths resolved against the
    suite file's folder (never the current directory)."""
    path = Path(path)
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot read suite: {exc}") from exc
    if not isinstance(suite, dict) or not isinstance(suite.get("checkpoints"), list):
        raise InputError(path, "suite must be an object with a 'checkpoints' list")
    base = path.parent
    specs = []
    for i, entry in enumerate(suite["checkpoints"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise InputError(path, f"checkpoints[{i}] needs a string 'path'")
        options = {k: v for k, v in entry.items() if k not in ("path", "hookpoint", "format", "label")}
        specs.append(CheckpointSpec(ref=str(base / entry["path"]), hookpoint=entry.get("hookpoint"),
                                    format=entry.get("format"), label=entry.get("label") or entry["path"],
                                    options=options))
    return suite, specs
