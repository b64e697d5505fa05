"""The tasks of a run, built from `--task-option TASK.OPTION=VALUE` values: every key names a
registered task and option (`registry.check_task_options`), every value fits its Config field's
type, and the Config's own checks (`TaskConfig.problems`) pass, before any work.
"""

from __future__ import annotations

import json
from typing import Any

from sae_bench.core import registry
from sae_bench.core.errors import InputError
from sae_bench.core.task_api import Task


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


