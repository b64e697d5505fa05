"""The evaluation runner: checkpoints x tasks at their hookpoints, one result record each.

Order of work: check every input first (model, corpus, each checkpoint's file, hookpoint and
width) so that bad input fails before any result is written; then, per hookpoint, build one
EvalContext (activations extracted once) and evaluate the checkpoints there one at a time (so a
35-layer release never sits in memory at once). Tasks with shared work (`Task.shares_work`, e.g.
spliced loss) prepare each checkpoint then and are finished together at the end of the hookpoint,
so their records come after the others'. A record that already exists for the same task
version, config, checkpoint sha256 and corpus is reused, which makes interrupted runs resumable.

The runner owns output: tasks return numbers, `sae_bench.run.run_records` turns them into records
written atomically; `sae_bench.run.site_run` is the per-hookpoint loop.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch
from sae_bench.core.progress import tqdm

from sae_bench.core import registry

from sae_bench.run import distributed
from sae_bench.activations.source import POOLED_HOOKPOINT
from sae_bench.core.context import TokenizedCorpus
from sae_bench.core.errors import CheckpointError, InputError
from sae_bench.inputs.input_files import ensure_writable_dir, read_json
from sae_bench.core.options import (boolean, check_values, comma_list, in_range, int_at_least, int_between, option,
                               parse_task_options, positive_int, torch_dtype)
from sae_bench.inputs.packing import packing_problem
from sae_bench.records.provenance import portable
from sae_bench.records.results import ResultRecord, checkpoint_folder, record_path, remove_stale_temp_files
from sae_bench.run.run_records import RecordSink, reusable_record
from sae_bench.run.site_run import SiteRun, finish_sites, site_contexts
from sae_bench.core.task_api import Task


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
        """The id records carry: the label, else the ref without an absolute local path."""
        return self.label or portable(self.ref)

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
        from sae_bench.inputs import releases

        found = releases.parse_short_ref(text) if not Path(text).exists() else None
        if found is not None:
            return cls.from_release(found, **kwargs)
        ref, hookpoint = text, None
        if "@" in text and not Path(text).exists():
            ref, _, hookpoint = text.rpartition("@")
        return cls(ref=ref, hookpoint=hookpoint or None, **kwargs)

    @classmethod
    def from_release(cls, found, **kwargs: Any) -> "CheckpointSpec":
        """One checkpoint of a known release (a `sae_bench.inputs.releases.ReleaseCheckpoint`)."""
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
    seed: int = option(0, "random seed (torch, probes, sampling)", check=int_between(0, 2**32 - 1))
    batch_size: int = option(8, "sequences per model forward", check=positive_int)
    resources: dict[str, Path] = field(default_factory=dict)
    overwrite: bool = option(False, "recompute records that already exist")
    show_progress: bool = option(True, "no progress bars", flag="--quiet", invert=True)
    model_id: str | None = option(None, "the hub id a local --model folder is a copy of (the model-mismatch guard "
                                        "then names it so)")
    site_memory_gb: float | None = option(None, "memory (GB) the sites captured in one model pass may hold together "
                                                 "(activations, spliced-loss baselines); more sites go in further "
                                                 "passes. Default: half the machine's memory", check=in_range(1e-6))
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
    registry.check_task_options(options)  # every key, the tasks not chosen this time included
    chosen = names if names else list(registry.all_tasks())
    tasks = []
    for name in chosen:
        cls = registry.get_task(name)
        overrides = options.get(name, {})
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


def model_mismatch(spec: CheckpointSpec, sae, evaluated: str, allow: bool,
                   identity: dict[str, Any] | None = None) -> dict[str, str] | None:
    """The model-mismatch guard: a checkpoint that names the model it was trained on (registry, SAELens
    model_name, sparsify run config, ErnOS source_model) must be evaluated on that model; otherwise a
    one-line InputError, or with `allow` the facts for the record's note. `identity`: what the evaluated
    model is besides its name (`evaluated_identity`; see `sae_bench.models.identity.identify`)."""
    from sae_bench.models.identity import identify

    trained_on = spec.trained_on or sae.metadata.source_model
    problem = identify(trained_on, evaluated, **(identity or {})) if trained_on else None
    if problem is None:
        return None
    if not allow:
        raise CheckpointError(spec.display_id, f"{problem}; evaluate it on {trained_on}, or pass "
                                               "--allow-model-mismatch to evaluate it anyway (the records say so)")
    return {"trained_on": trained_on, "evaluated": evaluated, "problem": problem}


def evaluated_identity(ref: str, model, model_id: str | None = None) -> dict[str, Any]:
    """What the evaluated model is besides the name typed: its config (as its folder's config.json
    records it, else as loaded), `--model-id`, and whether the name is only a local folder's."""
    local = Path(str(ref)).expanduser()
    config = None
    if local.is_dir() and (local / "config.json").is_file():
        try:
            config = json.loads((local / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = None
    if config is None and hasattr(getattr(model, "model", None), "config"):
        config = model.model.config.to_dict()
        config.pop("_name_or_path", None)  # as loaded: the path it was loaded from, not a hub id
    return {"config": config, "model_id": model_id, "local_folder": local.exists()}


def preflight(model, specs: list[CheckpointSpec], device: str, evaluated_model: str | None = None,
              allow_model_mismatch: bool = False, identity: dict[str, Any] | None = None) -> list[Checked]:
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
        mismatch = model_mismatch(spec, sae, evaluated_model or model.model_id, allow_model_mismatch, identity)
        checked.append(Checked(spec, hookpoint, output, sae.metadata.weights_sha256 or "", mismatch))
        del sae
    return checked


def refuse_shared_folders(checked: list[Checked]) -> None:
    """Two checkpoints whose records would land in one results folder (the same id twice at one
    hookpoint, or ids whose folder names collide) are refused before any record is written."""
    seen: dict[tuple[str, str], str] = {}
    for spec, hookpoint in ((c.spec, c.hookpoint) for c in checked):
        where = (checkpoint_folder(spec.display_id), hookpoint)
        if where in seen:
            same = "is listed twice" if seen[where] == spec.display_id else f"shares a results folder with {seen[where]!r}"
            raise InputError(spec.display_id, f"{same} at {hookpoint} ({where[0]}/): give each checkpoint "
                                              "a distinct label")
        seen[where] = spec.display_id


def check_output_folders(config: RunConfig) -> None:
    """The results folder and the activation cache folder exist (created if needed) and take a file."""
    ensure_writable_dir(config.results_dir, "results folder")
    if config.cache_dir is not None:
        ensure_writable_dir(config.cache_dir, "cache folder")


def evaluate(config: RunConfig, checkpoints: list[CheckpointSpec],
             on_record: Callable[[ResultRecord], None] | None = None) -> RunReport:
    """Evaluate `checkpoints` with `config.tasks`; write one record per checkpoint x task.

    The steps, in order: every input is checked before any work (`_checked_inputs`, `preflight`),
    the model and corpus load once, then each site (hookpoint) shares one EvalContext while its
    checkpoints are evaluated one at a time (`SiteRun`); records are written by a `RecordSink`."""
    config = _for_this_process(config)
    tasks = _checked_inputs(config, checkpoints)
    if distributed.is_writer():  # the folders we will write: a file in the way, no permission, no space
        check_output_folders(config)
    model = _load_model(config)
    device = str(model.device) if config.device == "auto" else config.device  # `auto`: where the embeddings are
    checked = preflight(model, checkpoints, device, evaluated_model=config.model_label or str(config.model),
                        allow_model_mismatch=config.allow_model_mismatch,
                        identity=evaluated_identity(config.model, model, config.model_id))
    refuse_shared_folders(checked)
    _remove_leftovers(config)
    corpus = _load_corpus(config, model)
    if config.show_progress and distributed.is_writer():  # the size of the work ahead (a packed corpus: rows)
        print(f"sae-bench: corpus: {corpus.n_sequences} rows of {corpus.seq_len} tokens, {corpus.n_kept} "
              f"evaluated", file=sys.stderr)
    report = RunReport()
    sink = RecordSink(config, model, corpus, report, on_record,
                      mismatches={item.spec.display_id: item.mismatch for item in checked})
    # The one progress bar: a step per checkpoint x task (reused, computed or skipped), named after the
    # pair being worked on; activation and task bars below it are transient (leave=False).
    bar = tqdm(total=len(checked) * len(tasks), desc="sae-bench", unit="record",
               disable=not (config.show_progress and distributed.is_writer()), per_step=True)
    by_site = _by_site(checked)
    groups = _site_groups(config, model, corpus, by_site)  # may refuse the budget: before any work
    # the counts beside the bar's ETA: where a sweep over many sites stands
    site_numbers = {key: n for n, key in enumerate(by_site, 1)}
    item_numbers = {id(item): n for n, item in enumerate((i for group in by_site.values() for i in group), 1)}
    for number, sites in enumerate(groups, 1):
        # reused records first, so a group whose records all exist runs no model pass
        pending = {key: [(item, _pending_tasks(config, tasks, item, corpus, key[0], report, on_record))
                         for item in group] for key, group in sites}
        for (hookpoint, _output), jobs in pending.items():
            for item, todo in jobs:
                if len(todo) < len(tasks):
                    bar.set_description(f"{item.spec.display_id} @ {hookpoint}: {len(tasks) - len(todo)} reused")
                    bar.update(len(tasks) - len(todo))
        live = [(key, jobs) for key, jobs in pending.items() if any(todo for _, todo in jobs)]
        if not live:
            continue
        label = f", group {number}/{len(groups)} under {_budget_bytes(config) / 1e9:g} GB" if len(groups) > 1 else ""
        contexts = site_contexts(config, model, corpus, device, [key for key, _ in live],
                                 clean_final=any(t.name == "spliced_loss" for _, jobs in live for _, todo in jobs
                                                 for t in todo), label=label)
        runs = []
        for (key, jobs), ctx in zip(live, contexts):
            hookpoint = key[0]
            site = SiteRun(ctx, sink.emit, report.skipped, bar=bar)
            for item, todo in jobs:
                if not todo:
                    continue
                bar.set_postfix_str(f"site {site_numbers[key]}/{len(by_site)}, checkpoint {item_numbers[id(item)]}/"
                                    f"{len(checked)}", refresh=False)
                sae = item.spec.load(device, sae_compute_dtype(device, model.dtype, hookpoint))
                sink.notes[item.spec.display_id] = _scale_check(sae, site.ctx, item.spec, report)
                site.add(sae, item.spec, todo)
                del sae
            runs.append(site)
        finish_sites(runs)
    bar.close()
    if distributed.is_writer():  # the tidy table of every record in the folder, this run's included
        from sae_bench.records.results_table import write_results_parquet

        report.table_path = write_results_parquet(config.results_dir,
                                                  None if Path(config.results_dir).is_dir() else [])
    distributed.barrier()
    return report


def _for_this_process(config: RunConfig) -> RunConfig:
    """Under torchrun: this rank's device (batches are sharded across ranks)."""
    if not distributed.init_from_env(config.device):
        return config
    config = dataclasses.replace(config, device=distributed.local_device(config.device))
    if config.device == "auto":
        raise InputError("--device auto", "not supported under torchrun (each rank would spread the model over "
                                          "every GPU): use --device cuda, one GPU per rank, or one process")
    return config


def _checked_inputs(config: RunConfig, checkpoints: list[CheckpointSpec]) -> list[Task]:
    """The configured tasks, after every check that needs no model: options, the files task options
    name (a parquet, a probe set), at least one checkpoint, the run options' ranges."""
    torch.manual_seed(config.seed)
    tasks = build_tasks(config.tasks, config.task_options)
    for task in tasks:
        task.check_inputs(dict(config.resources))
    if not checkpoints:
        raise InputError("checkpoints", "nothing to evaluate: give at least one checkpoint")
    config.check()
    return tasks


def _load_model(config: RunConfig):
    from sae_bench.models import ModelAdapter

    return ModelAdapter.load(config.model, revision=config.model_revision, gguf_file=config.gguf_file,
                             device=config.device, dtype=getattr(torch, config.dtype),
                             trust_remote_code=config.trust_remote_code)


def _load_corpus(config: RunConfig, model) -> TokenizedCorpus:
    from sae_bench.inputs.corpus import load_corpus

    return load_corpus(config.corpus, model.tokenizer, seq_len=config.seq_len, split=config.corpus_split,
                       column=config.corpus_column, max_documents=config.max_documents,
                       packing=config.corpus_packing, prepend_bos=config.corpus_prepend_bos)


def _remove_leftovers(config: RunConfig) -> None:
    """Temp files of killed runs whose writer is gone (live concurrent writers are kept)."""
    if distributed.is_writer():
        remove_stale_temp_files(config.results_dir)
        if config.cache_dir is not None:
            remove_stale_temp_files(config.cache_dir)


def _by_site(checked: list[Checked]) -> "OrderedDict[tuple[str, str | None], list[Checked]]":
    """Checkpoints grouped by where they read and write: (hookpoint, None) for SAEs, (input site,
    output site) for transcoders, in the order given."""
    sites: "OrderedDict[tuple[str, str | None], list[Checked]]" = OrderedDict()
    for item in checked:
        sites.setdefault((item.hookpoint, item.output_hookpoint), []).append(item)
    return sites


def _budget_bytes(config: RunConfig) -> int:
    from sae_bench.activations.multi_site import default_budget_bytes

    return int(config.site_memory_gb * 1e9) if config.site_memory_gb else default_budget_bytes()


def _site_groups(config: RunConfig, model, corpus: TokenizedCorpus, sites: "OrderedDict") -> list[list]:
    """The sites in groups captured by one model pass each, under the memory budget (`--site-memory-gb`);
    InputError when one site alone does not fit. A transcoder's site holds two sources."""
    from sae_bench.activations.multi_site import group_sites, site_bytes

    one = site_bytes(corpus, model.d_model, model.dtype)
    items = list(sites.items())
    biggest = max((2 if output else 1) * one for (_hp, output), _ in items) if items else one
    return group_sites(items, biggest, _budget_bytes(config))


def _pending_tasks(config: RunConfig, tasks: list[Task], item: Checked, corpus: TokenizedCorpus, hookpoint: str,
                   report: RunReport, on_record: Callable[[ResultRecord], None] | None) -> list[Task]:
    """The tasks still to run for one checkpoint; records that exist for the same task version,
    config, checkpoint and corpus are reused (added to the report) instead."""
    found = {}
    if distributed.is_writer() and not config.overwrite:
        for task in tasks:
            path = record_path(config.results_dir, item.spec.display_id, hookpoint, task.name)
            existing = reusable_record(path, task, item.sha256, corpus)
            if existing is not None:
                found[task.name] = existing
    # Under torchrun every rank must run the same tasks (they share collectives): rank 0's files decide.
    found = distributed.from_writer(found)
    for task in tasks:
        if task.name in found:
            report.records.append(found[task.name])
            report.reused += 1
            if on_record:
                on_record(found[task.name])
    return [task for task in tasks if task.name not in found]


def _scale_check(sae, ctx, spec: CheckpointSpec, report: RunReport) -> list[str]:
    """Warn (stderr, report, record notes) for what the first batch shows is wrong although the widths
    fit (`sae_bench.run.first_batch`: the scale, latents that all fire or none)."""
    from sae_bench.run.first_batch import first_batch_problems

    notes = []
    for message in first_batch_problems(sae, ctx):
        if distributed.is_writer():
            print(f"sae-bench: warning: {spec.display_id}: {message}", file=sys.stderr)
        report.warnings.append(f"{spec.display_id}: {message}")
        notes.append(f"WARNING: {message}")
    return notes


def load_suite(path: str | Path) -> tuple[dict[str, Any], list[CheckpointSpec]]:
    """A suite file: {"model", "corpus", "seq_len", "checkpoints": [{"path", "hookpoint", ...}]} and
    optionally "corpus_column", "corpus_packing", "corpus_prepend_bos", "tasks", "task_options"; paths
    (task options a task's config lists in `paths` too) resolved against the suite file's folder (never the
    current directory)."""
    path = Path(path)
    suite = read_json(path, InputError, "suite")
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
    if isinstance(suite.get("task_options"), dict):
        suite["task_options"] = {task: _suite_paths(task, values, base) if isinstance(values, dict) else values
                                 for task, values in suite["task_options"].items()}
    return suite, specs


def _suite_paths(task: str, values: dict[str, Any], base: Path) -> dict[str, Any]:
    """A task's options from a suite file, its path options resolved against the suite's folder."""
    task_cls = registry.find_task(task)
    declared = task_cls.Config.paths if task_cls is not None else ()
    return {name: str((base / value).resolve()) if name in declared and isinstance(value, str) else value
            for name, value in values.items()}
