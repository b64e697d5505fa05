"""Tasks own everything about themselves: no core module (sae_bench/**) names a built-in task, in a
string (a record lookup, a list of tasks, a module path) or an import of a task module. What a core
module needs to know about a task it reads from the task's declarations through the registry
(`needs_clean_final`, `runs_suffix`, `page_sections`, `row_plots`, `commands`, MetricSpec flags)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# (file relative to the repository, string) -> why naming the task there is generic, not task logic.
# None is needed today: docstrings and comments may name tasks as examples (prose, not logic).
ALLOWED: dict[tuple[str, str], str] = {}


def task_names() -> set[str]:
    """Every built-in task's `name` (the `name = "..."` of each class in tasks/) and each task's folder or module."""
    names = set()
    for path in (REPO / "tasks").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if (isinstance(item, ast.Assign) and [getattr(t, "id", None) for t in item.targets] == ["name"]
                            and isinstance(item.value, ast.Constant) and isinstance(item.value.value, str)):
                        names.add(item.value.value)
    names |= {p.stem for p in (REPO / "tasks").iterdir() if not p.name.startswith(("_", "."))}
    return names


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def task_mentions(path: Path, names: set[str]) -> list[tuple[int, str]]:
    """(line, string) for each string constant (docstrings aside) that is a task name or names a task
    module, and each import of a task module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    module = re.compile(r"sae_bench\.tasks\.(\w+)")
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
            if text in names or any(m.group(1) in names for m in module.finditer(text)):
                found.append((node.lineno, text))
        elif isinstance(node, ast.ImportFrom) and node.module and module.match(node.module):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if module.match(a.name)]
    return found


def test_the_check_sees_a_task_name_in_a_string_and_an_import(tmp_path):
    source = tmp_path / "core.py"
    source.write_text('"""probing in a docstring is prose."""\nfrom sae_bench.tasks.probing import x\n'
                      'def f(row):\n    return lookup(row, "probing")\n')
    assert task_mentions(source, {"probing"}) == [(2, "sae_bench.tasks.probing"), (4, "probing")]


def test_no_core_module_names_a_task():
    names = task_names()
    assert {"probing", "spliced_loss", "maxact_repro", "sparsity"} <= names
    found = []
    for path in sorted((REPO / "sae_bench").rglob("*.py")):
        where = path.relative_to(REPO).as_posix()
        found += [f"{where}:{line}: {text!r}" for line, text in task_mentions(path, names)
                  if (where, text) not in ALLOWED]
    assert not found, "core modules naming a task (move that code into the task's folder):\n" + "\n".join(found)

