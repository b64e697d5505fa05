"""What a task adds to the leaderboard, declared on the task and found through the registry.

- `Task.page_sections`: `PageSection(order, render)`, a part of each checkpoint page drawn from the
  row's record of that task (`render(record) -> HTML lines`, [] for nothing to show);
- `Task.row_plots`: `RowPlot(order, kind, suffix, caption, draw)`, a figure per checkpoint drawn
  from that record (`draw(table, row, record, path) -> Plot | None`), shown under "Distributions";
- `MetricSpec(frontier=N)` / `MetricSpec(depth=N)`: the metric gets a panel in the frontier plots
  (against L0) / in the depth plot (against the layer), the Nth.

`render` and `draw` may be given as "module:function" so that a task module need not import the
leaderboard (or matplotlib) to declare them. The core leaderboard modules name no task: they draw
what the registered tasks declare, in the declared order. These are presentation, read from the
tasks as they are now (never from records), so a rebuild from old records draws the same.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Union

from sae_bench.core import registry

if TYPE_CHECKING:  # pragma: no cover
    from sae_bench.leaderboard_build.table import Row
    from sae_bench.records.results import ResultRecord

Renders = Union[Callable[..., Any], str]  # a function, or "module:function"


@dataclass(frozen=True)
class PageSection:
    """A part of every checkpoint page with a record of the declaring task."""

    order: int  # position among every task's sections, lower first
    render: Renders  # (ResultRecord) -> list[str] of HTML; every record string escaped (`markup.esc`)


@dataclass(frozen=True)
class RowPlot:
    """A per-checkpoint figure drawn from the declaring task's record."""

    order: int  # position among every task's row plots, lower first
    kind: str  # the Plot's kind, as the version's index.json lists it
    suffix: str  # its file: plots/<row stem>-<suffix>.svg
    caption: str  # shown under it on the checkpoint page
    draw: Renders  # (LeaderboardTable, Row, ResultRecord, Path) -> Plot | None


def resolve(function: Renders) -> Callable[..., Any]:
    """The callable of a declaration ("module:function" imported on first use)."""
    if callable(function):
        return function
    module, _, name = function.partition(":")
    return getattr(importlib.import_module(module), name)


def declared(attribute: str) -> list[tuple[str, Any]]:
    """(task name, declaration) for every registered task's `attribute` (`page_sections`,
    `row_plots`), in the declared order (ties: by task name)."""
    found = [(name, item) for name, cls in registry.all_tasks().items() for item in getattr(cls, attribute, ())]
    return sorted(found, key=lambda pair: (pair[1].order, pair[0]))


def flagged_metrics(flag: str) -> tuple[str, ...]:
    """The declared metrics whose MetricSpec sets `flag` (`frontier`, `depth`), in its order."""
    found = sorted((getattr(spec, flag), spec.name) for cls in registry.all_tasks().values() for spec in cls.metrics
                   if getattr(spec, flag) is not None)
    return tuple(name for _, name in found)


def record_of(row: "Row", task: str) -> "ResultRecord | None":
    """The row's record of `task`, None without one."""
    return next((r for r in row.records if r.task_name == task), None)
