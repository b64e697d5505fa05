"""Which checkpoint format a local file or folder is in, from its file names only.

The formats are the modules of `sae_bench.checkpoints.formats`, each declaring a `CheckpointFormat`
(found by listing the package; a module without one is an error). Rules, formats in their `order`:
a single file -> the first format whose `is_file` accepts it; a folder -> the first format whose
`is_folder` accepts the hookpoint's subfolder, else the folder itself, else the first whose
`is_root` accepts the folder (a sparsify run of hookpoint folders, a folder holding one ErnOS
file). Anything else is a CheckpointError listing what was found and what each format expects.

Must never: open or unpickle weights (pickle-named files are refused by name).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from pathlib import Path

from sae_bench.checkpoints import formats as formats_package
from sae_bench.checkpoints.formats import CheckpointFormat
from sae_bench.checkpoints.safe_tensors import PICKLE_SUFFIXES, refuse_unsafe_suffix
from sae_bench.core.errors import CheckpointError


@functools.cache
def known_formats() -> tuple[CheckpointFormat, ...]:
    """Every format module's declaration, in detection order."""
    found = []
    for info in pkgutil.iter_modules(formats_package.__path__):
        module = importlib.import_module(f"{formats_package.__name__}.{info.name}")
        declared = getattr(module, "FORMAT", None)
        if not isinstance(declared, CheckpointFormat):
            raise TypeError(f"{module.__name__} is a format module but declares no FORMAT = CheckpointFormat(...)")
        found.append(declared)
    return tuple(sorted(found, key=lambda f: (f.order, f.name)))


def format_named(name: str) -> CheckpointFormat:
    return next(f for f in known_formats() if f.name == name)


def format_names() -> tuple[str, ...]:
    return tuple(f.name for f in known_formats())


def check_format(fmt: str | None, source) -> str | None:
    if fmt is not None and fmt not in format_names():
        raise CheckpointError(source, f"unknown checkpoint format {fmt!r} (valid formats: {', '.join(format_names())})")
    return fmt


def _listing(folder: Path, limit: int = 12) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    if not names:
        return "an empty folder"
    return ", ".join(names[:limit]) + (f" ... ({len(names)} entries)" if len(names) > limit else "")


def _either(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def detect_format(path: Path, hookpoint: str | None = None) -> str:
    """The name of the format of a local path (a CheckpointError when none fits)."""
    everything = known_formats()
    if path.is_file():
        refuse_unsafe_suffix(path)
        found = next((f for f in everything if f.is_file(path)), None)
        if found is not None:
            return found.name
        files = [f"{f.expects} ({f.name})" for f in everything if f.is_file is not formats_package.never]
        folders = [f.name for f in everything if f.is_folder is not formats_package.never]
        raise CheckpointError(path, f"cannot tell the checkpoint format of this file: expected {_either(files)} "
                                    f"or a folder ({', '.join(folders)}); valid formats: {', '.join(format_names())}")
    if not path.is_dir():
        raise CheckpointError(path, "no such file or folder")
    for folder in ([path / hookpoint] if hookpoint and (path / hookpoint).is_dir() else []) + [path]:
        found = next((f for f in everything if f.is_folder(folder)), None)
        if found is not None:
            return found.name
    found = next((f for f in everything if f.is_root(path)), None)
    if found is not None:
        return found.name
    pickles = sorted(p.name for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    hint = f"; pickle-based files are never opened ({', '.join(pickles[:5])})" if pickles else ""
    where = f" (or its subfolder {hookpoint!r})" if hookpoint else ""
    raise CheckpointError(path, f"cannot detect the checkpoint format{where}: found {_listing(path)}; expected "
                                f"{_either([f'{f.expects} ({f.name})' for f in everything])}{hint}")
