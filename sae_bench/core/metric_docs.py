"""docs/metrics.md's generated part: one table per task, written from the tasks' MetricSpecs.

The specs are the one source of what a metric means and which way is better; this module only
renders them (and splices the rendering between the markers of a hand-written file, so that the
conventions around the tables stay prose). `tests/test_docs.py` fails when docs/metrics.md and
the specs disagree; `sae-bench metrics --write docs/metrics.md` brings the file back in line.
"""

from __future__ import annotations

from sae_bench.core.errors import InputError

BEGIN = "<!-- BEGIN metric tables: generated from the tasks' MetricSpecs by `sae-bench metrics --write docs/metrics.md`; do not edit by hand -->"
END = "<!-- END metric tables -->"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _gate(spec) -> str:
    if spec.direction == "none":
        return "not gated"
    effect = f"{spec.min_effect * 100:g}% of baseline" if spec.relative else f"{spec.min_effect:g}"
    return f"worse by > {effect}"


def render(tasks=None) -> str:
    """Markdown: for each task (name -> Task class; default: every registered task) a table of
    its declared metrics: name, better direction, the gate's default rule, headline/ranking, unit,
    definition."""
    if tasks is None:
        from sae_bench.core import registry

        tasks = registry.all_tasks()
    out = []
    for name, cls in sorted(tasks.items()):
        out += [f"### `{name}` (version {cls.version})", "", _cell(cls.description), "",
                "| metric | better | gate default | shown | unit | definition |",
                "|---|---|---|---|---|---|"]
        for spec in cls.metrics:
            better = {"higher": "higher", "lower": "lower", "none": "—"}[spec.direction]
            place = ", ".join(p for p in (f"headline {spec.headline}" if spec.headline is not None else "",
                                          f"ranks rows ({spec.ranking})" if spec.ranking is not None else "") if p)
            name = f"{spec.name}[/part]" if spec.parts else spec.name
            out.append(f"| `{_cell(name)}` | {better} | {_gate(spec)} | {place} | {_cell(spec.unit)} "
                       f"| {_cell(spec.definition)} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def render_text(tasks, width: int = 100) -> str:
    """The same facts as `render` for a terminal or a log: every line fits `width` columns, the
    definition wrapped under its metric."""
    import textwrap

    out = []
    for name, cls in sorted(tasks.items()):
        out += [f"{name} (version {cls.version})", textwrap.fill(cls.description, width, initial_indent="  ",
                                                                 subsequent_indent="  ")]
        for spec in cls.metrics:
            better = {"higher": "higher is better", "lower": "lower is better", "none": "no better side"}[spec.direction]
            facts = ", ".join(p for p in (better, _gate(spec) if spec.direction != "none" else "",
                                          f"unit {spec.unit}" if spec.unit else "",
                                          f"headline {spec.headline}" if spec.headline is not None else "") if p)
            metric = f"{spec.name}[/part]" if spec.parts else spec.name
            out.append(textwrap.fill(f"{metric}: {facts}", width, initial_indent="  - ", subsequent_indent="      "))
            out.append(textwrap.fill(spec.definition, width, initial_indent="      ", subsequent_indent="      ",
                                     break_long_words=True))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def generated_part(text: str, source: str = "docs/metrics.md") -> str:
    """What stands between the markers of `text`."""
    if BEGIN not in text or END not in text:
        raise InputError(source, "has no generated metric tables (the BEGIN/END markers are missing)")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def with_tables(text: str, tables: str, source: str = "docs/metrics.md") -> str:
    """`text` with the part between its markers replaced by `tables`."""
    generated_part(text, source)
    head, rest = text.split(BEGIN, 1)
    return f"{head}{BEGIN}\n\n{tables.strip()}\n\n{END}{rest.split(END, 1)[1]}"
