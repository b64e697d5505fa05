"""The evaluation runner: checkpoints x tasks at their hookpoints, one result record each.

Order of work: check every input first (model, corpus, each checkpoint's file, hookpoint and
width) so that bad input fails before any result is written; then, per hookpoint, build one
EvalContext (activations extracted once) and evaluate the checkpoints there one at a time (so a
35-layer release never sits in memory at once). Tasks with shared work (`Task.shares_work`, e.g.
spliced loss) prepare each checkpoint then and are finished together at the end of the hookpoint,
so their records come after the others'. A record that already exists for the same task
version, config, checkpoint sha256 and corpus is reused, which makes interrupted runs resumable.

The runner owns output: tasks return numbers, `sae_bench.run.run_records` turns them into records
written atomically; `sae_bench.run.site_run` is the per-hookpoint loop. What a run is as data lives
in `sae_bench.run.config`, the task options in `sae_bench.core.task_options`, the checks of
checkpoints against the model in `sae_bench.checkpoints.preflight`: this module is the order of work.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Callable

import torch

from sae_bench.checkpoints.compute_dtype import sae_compute_dtype
from sae_bench.checkpoints.preflight import preflight, refuse_shared_folders
from sae_bench.core.context import TokenizedCorpus
from sae_bench.core.errors import InputError
from sae_bench.core.progress import tqdm
from sae_bench.core.task_api import Task
from sae_bench.core.task_options import build_tasks
from sae_bench.inputs.input_files import ensure_writable_dir
from sae_bench.models.identity import evaluated_identity
from sae_bench.records.results import ResultRecord, remove_stale_temp_files
from sae_bench.run import distributed
from sae_bench.run.config import CheckpointSpec, RunConfig, RunReport
from sae_bench.run.first_batch import scale_warnings
from sae_bench.run.run_records import RecordSink, reused_records
from sae_bench.run.site_run import SiteRun, budget_bytes, by_site, finish_sites, site_contexts, site_groups


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
    sites = by_site(checked)
    groups = site_groups(config.site_memory_gb, model, corpus, sites)  # may refuse the budget: before any work
    # the counts beside the bar's ETA: where a sweep over many sites stands
    site_numbers = {key: n for n, key in enumerate(sites, 1)}
    item_numbers = {id(item): n for n, item in enumerate((i for group in sites.values() for i in group), 1)}
    for number, group_sites in enumerate(groups, 1):
        # reused records first, so a group whose records all exist runs no model pass
        pending = {key: [(item, _pending(config, tasks, item, corpus, key[0], report, on_record))
                         for item in group] for key, group in group_sites}
        for (hookpoint, _output), jobs in pending.items():
            for item, todo in jobs:
                if len(todo) < len(tasks):
                    bar.set_description(f"{item.spec.display_id} @ {hookpoint}: {len(tasks) - len(todo)} reused")
                    bar.update(len(tasks) - len(todo))
        live = [(key, jobs) for key, jobs in pending.items() if any(todo for _, todo in jobs)]
        if not live:
            continue
        label = f", group {number}/{len(groups)} under {budget_bytes(config.site_memory_gb) / 1e9:g} GB" if len(groups) > 1 else ""
        contexts = site_contexts(config, model, corpus, device, [key for key, _ in live],
                                 clean_final=any(t.needs_clean_final for _, jobs in live for _, todo in jobs
                                                 for t in todo), label=label)
        runs = []
        for (key, jobs), ctx in zip(live, contexts):
            hookpoint = key[0]
            site = SiteRun(ctx, sink.emit, report.skipped, bar=bar)
            for item, todo in jobs:
                if not todo:
                    continue
                bar.set_postfix_str(f"site {site_numbers[key]}/{len(sites)}, checkpoint {item_numbers[id(item)]}/"
                                    f"{len(checked)}", refresh=False)
                sae = item.spec.load(device, sae_compute_dtype(device, model.dtype, hookpoint))
                sink.notes[item.spec.display_id] = scale_warnings(sae, site.ctx, item.spec.display_id, report.warnings)
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




def _pending(config: RunConfig, tasks: list[Task], item, corpus: TokenizedCorpus, hookpoint: str, report: RunReport,
             on_record: Callable[[ResultRecord], None] | None) -> list[Task]:
    """The tasks still to run for one checkpoint; the records that exist for the others are reused
    (added to the report, passed to `on_record`)."""
    found = reused_records(config, tasks, item, corpus, hookpoint)
    for record in found.values():
        report.records.append(record)
        report.reused += 1
        if on_record:
            on_record(record)
    return [task for task in tasks if task.name not in found]
