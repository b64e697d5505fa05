"""Which checkpoint format a local file or folder is in, from its file names only.

Rules: a folder (or its `hookpoint` subfolder) with cfg.json + sae.safetensors, or hookpoint
subfolders holding those -> sparsify; cfg.json + sae_weights.safetensors -> saelens;
params.safetensors -> gemma_scope (Gemma Scope 2); a single .safetensors file (or a folder holding
exactly one) -> ernos. Anything else is a CheckpointError
listing what was found.

Must never: open or unpickle weights (pickle-named files are refused by name).
"""

from __future__ import annotations

from pathlib import Path

from sae_bench.core.errors import CheckpointError

from . import ernos, gemma_scope, saelens, sparsify
from .safe_tensors import PICKLE_SUFFIXES, refuse_unsafe_suffix

# The one table of formats: name -> loader. FORMATS (and every message that lists them) derives from it.
LOADERS = {"sparsify": sparsify.load_sparsify, "saelens": saelens.load_saelens,
           "gemma_scope": gemma_scope.load_gemma_scope, "ernos": ernos.load_ernos}
FORMATS = tuple(LOADERS)


def check_format(fmt: str | None, source) -> str | None:
    if fmt is not None and fmt not in FORMATS:
        raise CheckpointError(source, f"unknown checkpoint format {fmt!r} (valid formats: {', '.join(FORMATS)})")
    return fmt


def _listing(folder: Path, limit: int = 12) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    if not names:
        return "an empty folder"
    return ", ".join(names[:limit]) + (f" ... ({len(names)} entries)" if len(names) > limit else "")


def single_safetensors(folder: Path) -> Path | None:
    """The folder's only top-level .safetensors file, if it has exactly one."""
    files = sorted(p for p in folder.glob("*.safetensors") if p.is_file())
    return files[0] if len(files) == 1 else None


def detect_format(path: Path, hookpoint: str | None = None) -> str:
    """"sparsify" | "saelens" | "gemma_scope" | "ernos" for a local path (a CheckpointError when none fits)."""
    if path.is_file():
        refuse_unsafe_suffix(path)
        if path.suffix.lower() == ".safetensors":
            return "ernos"
        raise CheckpointError(path, "cannot tell the checkpoint format of this file: expected a .safetensors file "
                                    f"(ErnOS) or a folder (sparsify, saelens); valid formats: {', '.join(FORMATS)}")
    if not path.is_dir():
        raise CheckpointError(path, "no such file or folder")
    for folder in ([path / hookpoint] if hookpoint and (path / hookpoint).is_dir() else []) + [path]:
        if (folder / sparsify.CFG_NAME).is_file() and (folder / sparsify.WEIGHTS_NAME).is_file():
            return "sparsify"
        if saelens.is_saelens_folder(folder):
            return "saelens"
        if gemma_scope.is_gemma_scope_folder(folder):
            return "gemma_scope"
    if sparsify.hookpoint_folders(path):
        return "sparsify"
    if single_safetensors(path) is not None:
        return "ernos"
    pickles = sorted(p.name for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    hint = f"; pickle-based files are never opened ({', '.join(pickles[:5])})" if pickles else ""
    where = f" (or its subfolder {hookpoint!r})" if hookpoint else ""
    raise CheckpointError(path, f"cannot detect the checkpoint format{where}: found {_listing(path)}; expected "
                                f"cfg.json + sae.safetensors (sparsify), cfg.json + sae_weights.safetensors (saelens), "
                                f"params.safetensors (gemma_scope) or one .safetensors file (ernos){hint}")
