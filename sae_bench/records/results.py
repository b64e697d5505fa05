"""Result records: one JSON per checkpoint x hookpoint x task, with full provenance.

Layout (MTEB-style, the path states what was measured):
    <results_dir>/<checkpoint name>-<hash8>/<hookpoint>/<task>.json
The checkpoint folder is a readable slug plus a short hash of the full checkpoint id, so ids whose
slugs coincide (`x/a/b` and `x/a_b`) never share a folder, and no folder ends like a weights file.
A folder is told to be results by its records' schema (`is_results_path`), never by its name.
Records are written atomically (temporary file in the same folder, fsync, rename), so a crash or
a concurrent writer never leaves a partial file. This module validates records on read; it never
computes metrics.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sae_bench.core.errors import OutputError, ResultError, os_problem
from sae_bench.inputs.input_files import read_json

if TYPE_CHECKING:  # pragma: no cover
    from sae_bench.core.task_api import MetricSpec

SCHEMA_VERSION = 1

REQUIRED_KEYS = {
    "schema_version": int,
    "harness_version": str,
    "task": dict,  # {"name", "version", "config", "config_hash"}
    "checkpoint": dict,  # {"id", "format", "sha256", "d_in", "d_sae", "activation", ...}
    "model": dict,  # {"id", "revision"}
    "hookpoint": str,
    "corpus": dict,  # {"id", "hash", "seq_len", "n_sequences"}
    "counts": dict,  # tokens after masking etc.
    "metrics": dict,  # name -> {"value", "stderr", ["reason"]}
    # optional: "metric_specs": {declared name -> MetricSpec.to_json()}, the specs of these metrics
    "seed": int,
    "dtype": str,
    "device": str,
    "libraries": dict,
    "timings": dict,
    "created_at": str,
}


def slug(text: str) -> str:
    """A file-name-safe slug that cannot escape its folder (no '/', no '..'). Lossy: see `folder_name`."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "unnamed"
    return cleaned[:120]


# Names used as they are: layers.2, language_model.layers.17, reconstruction, pooled_final_norm.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")
_HASHED_TAIL = re.compile(r"-[0-9a-f]{8}$")  # what folder_name appends: a plain name never ends like this
_WEIGHTS_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".json")


def identity_hash(text: str) -> str:
    """Eight hex digits of sha256(text): tells apart names whose slugs coincide."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def folder_name(text: str, *, always_hash: bool = False) -> str:
    """A collision-free folder/file name for `text`: the text itself when it is already a plain name
    (and `always_hash` is off), otherwise a readable slug of at most 60 characters, dots made
    underscores (so no name ends like a checkpoint file, `.safetensors`), plus `-` and
    `identity_hash(text)`. Two different texts never share a name except by a hash collision."""
    plain = (_SAFE_NAME.match(text) and len(text) <= 120 and not _HASHED_TAIL.search(text)
             and not text.lower().endswith(_WEIGHTS_SUFFIXES))
    if plain and not always_hash:
        return text
    readable = slug(text).replace(".", "_")[:60].strip("_-") or "unnamed"
    return f"{readable}-{identity_hash(text)}"


@dataclass
class ResultRecord:
    """A parsed, validated result record (the JSON object is kept as `data`)."""

    data: dict[str, Any]
    path: Path | None = field(default=None, compare=False)

    @property
    def task_name(self) -> str:
        return self.data["task"]["name"]

    @property
    def task_version(self) -> str:
        return self.data["task"]["version"]

    @property
    def config_hash(self) -> str:
        return self.data["task"]["config_hash"]

    @property
    def corpus_hash(self) -> str:
        return self.data["corpus"]["hash"]

    @property
    def checkpoint_id(self) -> str:
        return self.data["checkpoint"]["id"]

    @property
    def hookpoint(self) -> str:
        return self.data["hookpoint"]

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        return self.data["metrics"]

    @functools.cached_property
    def _carried_specs(self) -> list["MetricSpec"]:
        from sae_bench.core.task_api import MetricSpec

        return [MetricSpec.from_json(d) for d in self.data.get("metric_specs", {}).values()]

    def metric_spec(self, name: str) -> "MetricSpec | None":
        """The spec of metric `name`: the one this record carries, else its task's declared one (for
        records written before records carried specs, or by a task that is not registered: None)."""
        from sae_bench.core.task_api import find_spec

        carried = self._carried_specs
        spec = find_spec(carried, name)
        if spec is None and not carried:
            from sae_bench.core import registry

            task = registry.find_task(self.task_name)
            spec = task.metric_spec(name) if task is not None else None
        return spec

    def metric(self, name: str) -> float | None:
        entry = self.metrics.get(name)
        return None if entry is None else entry.get("value")

    def comparability_key(self) -> tuple[str, str, str, str]:
        """Rows rank together only when all four match."""
        return (self.task_name, self.task_version, self.config_hash, self.corpus_hash)

    def relative_path(self) -> Path:
        return record_path(Path("."), self.checkpoint_id, self.hookpoint, self.task_name)


def checkpoint_folder(checkpoint_id: str) -> str:
    """The results folder of one checkpoint: always readable name + hash of the full id."""
    return folder_name(checkpoint_id, always_hash=True)


def record_path(results_dir: Path, checkpoint_id: str, hookpoint: str, task_name: str) -> Path:
    """Where a record lives; distinct (checkpoint id, hookpoint, task) never share a path."""
    return Path(results_dir) / checkpoint_folder(checkpoint_id) / folder_name(hookpoint) / f"{folder_name(task_name)}.json"


def _check_finite(obj: Any, where: str, source: str) -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ResultError(source, f"{where} is {obj}: NaN/Inf is never written as a number")
    if isinstance(obj, dict):
        for key, value in obj.items():
            _check_finite(value, f"{where}.{key}", source)
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            _check_finite(value, f"{where}[{i}]", source)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Fields readers rely on (gate, compare, leaderboard), beyond REQUIRED_KEYS: (section, key) -> check.
_FIELD_TYPES: dict[tuple[str, str], tuple[str, Any]] = {
    ("checkpoint", "sha256"): ("a string", lambda v: isinstance(v, str)),
    ("checkpoint", "d_in"): ("an integer", lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool))),
    ("checkpoint", "d_sae"): ("an integer", lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool))),
    ("checkpoint", "hookpoint"): ("a string or null", lambda v: v is None or isinstance(v, str)),
    ("model", "id"): ("a string", lambda v: isinstance(v, str)),
    ("model", "revision"): ("a string", lambda v: isinstance(v, str)),
    ("corpus", "id"): ("a string", lambda v: isinstance(v, str)),
    ("corpus", "seq_len"): ("an integer", lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool))),
    ("corpus", "n_sequences"): ("an integer", lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool))),
}


def _check_types(data: dict[str, Any], source: str) -> None:
    for (section, key), (wanted, ok) in _FIELD_TYPES.items():
        if key in data[section] and not ok(data[section][key]):
            raise ResultError(source, f"{section}.{key} should be {wanted}")
    for key, value in data["counts"].items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise ResultError(source, f"counts.{key} should be an integer")
    for key, value in data["timings"].items():
        if not _is_number(value):
            raise ResultError(source, f"timings.{key} should be a number")
    for key, value in data["libraries"].items():
        if not isinstance(value, str):
            raise ResultError(source, f"libraries.{key} should be a version string")
    if "notes" in data and not (isinstance(data["notes"], list) and all(isinstance(n, str) for n in data["notes"])):
        raise ResultError(source, "notes should be a list of strings")
    if "artifacts" in data and not isinstance(data["artifacts"], dict):
        raise ResultError(source, "artifacts should be an object")
    _check_specs(data.get("metric_specs"), source)


def _check_specs(specs: Any, source: str) -> None:
    """`metric_specs`, when present: an object of valid MetricSpec objects keyed by their names."""
    if specs is None:
        return
    from sae_bench.core.task_api import MetricSpec

    if not isinstance(specs, dict):
        raise ResultError(source, "metric_specs should be an object")
    for name, spec in specs.items():
        try:
            if not isinstance(spec, dict) or spec.get("name") != name:
                raise ValueError("not a spec object with that name")
            MetricSpec.from_json(spec)
        except (ValueError, TypeError) as exc:
            raise ResultError(source, f"metric_specs[{name!r}] is not a valid metric spec: {exc}") from None


def validate(data: Any, source: str = "<record>") -> ResultRecord:
    """Check a record's structure; raise a one-line ResultError naming `source` otherwise."""
    if not isinstance(data, dict):
        raise ResultError(source, "result record is not a JSON object")
    for key, kind in REQUIRED_KEYS.items():
        if key not in data:
            raise ResultError(source, f"result record misses key {key!r}")
        if not isinstance(data[key], kind) or (kind is int and isinstance(data[key], bool)):
            raise ResultError(source, f"result key {key!r} should be {kind.__name__}")
    if data["schema_version"] != SCHEMA_VERSION:
        raise ResultError(source, f"unsupported schema_version {data['schema_version']}")
    for key in ("name", "version", "config_hash"):
        if not isinstance(data["task"].get(key), str):
            raise ResultError(source, f"task.{key} missing or not a string")
    for key in ("id", "format"):
        if not isinstance(data["checkpoint"].get(key), str):
            raise ResultError(source, f"checkpoint.{key} missing or not a string")
    if not isinstance(data["corpus"].get("hash"), str):
        raise ResultError(source, "corpus.hash missing or not a string")
    _check_types(data, source)
    for name, entry in data["metrics"].items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise ResultError(source, f"metric {name!r} is not an object with a 'value'")
        value = entry["value"]
        if value is None:
            if not entry.get("reason"):
                raise ResultError(source, f"metric {name!r} is null without a reason")
        elif not _is_number(value):
            raise ResultError(source, f"metric {name!r} value is not a number")
        stderr = entry.get("stderr")
        if stderr is not None and (not _is_number(stderr) or stderr < 0):
            raise ResultError(source, f"metric {name!r} stderr is not a non-negative number or null")
        if entry.get("reason") is not None and not isinstance(entry["reason"], str):
            raise ResultError(source, f"metric {name!r} reason is not a string")
    _check_finite(data, "record", source)
    return ResultRecord(data)


def dumps(data: dict[str, Any]) -> str:
    """Canonical serialisation: sorted keys, no NaN, trailing newline (byte-stable)."""
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` so readers see the old file or the whole new one, never a part."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.pid{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # a file where a folder belongs, no permission ...
        raise OutputError(path.parent, f"cannot write {path.name}: {os_problem(exc)}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):  # a full disk mid-run: earlier files stay whole, this one is not written
            raise OutputError(path, f"cannot write: {os_problem(exc)}") from None
        raise


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (so its temporary files are not stale)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files left by writers that were killed (their pid is gone).

    Files of live writers (a concurrent run into the same folder) are left alone."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for tmp in folder.rglob(".*.tmp"):
        match = re.search(r"\.pid(\d+)\.", tmp.name)
        pid = int(match.group(1)) if match else None
        if pid is not None and pid != os.getpid() and not pid_alive(pid):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def write_record(results_dir: Path, data: dict[str, Any]) -> Path:
    """Validate and atomically write one record; returns its path."""
    record = validate(data)
    path = record_path(results_dir, record.checkpoint_id, record.hookpoint, record.task_name)
    atomic_write_text(path, dumps(data))
    return path


def read_record(path: str | os.PathLike) -> ResultRecord:
    path = Path(path)
    data = read_json(path, ResultError, "result file")
    record = validate(data, str(path))
    record.path = path
    return record


def _has_record_marker(path: Path) -> bool:
    """Whether a JSON file declares itself a result record: an object with `schema_version` and a
    `task` object (checkpoint configs, feature maps and suites have neither)."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8", errors="replace"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "schema_version" in data and isinstance(data.get("task"), dict)


def is_results_path(path: str | os.PathLike) -> bool:
    """A record file, or a folder holding at least one record (at any depth). Decided by the records'
    schema marker, never by a name or suffix: a results folder may be called anything."""
    path = Path(path)
    if path.is_file():
        return path.suffix == ".json" and _has_record_marker(path)
    if path.is_dir():
        return any(_has_record_marker(p) for p in path.rglob("*.json") if not p.name.startswith("."))
    return False


def iter_records(folder: str | os.PathLike) -> list[ResultRecord]:
    """All records under a results folder (sorted by path, temporary files ignored)."""
    folder = Path(folder)
    if folder.is_file():
        return [read_record(folder)]
    if not folder.is_dir():
        raise ResultError(folder, "results folder does not exist")
    return [read_record(p) for p in sorted(folder.rglob("*.json")) if not p.name.startswith(".")]
