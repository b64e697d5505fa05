"""One module per checkpoint format, each declaring `FORMAT = CheckpointFormat(...)`: its name, its
loader and how its files are recognised. `sae_bench.checkpoints.detect` finds them by listing this
package, so a new format is a new module here (and its fixture); nothing else names it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


def never(_path: Path) -> bool:
    return False


@dataclass(frozen=True)
class CheckpointFormat:
    """A checkpoint format as detection and loading see it.

    order: detection order among the formats, lower first; expects: its files, for the error that
    lists what every format expects; is_folder: a folder (the hookpoint's subfolder first) holding
    this format's files; is_root: a folder recognised only after no format's `is_folder` matched
    (a sparsify run of hookpoint folders, a folder holding one ErnOS file); is_file: a single file
    in this format (the folder's one .safetensors is then what the loader gets); hub_files: the
    top-level files a hub repository of this format downloads instead of a hookpoint's folder."""

    name: str
    load: Callable[..., Any]  # (path, *, hookpoint, checkpoint_id, device, **options) -> SparseAutoencoder
    order: int
    expects: str
    is_folder: Callable[[Path], bool] = never
    is_root: Callable[[Path], bool] = never
    is_file: Callable[[Path], bool] = never
    hub_files: tuple[str, ...] = ()
