"""What the listing commands show, without importing the tasks: each task's name, version,
description, declared metrics and subcommands, kept in a small index file beside the user's caches.

Importing the task modules pulls in torch, scipy and scikit-learn (about 5 s of CPU on a small
machine) although `sae-bench tasks` and `sae-bench metrics` only print declarations. The index is
rebuilt by importing the tasks whenever anything it could depend on changes: the key covers the
harness version, the Python version, the name, size and modification time of every source file of
the `sae_bench` package and its built-in tasks, and the `sae_bench.tasks` entry points of every
installed distribution (name, value, distribution version). A stale index therefore cannot be
read; an unreadable or unwritable one is ignored (the tasks are imported, as without an index).
`--include-path` folders are imported every time (they are outside the key).
Must never: import torch, or serve an index whose key differs.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import NamedTuple

from sae_bench.core.task_api import MetricSpec

INDEX_VERSION = 2


class Declared(NamedTuple):
    """One task's declarations (the attributes `sae_bench.core.metric_docs.render` reads from a Task)."""

    name: str
    version: str
    description: str
    metrics: tuple[MetricSpec, ...]
    commands: tuple[tuple[str, str], ...] = ()  # (subcommand, module) pairs of `Task.commands`


def cache_dir() -> Path:
    """$SAE_BENCH_HOME, else $XDG_CACHE_HOME/sae-bench, else ~/.cache/sae-bench."""
    if os.environ.get("SAE_BENCH_HOME"):
        return Path(os.environ["SAE_BENCH_HOME"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sae-bench"


def _source_roots() -> list[Path]:
    roots = []
    for name in ("sae_bench", "sae_bench.tasks"):
        spec = importlib.util.find_spec(name)
        roots += [Path(p) for p in (spec.submodule_search_locations or [])]
    return roots


def index_key() -> str:
    """A digest of everything the declarations could depend on (see the module docstring)."""
    import sae_bench

    files = []
    for root in _source_roots():
        for path in sorted(root.rglob("*.py")):
            stat = path.stat()
            files.append((str(path), stat.st_size, stat.st_mtime_ns))
    points = sorted((ep.name, ep.value, getattr(ep.dist, "version", "") if ep.dist else "")
                    for ep in importlib.metadata.entry_points(group="sae_bench.tasks"))
    blob = json.dumps([INDEX_VERSION, sae_bench.__version__, sys.version, files, points])
    return hashlib.sha256(blob.encode()).hexdigest()


def _from_registry(included: bool = True) -> dict[str, Declared]:
    """The registry's tasks; without `included`, not the ones an `--include-path` folder added in this
    process (they are outside the index's key and must never be written into it)."""
    from sae_bench.core import registry

    return {name: Declared(name, cls.version, cls.description, tuple(cls.metrics), tuple(sorted(cls.commands.items())))
            for name, cls in registry.all_tasks().items()
            if included or not cls.__module__.startswith(registry.INCLUDED_PREFIX)}


def declarations(include_paths: list[str] | None = None) -> dict[str, Declared]:
    """Every registered task's declarations, by name (sorted): from the index when its key matches,
    else by importing the tasks (and writing the index for next time)."""
    if include_paths:  # tasks outside the key: import them (and the rest) as a run would
        return _from_registry()
    key = index_key()
    path = cache_dir() / f"task-index-{key[:16]}.json"  # one file per install: checkouts never evict each other
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("key") == key:
            return {t["name"]: Declared(t["name"], t["version"], t["description"],
                                        tuple(MetricSpec.from_json(m) for m in t["metrics"]),
                                        tuple(tuple(c) for c in t["commands"]))
                    for t in stored["tasks"]}
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent, unreadable or of another shape: rebuilt below
    found = _from_registry(included=False)
    data = {"key": key, "tasks": [{"name": d.name, "version": d.version, "description": d.description,
                                   "metrics": [m.to_json() for m in d.metrics], "commands": d.commands}
                         for d in found.values()]}
    from sae_bench.core.errors import InputError
    from sae_bench.records.results import atomic_write_text

    try:
        atomic_write_text(path, json.dumps(data, sort_keys=True) + "\n")
    except (OSError, InputError):
        pass  # a read-only home: list without an index
    return found
