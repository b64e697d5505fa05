"""Make `sae_bench` (with its mapped subpackages `sae_bench.tasks` and `sae_bench.fixtures`) importable
from a plain checkout, without installing it: the benchmarks must run on machines where nothing
can be installed (e.g. `PYTHONPATH=. python benchmarks/bench_shapes.py`). Never changes an
installed package: when `sae_bench.tasks` imports already, this does nothing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ensure() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import sae_bench

    for name in ("tasks", "fixtures"):  # pyproject's package-dir mapping: sae_bench.<name> = <name>/
        full = f"sae_bench.{name}"
        if full in sys.modules or importlib.util.find_spec(full) is not None:
            continue
        spec = importlib.util.spec_from_file_location(full, ROOT / name / "__init__.py",
                                                      submodule_search_locations=[str(ROOT / name)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
        setattr(sae_bench, name, module)
