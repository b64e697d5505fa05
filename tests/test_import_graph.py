"""The package's modules import one way: no cycle among them, counting every import statement
(module level, inside functions, and under `if TYPE_CHECKING:`), read from the source with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The source folders of the package and the module names they hold (tasks/ is installed as sae_bench.tasks).
ROOTS = {"sae_bench": REPO / "sae_bench", "sae_bench.tasks": REPO / "tasks"}


def module_files() -> dict[str, Path]:
    """Module name -> file, for every .py file of the package (a package is its __init__.py)."""
    found = {}
    for prefix, root in ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if "lm_eval_tasks" in parts:  # lm-eval imports these by path, not as modules of the package
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([prefix, *parts])] = path
    return found


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `name` imports, anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` the module mod
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in modules and t != name}
    return found


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` (module -> modules it imports), None when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_relative_and_package_imports_resolve_to_modules(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\nfrom .c import thing\nif False:\n    def f():\n        import pkg.d\n")
    modules = {"pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d"}
    assert imports_of("pkg.a", pkg / "a.py", modules) == {"pkg.b", "pkg.c", "pkg.d"}


def test_no_import_cycle_in_the_package():
    files = module_files()
    assert "sae_bench.run.runner" in files and "sae_bench.tasks.probing" in files
    graph = {name: imports_of(name, path, set(files)) for name, path in files.items()}
    found = cycle(graph)
    assert found is None, "import cycle: " + " -> ".join(found)
