"""The package list, found from the folders (pyproject.toml holds everything else).

pyproject.toml maps tasks/ to `sae_bench.tasks` and fixtures/ to `sae_bench.fixtures`; setuptools'
own discovery cannot see packages under a mapped folder, so they are listed here from the tree:
a new package folder (a new task's folder too) ships without editing any list.
"""

from setuptools import find_packages, setup

MAPPED = {"sae_bench": "sae_bench", "sae_bench.tasks": "tasks", "sae_bench.fixtures": "fixtures"}


def packages() -> list[str]:
    """Every package under the mapped folders, named as installed."""
    found = []
    for name, folder in MAPPED.items():
        found += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]
    return sorted(set(found))


if __name__ == "__main__":
    setup(packages=packages())
