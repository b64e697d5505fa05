"""Which max-activation parquet belongs to which checkpoint (the rule the `maxact_repro` task uses).

In order, the first that applies wins:
  1. an explicit file (the task option `parquet`): used as given, even for another checkpoint
     (that is how reproduction against a different SAE is measured); a metadata mismatch is noted;
  2. the run resource `maxact` (suite `resources` / EvalContext.resources):
       - a .parquet file: used when its file metadata names this checkpoint (sha256) and hookpoint,
         or names neither;
       - a .json mapping {"<weights sha256>" or "<hookpoint>": "file.parquet"} (paths relative to
         the JSON file): the sha256 key first, then the hookpoint;
       - a folder: the parquet whose metadata names this checkpoint's sha256 and hookpoint, else one
         named after the hookpoint (`layers.17.parquet`, `language_model.layers.17.parquet`);
  3. `maxact.parquet` beside the checkpoint's weights file (same metadata check as 2);
  4. the bundled fixtures folder `fixtures/maxact/`, by metadata (how fixture checkpoints find
     theirs).
Otherwise there is none (the task skips with a reason). Files are matched on their footer
metadata only (cheap). This module never reads rows and never runs a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from sae_bench.core.errors import DataError
from sae_bench.inputs.input_files import read_json
from sae_bench.tasks.maxact_repro.schema import read_maxact_metadata


class Located(NamedTuple):
    path: Path
    how: str  # which rule found it
    metadata: dict[str, Any]


def short_hookpoint(name: str | None) -> str | None:
    """`model.language_model.layers.3` / `run/language_model.layers.3` -> `layers.3` (others unchanged)."""
    if not name:
        return name
    name = name.rsplit("/", 1)[-1]
    i = name.rfind("layers.")
    return name[i:] if i >= 0 else name


def metadata_mismatch(meta: dict[str, Any], sha256: str | None, hookpoint: str) -> str | None:
    """Why a file's metadata says it describes another checkpoint or hookpoint (None if it does not)."""
    file_sha = meta.get("checkpoint_sha256")
    if file_sha and sha256 and file_sha != sha256:
        return f"built for checkpoint sha256 {file_sha[:12]}, this checkpoint is {sha256[:12]}"
    file_hp = meta.get("hookpoint")
    if file_hp and short_hookpoint(file_hp) != short_hookpoint(hookpoint):
        return f"built at hookpoint {file_hp}, evaluating at {hookpoint}"
    return None


def _matches(path: Path, sha256: str | None, hookpoint: str) -> dict[str, Any] | None:
    meta = read_maxact_metadata(path)
    return None if metadata_mismatch(meta, sha256, hookpoint) else meta


def _from_mapping(path: Path, sha256: str | None, hookpoint: str) -> Path | None:
    mapping = read_json(path, DataError, "max-activation mapping")
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise DataError(path, 'max-activation mapping must be a JSON object {"<sha256 or hookpoint>": "file.parquet"}')
    for key in (sha256, hookpoint, short_hookpoint(hookpoint)):
        if key and key in mapping:
            return path.parent / mapping[key]
    return None


def _from_folder(folder: Path, sha256: str | None, hookpoint: str) -> tuple[Path, dict] | None:
    files = sorted(folder.glob("*.parquet"))
    for path in files:
        meta = read_maxact_metadata(path)
        if meta.get("checkpoint_sha256") and not metadata_mismatch(meta, sha256, hookpoint):
            return path, meta
    short = short_hookpoint(hookpoint)
    for path in files:
        if short_hookpoint(path.stem) == short and _matches(path, sha256, hookpoint) is not None:
            return path, read_maxact_metadata(path)
    return None


def _resource(ref: Path, sha256: str | None, hookpoint: str, how: str) -> Located | None:
    if not ref.exists():
        raise DataError(ref, "max-activation resource not found")
    if ref.is_dir():
        found = _from_folder(ref, sha256, hookpoint)
        return Located(found[0], how, found[1]) if found else None
    if ref.suffix.lower() == ".json":
        target = _from_mapping(ref, sha256, hookpoint)
        if target is None:
            return None
        return Located(target, how, read_maxact_metadata(target))
    meta = _matches(ref, sha256, hookpoint)
    return Located(ref, how, meta) if meta is not None else None


def find_parquet(sae, hookpoint: str, *, explicit: str | Path | None = None,
                 resources: dict[str, Any] | None = None, bundled: Path | None = None) -> Located | None:
    """The parquet for `sae` at `hookpoint` by the module's rule, or None."""
    sha256 = sae.metadata.weights_sha256
    if explicit:
        path = Path(explicit)
        return Located(path, "option", read_maxact_metadata(path))
    resource = (resources or {}).get("maxact")
    if resource:
        found = _resource(Path(resource), sha256, hookpoint, "resource")
        if found is not None:
            return found
    weights = sae.metadata.weights_path
    if weights:
        sibling = Path(weights).parent / "maxact.parquet"
        if sibling.is_file():
            found = _resource(sibling, sha256, hookpoint, "beside the weights")
            if found is not None:
                return found
    if bundled is None:
        from sae_bench.fixtures import MAXACT_DIR as bundled
    if Path(bundled).is_dir():
        found = _from_folder(Path(bundled), sha256, hookpoint)
        if found is not None and found[1].get("checkpoint_sha256"):
            return Located(found[0], "bundled fixtures", found[1])
    return None
