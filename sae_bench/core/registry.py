"""The task registry: tiny, loud on duplicates, lazy.

Tasks are found in three places, in this order: the built-in plugin modules of `sae_bench.tasks`
(the repository's top-level `tasks/` folder), the entry-point group `sae_bench.tasks`, and any
folders given with `--include-path`. A task module that fails to import is an error naming the
file, never a task that silently disappears. Two tasks with the same name are an error.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import pkgutil
import sys
from pathlib import Path

from sae_bench.core.errors import InputError
from sae_bench.core.names import unknown
from sae_bench.core.task_api import MetricSpec, Task

ENTRY_POINT_GROUP = "sae_bench.tasks"
INCLUDED_PREFIX = "sae_bench_included."  # module names of the task files --include-path imports

_TASKS: dict[str, type[Task]] = {}
_ORIGINS: dict[str, str] = {}
_discovered = False


class DuplicateTaskError(InputError):
    pass


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: add a Task subclass to the registry under `cls.name`."""
    for attr in ("name", "version"):
        if not isinstance(getattr(cls, attr, None), str) or not getattr(cls, attr):
            raise TypeError(f"task {cls.__qualname__} needs a non-empty string `{attr}`")
    origin = f"{cls.__module__}.{cls.__qualname__}"
    existing = _ORIGINS.get(cls.name)
    if existing is not None and existing != origin:
        raise DuplicateTaskError(cls.name, f"task name registered twice: by {existing} and by {origin}")
    _check_metrics(cls)
    _TASKS[cls.name] = cls
    _ORIGINS[cls.name] = origin
    return cls


def _check_metrics(cls: type[Task]) -> None:
    """A task declares at least one metric, each a MetricSpec, each name once."""
    metrics = getattr(cls, "metrics", ())
    if not isinstance(metrics, tuple) or not metrics or not all(isinstance(m, MetricSpec) for m in metrics):
        raise TypeError(f"task {cls.__qualname__} needs `metrics`: a non-empty tuple of MetricSpec")
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        raise TypeError(f"task {cls.__qualname__} declares a metric twice: {sorted(n for n in names if names.count(n) > 1)}")


def _import_builtin_tasks() -> None:
    import sae_bench.tasks as package

    for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
        try:
            importlib.import_module(info.name)
        except Exception as exc:  # a broken task file must be loud, not vanish
            raise InputError(info.name, f"task module failed to import: {type(exc).__name__}: {exc}") from exc


def _load_entry_points() -> None:
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry_point.load()
        except Exception as exc:
            raise InputError(f"entry point {entry_point.name}",
                             f"failed to load {entry_point.value}: {type(exc).__name__}: {exc}") from exc
        if isinstance(loaded, type) and issubclass(loaded, Task):
            register_task(loaded)


def include_path(folder: str | Path) -> list[str]:
    """Import every `*.py` file of `folder` (resolved against the caller, not the CWD, by the
    CLI) so its `@register_task` classes join the registry. Returns the module names imported."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise InputError(folder, "--include-path is not a folder")
    imported = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module_name = f"{INCLUDED_PREFIX}{folder.name}.{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except DuplicateTaskError:
            raise
        except Exception as exc:
            raise InputError(path, f"task file failed to import: {type(exc).__name__}: {exc}") from exc
        imported.append(module_name)
    return imported


def discover() -> None:
    """Populate the registry from built-ins and entry points (once)."""
    global _discovered
    if not _discovered:
        _import_builtin_tasks()
        _load_entry_points()
        _discovered = True


def get_task(name: str) -> type[Task]:
    discover()
    try:
        return _TASKS[name]
    except KeyError:
        raise InputError(f"task {name!r}", unknown("task", name, _TASKS)) from None


def find_task(name: str) -> type[Task] | None:
    """The registered task `name`, None when no task of that name is registered (no error)."""
    discover()
    return _TASKS.get(name)


def all_tasks() -> dict[str, type[Task]]:
    discover()
    return dict(sorted(_TASKS.items()))


def check_task_options(options: dict[str, dict]) -> None:
    """Every `TASK.OPTION` key names a registered task and an option its Config declares, whether or
    not that task runs this time; otherwise one InputError naming the key and the closest valid ones
    (a misspelt task or option would otherwise be ignored and the run would use the default)."""
    import dataclasses

    discover()
    for task_name, values in options.items():
        if task_name not in _TASKS:
            raise InputError(f"--task-option {task_name}.{next(iter(values), '')}", unknown("task", task_name, _TASKS))
        valid = [f.name for f in dataclasses.fields(_TASKS[task_name].Config)]
        for key in values:
            if key not in valid:
                raise InputError(f"--task-option {task_name}.{key}", unknown(f"option of {task_name}", key, valid))
