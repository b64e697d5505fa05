"""The spliced-loss task's figure on each checkpoint page: the per-sequence distribution of delta CE
and KL(clean‖spliced) (the record's `per_sequence` artifact). Reads the record only."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from sae_bench.leaderboard_build.plots import Plot, colour, draw_distributions

if TYPE_CHECKING:  # pragma: no cover
    from sae_bench.leaderboard_build.table import LeaderboardTable, Row
    from sae_bench.records.results import ResultRecord


def per_sequence_values(record: ResultRecord, metric: str) -> list[float]:
    """The record's finite per-sequence values of `metric` (artifact `per_sequence`), [] without them."""
    arts = record.data.get("artifacts") or {}
    values = (arts.get("per_sequence") or {}).get(metric) if isinstance(arts.get("per_sequence"), dict) else None
    if not isinstance(values, list):
        return []
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def draw_per_sequence(table: LeaderboardTable, row: Row, record: ResultRecord, path: Path) -> Plot | None:
    """Per-sequence delta CE and KL of the spliced run; None when the record has none."""
    col = colour(table.family_index(row))
    panels = [("delta CE per sequence (nats)", per_sequence_values(record, "delta_ce"), col),
              ("KL(clean‖spliced) per sequence (nats)", per_sequence_values(record, "kl_spliced"), col)]
    size = draw_distributions(panels, path, "sequences")
    if size is None:
        return None
    return Plot(f"{path.parent.name}/{path.name}", "per-sequence spliced loss", "per_sequence",
                len(panels[0][1]), row=row.row, size=size)
