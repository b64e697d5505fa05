"""README examples are tests (issue 15): every fenced shell block of README.md and
leaderboard/README.md runs as written, in order, on the bundled fixtures, and must succeed.

The blocks run with `bash -e` in one temporary folder laid out like the repository root (a copy
of fixtures/ and leaderboard/), with `sae-bench` on PATH as `python -m sae_bench` of this
interpreter, offline. A block that cannot run offline (hub ids, GPUs, installing packages) is
preceded by `<!-- not-run: reason -->`; there must be few of those. A command shown to fail ends
with `# exit N` and must exit with N.

Shared work, to keep this in the default suite: the bundled fixture suite's records are the ones
stored in the committed leaderboard (its newest version's results/), produced by exactly the
`sae-bench run --quiet` the README shows; they are placed in results/fixtures first, so the
README's `sae-bench run` resumes from them as any interrupted run would (it still loads the model,
the corpus and every checkpoint, and checks each record's task version, config, weights sha256
and corpus hash before reusing it). tests/test_leaderboard_committed.py re-runs the suite from
scratch (slow) and checks its numbers against those records.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "leaderboard" / "README.md"]
SHELL = {"bash", "sh", "shell", "console"}
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(?P<reason>[^>]*?)\s*-->\s*$")
FENCE = re.compile(r"^```(?P<lang>[A-Za-z0-9_+-]*)\s*$")
MAX_NOT_RUN = 5


@dataclass
class Block:
    doc: str
    line: int
    lang: str
    text: str
    not_run: str | None  # the reason, when marked

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, with the not-run marker on the line before it, if any."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        previous = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = NOT_RUN.search(previous)
        blocks.append(Block(path.relative_to(ROOT).as_posix(), start + 1, match.group("lang"), "\n".join(body) + "\n",
                            marker.group("reason") if marker else None))
        i += 1
    return blocks


EXPECT_EXIT = re.compile(r"#\s*exit\s+(?P<code>\d+)\s*$")


def runnable(text: str) -> str:
    """The block as bash runs it: a command whose line ends in `# exit N` (an example of a refusal)
    must exit with N, and the block goes on; every other command must succeed (`bash -e`)."""
    commands, current = [], ""
    for line in text.splitlines():
        current += line + "\n"
        if not line.rstrip().endswith("\\"):
            commands.append(current)
            current = ""
    if current:
        commands.append(current)
    out = []
    for command in commands:
        expected = EXPECT_EXIT.search(command.rstrip())
        if expected:
            code = expected.group("code")
            out.append(f"set +e\n{command.rstrip()}\nrc=$?\nset -e\n"
                       f'[ "$rc" -eq {code} ] || {{ echo "exit $rc, the README says {code}" >&2; exit 97; }}\n')
        else:
            out.append(command)
    return "".join(out)


def test_expected_exit_codes_are_honoured():
    script = runnable("false   # exit 1\ntrue \\\n  && true\n")
    assert subprocess.run(["bash", "-e", "-c", script]).returncode == 0
    assert subprocess.run(["bash", "-e", "-c", runnable("true   # exit 2\n")]).returncode == 97


def all_blocks() -> list[Block]:
    return [b for doc in DOCS for b in fenced_blocks(doc)]


def test_the_parser_sees_markers_and_languages(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text("x\n\n<!-- not-run: needs a GPU -->\n```bash\ntorchrun a\n```\n\n```python\nprint(1)\n```\n"
                   "```sh\nsae-bench tasks\n```\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        blocks = fenced_blocks(doc)
    finally:
        ROOT = saved
    assert [(b.lang, b.not_run, b.line) for b in blocks] == [("bash", "needs a GPU", 4), ("python", None, 8),
                                                             ("sh", None, 11)]


def test_every_command_block_is_tagged_and_few_are_skipped():
    blocks = all_blocks()
    for block in blocks:  # an untagged block of commands would silently escape this test
        if not block.lang:
            assert not re.search(r"^\s*(sae-bench|python|torchrun|pip)\b", block.text, re.M), \
                f"{block.id}: a command block without a language tag (use ```bash)"
    skipped = [b for b in blocks if b.lang in SHELL and b.not_run is not None]
    assert all(b.not_run for b in skipped)
    assert len(skipped) <= MAX_NOT_RUN, [b.id for b in skipped]
    assert sum(b.lang in SHELL and b.not_run is None for b in blocks) >= 3


def latest_records() -> Path:
    """The records of the committed leaderboard's newest version: the fixture suite's current run."""
    index = json.loads((ROOT / "leaderboard" / "index.json").read_text())
    return ROOT / "leaderboard" / index["versions"][-1]["name"] / "results"


def _workspace(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A folder laid out like the repository root, and the environment the blocks run in."""
    work = tmp / "repo"
    work.mkdir()
    shutil.copytree(ROOT / "fixtures", work / "fixtures", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "leaderboard", work / "leaderboard")
    shutil.copytree(latest_records(), work / "results" / "fixtures")  # see the module docstring
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for name, command in (("sae-bench", f'"{sys.executable}" -m sae_bench'), ("python", f'"{sys.executable}"')):
        shim = bin_dir / name  # this interpreter, whatever virtual environment is (not) active
        shim.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    return work, env


def test_readme_shell_blocks_run_on_the_fixtures(tmp_path):
    work, env = _workspace(tmp_path)
    outputs = {}
    for block in all_blocks():
        if block.lang not in SHELL or block.not_run is not None:
            continue
        proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", runnable(block.text)], cwd=work, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{block.id} failed ({proc.returncode}):\n{block.text}\n{proc.stderr[-3000:]}"
        assert "Traceback" not in proc.stderr, f"{block.id}:\n{proc.stderr[-3000:]}"
        outputs[block.id] = proc.stdout
    everything = "\n".join(outputs.values())
    # the promises the examples make, checked on what they printed
    start = everything.rfind('{\n  "mode"')
    assert start >= 0, "maxact repro printed no JSON"
    repro, _ = json.JSONDecoder().raw_decode(everything[start:])
    assert repro["mode"] == "exact", repro["notes"]  # the promised exact re-run ...
    assert repro["metrics"]["reproduced_fraction"]["value"] == 1.0  # ... reproduces every feature
    assert "fvu" in everything  # compare results/a results/b printed the metrics side by side
    assert (work / "results/a").is_dir() and (work / "results/b").is_dir()
    assert (work / "rebuilt" / "index.json").is_file()
