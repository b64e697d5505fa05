"""The docs live in the repository and agree with the code: docs/metrics.md's tables are the
tasks' MetricSpecs, and no Markdown file links outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

from sae_bench.cli import main
from sae_bench.core.metric_docs import generated_part, render, with_tables
from sae_bench.core.task_api import MetricSpec, Task

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)")


def test_metrics_md_tables_are_the_declared_specs():
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert generated_part(text) == render(), "docs/metrics.md is stale: run `sae-bench metrics --write docs/metrics.md`"


def test_render_shows_direction_gate_default_and_definition():
    class Toy(Task):
        name, version, description = "toy", "3", "a toy"
        metrics = (MetricSpec("err|rate", "lower", "errors | tokens", "fraction", 0.05, relative=True, ranking=1),
                   MetricSpec("size", "none", "latents", "latents", headline=2))

    lines = render({"toy": Toy}).splitlines()
    assert lines[0] == "### `toy` (version 3)"
    assert "| `err\\|rate` | lower | worse by > 5% of baseline | ranks rows (1) | fraction | errors \\| tokens |" in lines
    assert "| `size` | — | not gated | headline 2 | latents | latents |" in lines


def test_metrics_write_replaces_only_the_generated_part(tmp_path, capsys):
    doc = tmp_path / "metrics.md"
    stale = with_tables((ROOT / "docs" / "metrics.md").read_text(encoding="utf-8"), "| stale |")
    doc.write_text("prose before\n" + stale + "prose after\n", encoding="utf-8")
    assert main(["metrics", "--write", str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("prose before\n") and text.endswith("prose after\n")
    assert generated_part(text) == render() and "stale" not in text


def test_markdown_links_stay_inside_the_repository():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+://", target):
                continue
            resolved = (path.parent / target).resolve()
            assert resolved.is_relative_to(ROOT), f"{path.name} links outside the repository: {target}"
            assert resolved.exists(), f"{path.name} links to a missing file: {target}"
    assert "../shared" not in (ROOT / "README.md").read_text(encoding="utf-8")
