"""Packaging: every package folder ships (setup.py finds them), and tasks/ + fixtures/ map into sae_bench."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"sae_bench": ROOT / "sae_bench", "sae_bench.tasks": ROOT / "tasks", "sae_bench.fixtures": ROOT / "fixtures"}


def _declared():
    """The packages setup.py gives setuptools, and pyproject.toml."""
    import runpy

    packages = runpy.run_path(str(ROOT / "setup.py"), run_name="packages_only")["packages"]()
    return set(packages), tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_ships():
    declared, _ = _declared()
    found = set()
    for name, folder in MAPPED.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder)
            if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                continue
            found.add(".".join((name, *rel.parts)) if rel.parts else name)
    assert found <= declared, f"not found by setup.py: {sorted(found - declared)}"
    assert "sae_bench.tasks.probing" in declared and "sae_bench.run" in declared


def test_distribution_name_differs_from_saebench_and_constraints_pin_torch():
    _, config = _declared()
    assert config["project"]["name"] != "sae-bench"
    assert "sparsify" not in [d.split(">")[0].split("=")[0].strip() for d in config["project"]["dependencies"]]
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text()
    assert not any(d.startswith("torch==") for d in config["project"]["dependencies"])


def test_tasks_package_resolves_to_top_level_folder():
    import sae_bench.tasks

    assert Path(sae_bench.tasks.__file__).resolve().parent == ROOT / "tasks"


def test_public_api_names_resolve_and_import_is_light():
    import subprocess
    import sys

    import sae_bench

    for name in sae_bench.__all__:
        assert getattr(sae_bench, name) is not None, name
    code = "import sys, sae_bench; assert 'torch' not in sys.modules, 'import sae_bench pulled in torch'"
    subprocess.run([sys.executable, "-c", code], check=True)
