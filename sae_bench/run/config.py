"""What one evaluation run is, as data: the checkpoints (`CheckpointSpec`), the options
(`RunConfig`), what it gave back (`RunReport`), and suite files (`load_suite`, `merge_suite`), so
that Python callers build a run exactly as `sae-bench run` does. Nothing here loads a model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sae_bench.core import registry
from sae_bench.core.errors import InputError
from sae_bench.core.options import (boolean, check_values, comma_list, in_range, int_at_least, int_between, option,
                                    parse_task_options, positive_int, torch_dtype)
from sae_bench.inputs.packing import DEFAULT_SEQ_LEN
from sae_bench.inputs.input_files import read_json
from sae_bench.inputs.packing import packing_problem
from sae_bench.records.provenance import portable

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from sae_bench.records.results import ResultRecord


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
    seq_len: int = option(DEFAULT_SEQ_LEN, "tokens per sequence (BOS included)", check=int_at_least(2))
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


def merge_suite(path: str | Path | None, options: dict[str, Any],
                specs: list[CheckpointSpec]) -> tuple[RunConfig, list[CheckpointSpec]]:
    """The run that `options` (RunConfig field values) and `specs` give, the suite file at `path`
    filling what they do not: the model and corpus (labelled `<label_root>/<name>`, label_root the
    suite's folder name unless it says), its checkpoints when none are given (labelled likewise),
    seq_len, how its corpus is read, tasks, task options (the given ones win, option by option) and
    resources, paths relative to the suite's folder. Without a suite the model and corpus must be given."""
    options = dict(options)
    suite: dict[str, Any] = {}
    if path is not None:
        suite, suite_specs = load_suite(path)
        specs = specs or suite_specs
        base = Path(path).parent
        label_root = suite.get("label_root", base.name)
        if "model" not in options and "model" in suite:
            options["model_label"] = f"{label_root}/{suite['model']}"
        if "corpus" not in options and "corpus" in suite:
            options["corpus_label"] = f"{label_root}/{suite['corpus']}"
        for spec in specs:
            if spec.label and not spec.label.startswith(label_root + "/"):
                spec.label = f"{label_root}/{spec.label}"
    else:
        base = Path.cwd()
    for name in ("model", "corpus"):
        if name not in options and name in suite:
            options[name] = str(base / suite[name])
        if name not in options:
            raise InputError(f"--{name}", f"no {name} given (and no suite names one)")
    if "seq_len" in suite:
        options.setdefault("seq_len", int(suite["seq_len"]))
    for name in ("corpus_column", "corpus_packing", "corpus_prepend_bos"):  # how the suite's corpus is read
        if name not in options and name in suite:
            options[name] = suite[name]
    options.setdefault("tasks", suite.get("tasks"))
    given_options = options.get("task_options", {})  # the given ones win, option by option
    suite_options = suite.get("task_options", {})
    options["task_options"] = {task: {**suite_options.get(task, {}), **given_options.get(task, {})}
                               for task in {**suite_options, **given_options}}
    options["resources"] = {k: base / v for k, v in suite.get("resources", {}).items()}
    return RunConfig(**options), specs
