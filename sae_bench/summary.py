"""A plain-text results table for the terminal: one row per checkpoint x hookpoint.

Shows the headline metric of each task that ran (value ± stderr); the full records stay in JSON.
Never computes a metric.
"""

from __future__ import annotations

from sae_bench.results import ResultRecord

HEADLINE_METRICS = (
    ("reconstruction", "fvu"), ("reconstruction", "cossim"), ("sparsity", "l0"),
    ("sparsity", "dead_fraction"), ("spliced_loss", "ce_loss_recovered"), ("spliced_loss", "kl_score"),
    ("probing", "label_confirmed_fraction"), ("probing", "sae_accuracy_k5"),
    ("maxact_repro", "reproduced_fraction"), ("downstream_lm_eval", "acc_spliced"),
    ("downstream_lm_eval", "acc_delta"),
)


def _cell(entry: dict | None) -> str:
    if entry is None:
        return "-"
    if entry.get("value") is None:
        return "null"
    value, stderr = entry["value"], entry.get("stderr")
    return f"{value:.4g}" if stderr is None else f"{value:.4g}±{stderr:.2g}"


def format_table(records: list[ResultRecord]) -> str:
    rows: dict[tuple[str, str], dict[tuple[str, str], dict]] = {}
    for record in records:
        row = rows.setdefault((record.checkpoint_id, record.hookpoint), {})
        for name, entry in record.metrics.items():
            row[(record.task_name, name)] = entry
    columns = [c for c in HEADLINE_METRICS if any(c in row for row in rows.values())]
    known = {task for task, _ in HEADLINE_METRICS}
    for task in sorted({r.task_name for r in records} - known):  # plugin tasks: their first metric
        first = min((m for (t, m) in set().union(*rows.values()) if t == task), default=None)
        if first is not None:
            columns.append((task, first))
    header = ["checkpoint", "hookpoint"] + [m if t in known else f"{t}/{m}" for t, m in columns]
    body = [[ckpt, hp] + [_cell(row.get(c)) for c in columns] for (ckpt, hp), row in sorted(rows.items())]
    widths = [max(len(str(line[i])) for line in [header] + body) for i in range(len(header))]
    fmt = lambda line: "  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(line) for line in body])
