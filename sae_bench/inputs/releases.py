"""The release registry: known Gemma SAE families, read from the one data file `releases.json`.

For: `sae-bench releases` (the listing), `--checkpoint NAME:LAYER` and `--release NAME --layers
6,17,28` (expansion into hub checkpoints), `--model` defaulting to the release's model, and the
model-mismatch guard (the release says which model its weights were trained on).

A release: hub (repository id), model (what it was trained on), format, subfolder and hookpoint
templates over {layer} (subfolder None: the repository's top-level files, ErnOS), layers (the
ones published), optional output_hookpoint (transcoders), d_in, d_sae, description, notes, and
optionally every published folder per layer (`folders`; the Gemma Scope 2 entries, generated from
SAELens's list by `benchmarks/saelens_releases.py`), where a layer whose folder differs from the
template's default is evaluated at its first listed folder. `aliases` maps old names to new ones.
Must never: download anything, or accept a layer the release does not publish (or names twice).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from sae_bench.core.errors import InputError

REGISTRY_PATH = Path(__file__).with_name("releases.json")
_SHORT_REF = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*):(\d+)$")


@dataclass(frozen=True)
class Release:
    name: str
    hub: str
    model: str
    format: str
    subfolder: str | None
    hookpoint: str
    layers: tuple[int, ...]
    output_hookpoint: str | None = None
    d_in: int | None = None
    d_sae: int | None = None
    description: str = ""
    notes: str = ""
    folders: dict[int, tuple[str, ...]] = field(default_factory=dict, compare=False)  # every published folder
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def subfolder_for(self, layer: int | None) -> str | None:
        """The folder evaluated at `layer`: the template's, or the layer's first published one when the
        release lists its folders and the template's is not among them."""
        if self.subfolder is None:
            return None
        default = self.subfolder.format(layer=layer)
        published = self.folders.get(layer) if layer is not None else None
        return published[0] if published and default not in published else default

    def hookpoint_for(self, layer: int | None) -> str:
        return self.hookpoint.format(layer=layer)


@dataclass(frozen=True)
class ReleaseCheckpoint:
    """One checkpoint of a release: what `load_checkpoint` needs, and the model it was trained on."""

    release: str
    layer: int | None
    ref: str  # hub id
    subfolder: str | None
    hookpoint: str
    format: str
    model: str

    @property
    def label(self) -> str:
        return f"{self.release}:{self.layer}" if self.layer is not None else self.release


@lru_cache(maxsize=1)
def releases() -> dict[str, Release]:
    """Every known release by name (the packaged data file, read once)."""
    data = json.loads(REGISTRY_PATH.read_text(encoding="utf-8"))
    known = {f for f in Release.__dataclass_fields__ if f not in ("name", "extra", "layers", "folders")}
    out = {}
    for name, entry in data["releases"].items():
        fields = {k: v for k, v in entry.items() if k in known}
        folders = {int(layer): tuple(names) for layer, names in entry.get("folders", {}).items()}
        out[name] = Release(name=name, layers=tuple(entry.get("layers", ())), folders=folders, **fields,
                            extra={k: v for k, v in entry.items()
                                   if k not in known and k not in ("layers", "folders")})
    return out


@lru_cache(maxsize=1)
def aliases() -> dict[str, str]:
    """Old release names -> current ones (the data file's `aliases`)."""
    return dict(json.loads(REGISTRY_PATH.read_text(encoding="utf-8")).get("aliases", {}))


def accepted_names() -> list[str]:
    """Every name `--release` takes: the releases and their old names (suggested when one is misspelt)."""
    return [*releases(), *aliases()]


def get_release(name: str) -> Release:
    found = releases().get(aliases().get(name, name))
    if found is None:
        from sae_bench.core.names import unknown

        raise InputError(f"--release {name}",
                         unknown("release", name, accepted_names()) + " (sae-bench releases lists them)")
    return found


def expand(name: str, layers: list[int] | None = None) -> list[ReleaseCheckpoint]:
    """The checkpoints of release `name` at `layers` (None: every published layer)."""
    release = get_release(name)
    name = release.name
    if layers is not None:
        twice = sorted({layer for layer in layers if layers.count(layer) > 1})
        if twice:
            raise InputError(f"--release {name} --layers {','.join(map(str, layers))}",
                             f"layer {twice[0]} is named twice: name each layer once")
    if not release.layers:
        if layers:
            raise InputError(f"--release {name} --layers", "this release has no layers (one checkpoint)")
        chosen: list[int | None] = [None]
    else:
        chosen = list(release.layers) if layers is None else list(layers)
        missing = [layer for layer in chosen if layer not in release.layers]
        if missing:
            raise InputError(f"{name}:{missing[0]}", f"release {name} publishes layers "
                                                     f"{', '.join(map(str, release.layers))} only")
    return [ReleaseCheckpoint(release=name, layer=layer, ref=release.hub, subfolder=release.subfolder_for(layer),
                              hookpoint=release.hookpoint_for(layer), format=release.format, model=release.model)
            for layer in chosen]


def parse_layers(text: str) -> list[int]:
    """'6,17,28' -> [6, 17, 28] (a one-line InputError otherwise)."""
    try:
        layers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"--layers {text}", "expected comma-separated layer numbers, e.g. 6,17,28") from None
    if not layers or any(layer < 0 for layer in layers):
        raise InputError(f"--layers {text}", "expected comma-separated non-negative layer numbers")
    return layers


def parse_short_ref(ref: str) -> ReleaseCheckpoint | None:
    """`NAME:LAYER` of a known release -> its checkpoint; None when `ref` is not of that form (then it
    is a path or hub id); an InputError listing the releases when NAME is none of them."""
    match = _SHORT_REF.match(ref)
    if match is None:
        return None
    name = aliases().get(match.group(1), match.group(1))
    if name not in releases():
        if "." in name:  # looks like a file name (`sae.safetensors:3`): left to the path checks
            return None
        from sae_bench.core.names import unknown

        raise InputError(ref, unknown("release", name, accepted_names()) + " (sae-bench releases lists them)")
    return expand(name, [int(match.group(2))])[0]


def format_listing(wide: bool = False) -> str:
    """The `sae-bench releases` table: one row per release with every column (`wide`), else rows
    that fit 100 columns: the release, its model, format and layers, and under it hub and hookpoint."""
    rows = [("release", "hub", "model", "format", "layers", "hookpoint")]
    for r in sorted(releases().values(), key=lambda r: r.name):
        layers = ",".join(map(str, r.layers)) if len(r.layers) <= 6 else f"{r.layers[0]}-{r.layers[-1]}"
        hookpoint = r.hookpoint + (f" -> {r.output_hookpoint}" if r.output_hookpoint else "")
        rows.append((r.name, r.hub, r.model, r.format, layers or "-", hookpoint))
    columns = range(len(rows[0])) if wide else (0, 2, 3, 4)
    widths = {i: max(len(row[i]) for row in rows) for i in columns}
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(row[i].ljust(widths[i]) for i in columns).rstrip())
        if not wide and n:
            lines.append(f"    hub {row[1]}, reads {row[5]}")
    return "\n".join(lines)


def format_folders(name: str) -> str:
    """`sae-bench releases --folders NAME`: per layer, the folder `--release` evaluates, then the others."""
    release = get_release(name)
    lines = [f"{release.name}: {release.hub} ({release.model})"]
    for layer in release.layers:
        chosen = release.subfolder_for(layer)
        others = [f for f in release.folders.get(layer, ()) if f != chosen]
        lines.append(f"  {layer}: {chosen}" + (f"  (also: {', '.join(others)})" if others else ""))
    return "\n".join(lines)
