"""A plain-text results table for the terminal: one row per checkpoint x hookpoint.

Why: the first thing a run prints must be readable in a 100-column terminal. By default it shows
the headline metrics (value±stderr) that fit in `WIDTH` columns, in headline order, with the
checkpoint names' common folder printed once above the table; `wide=True` shows every headline
metric and each plugin task's first metric at full precision. The full records stay in JSON and in
`results.parquet`. Never computes a metric.
"""

from __future__ import annotations

import os
import shlex
import textwrap

from sae_bench.records.results import ResultRecord

WIDTH = 100
NAME_WIDTH = 30  # longest checkpoint name shown in the narrow table (middle elided)


def _short(value: float) -> str:
    """3 significant digits, or 4 when 3 would print a whole number that is not the value (1.004, not 1)."""
    text = f"{value:.3g}"
    return f"{value:.4g}" if "." not in text and "e" not in text and float(text) != value else text


def _cell(entry: dict | None, wide: bool) -> str:
    if entry is None:
        return "-"
    if entry.get("value") is None:
        return "null"
    value, stderr = entry["value"], entry.get("stderr")
    if wide:
        return f"{value:.4g}" if stderr is None else f"{value:.4g}±{stderr:.2g}"
    return _short(value) if stderr is None else f"{_short(value)}±{stderr:.1g}"


def _elide(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: keep // 2] + "…" + text[len(text) - (keep - keep // 2):]


def _shared_ends(name: str, others: list[str]) -> tuple[int, int]:
    """The longest prefix and suffix `name` shares with any of `others` (never the whole name)."""
    prefix = max((len(os.path.commonprefix([name, o])) for o in others), default=0)
    suffix = max((len(os.path.commonprefix([name[::-1], o[::-1]])) for o in others), default=0)
    prefix = min(prefix, len(name) - 1)
    return prefix, min(suffix, len(name) - prefix - 1)


def shorten_names(names: list[str], width: int) -> dict[str, str]:
    """Each name cut to `width` columns keeping the part that tells it from the others (what it does
    not share with any other name) whole: the shared start is elided from its left, the shared end
    from its right (`…/tiny_sae_codenames.safe…`, never `tiny_sae…mes.safetensors`)."""
    unique = sorted(set(names))
    out = {}
    for name in unique:
        if len(name) <= width:
            out[name] = name
            continue
        a, s = _shared_ends(name, [o for o in unique if o != name])
        left, core, right = name[:a], name[a:len(name) - s], name[len(name) - s:]
        if len(core) + 2 > width:
            out[name] = _elide(name, width)
            continue
        room = width - len(core)
        keep_left = left if len(left) <= room - min(len(right), 1) else "…" + left[len(left) - (room - 2) + 1:]
        room -= len(keep_left)
        keep_right = right if len(right) <= room else right[: max(room - 1, 0)] + "…"
        out[name] = keep_left + core + keep_right
    return out


def common_folder(names: list[str]) -> str:
    """The folder prefix ("a/b/") shared by every name, if any name has one and it leaves each name non-empty."""
    if not names:
        return ""
    prefix = os.path.commonprefix(names)
    cut = prefix.rfind("/") + 1
    return prefix[:cut] if cut and all(len(n) > cut for n in names) else ""


def _layout(header: list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    fmt = lambda line: "  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip()  # noqa: E731
    return [fmt(header), fmt(["-" * w for w in widths])] + [fmt(line) for line in body]


def headline_columns(records: list[ResultRecord]) -> tuple[list[tuple[str, str]], set[tuple[str, str]]]:
    """(task, metric) pairs to show: the metrics that rank (`MetricSpec.ranking`, in that order:
    what the leaderboard ranks by comes first, so a narrow table never drops it), then the other
    metrics with a headline position (`MetricSpec.headline`), in that order, then for each task with
    none of those its first metric (by name); and the set of the declared ones."""
    ranked: dict[tuple[str, str], tuple[int, int, int]] = {}
    firsts: dict[str, str] = {}
    for record in records:
        for name in record.metrics:
            spec = record.metric_spec(name)
            if spec is not None and spec.headline is not None:
                ranks = spec.ranking is None, spec.ranking or 0, spec.headline
                ranked[(record.task_name, name)] = min(ranks, ranked.get((record.task_name, name), ranks))
            firsts[record.task_name] = min(firsts.get(record.task_name, name), name)
    headed = {task for task, _ in ranked}
    columns = sorted(ranked, key=lambda c: (ranked[c], c))
    return columns + [(task, first) for task, first in sorted(firsts.items()) if task not in headed], set(ranked)


def format_table(records: list[ResultRecord], *, wide: bool = False, width: int = WIDTH) -> str:
    rows: dict[tuple[str, str], dict[tuple[str, str], dict]] = {}
    for record in records:
        row = rows.setdefault((record.checkpoint_id, record.hookpoint), {})
        for name, entry in record.metrics.items():
            row[(record.task_name, name)] = entry
    columns, declared = headline_columns(records)
    metric_names = [m for _, m in columns]
    label = lambda c: c[1] if c in declared and metric_names.count(c[1]) == 1 else f"{c[0]}/{c[1]}"  # noqa: E731
    names = [ckpt for ckpt, _ in rows]
    folder = "" if wide else common_folder(names)
    short = shorten_names([n[len(folder):] for n in names], NAME_WIDTH)
    shown = {n: n if wide else short[n[len(folder):]] for n in names}
    ids = [[shown[ckpt], hp] for ckpt, hp in sorted(rows)]
    cells = {c: [_cell(rows[key].get(c), wide) for key in sorted(rows)] for c in columns}
    chosen = []
    if wide:
        chosen = columns
    else:
        used = max([len("checkpoint")] + [len(i[0]) for i in ids]) + 2 + max([len("hookpoint")] + [len(i[1]) for i in ids])
        for c in columns:
            need = 2 + max(len(label(c)), *(len(v) for v in cells[c]))
            if used + need <= width:
                chosen.append(c)
                used += need
    header = ["checkpoint", "hookpoint"] + [label(c) for c in chosen]
    body = [ident + [cells[c][i] for c in chosen] for i, ident in enumerate(ids)]
    lines = ([f"checkpoints under {folder}"] if folder else []) + _layout(header, body)
    left = [label(c) for c in columns if c not in chosen]
    if left:
        note = f"(cells: value±stderr; {len(left)} more metrics with --wide: {', '.join(left)})"
        lines += textwrap.wrap(note, width, break_on_hyphens=False) if not wide else [note]
    # evaluated on another model than it was trained on (--allow-model-mismatch): said under the table
    mismatched = {r.checkpoint_id: r.data["model_mismatch"] for r in records
                  if isinstance(r.data.get("model_mismatch"), dict)}
    for name, found in sorted(mismatched.items()):
        lines.append(f"[model mismatch] {name}: trained on {found.get('trained_on')}, "
                     f"evaluated on {found.get('evaluated')}")
    return "\n".join(lines)


def next_steps(records: list[ResultRecord], results_dir: os.PathLike | str) -> list[str]:
    """The commands worth running after a run: the leaderboard, a comparison of two checkpoints
    evaluated at the same hookpoint (their record folders), the tidy table in pandas."""
    results_dir = _here(results_dir)
    lines = ["next:", f"  sae-bench leaderboard build --results {shlex.quote(results_dir)} --out leaderboard"]
    by_hookpoint: dict[str, dict[str, str]] = {}
    for record in records:
        if record.path is not None:
            by_hookpoint.setdefault(record.hookpoint, {}).setdefault(record.checkpoint_id, _here(record.path.parent))
    pair = next((sorted(found.values())[:2] for _, found in sorted(by_hookpoint.items()) if len(found) >= 2), None)
    if pair:
        lines += _fitted(["sae-bench", "compare", shlex.quote(pair[0]), shlex.quote(pair[1])])
    path = os.path.join(results_dir, "results.parquet")
    code = f"import pandas as pd; print(pd.read_parquet({path!r}))"
    plain = not any(c in code for c in '"$`\\!')
    lines.append(f'  python -c "{code}"' if plain else f"  python -c {shlex.quote(code)}")
    return lines


def _here(path: os.PathLike | str) -> str:
    """`path` relative to the current folder when it lies below it (shorter, and still copyable)."""
    path = os.path.abspath(path)
    here = os.getcwd()
    return os.path.relpath(path, here) if path.startswith(here.rstrip(os.sep) + os.sep) else path


def _fitted(words: list[str], width: int = WIDTH) -> list[str]:
    """One command as lines of at most `width` columns where its words allow, continued with a
    backslash (pastes into a shell as one command)."""
    line = "  " + " ".join(words)
    if len(line) <= width:
        return [line]
    out, current = [], "  " + words[0]
    for word in words[1:]:
        if len(current) + 1 + len(word) + 2 > width:
            out.append(current + " \\")
            current = "    " + word
        else:
            current += " " + word
    return out + [current]
