"""ErnOS feature maps: labelled SAE latents read from `feature_map.json`, strictly validated.

Schema: {"version": 1, "sae_path": str|null, "total_sae_features": int, "mapped_count": int (optional),
"mappings": {"<idx>": {"sae_index": int, "dict_index": int|null, "label": str, "category": str,
"confidence": number|null}}}. `sae_index` must equal its key and lie in [0, d_sae).

The labels are claims to test (single prompts, weak scores), not ground truth. This module must
never guess or repair an entry: any malformed entry is a DataError naming the file and the entry.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sae_bench.inputs import input_files
from sae_bench.core.errors import DataError

SUPPORTED_VERSIONS = (1,)


@dataclass(frozen=True)
class FeatureLabel:
    """One labelled latent."""

    sae_index: int
    dict_index: int | None
    label: str
    category: str
    confidence: float | None


@dataclass(frozen=True)
class FeatureMap:
    """A feature map file's content; `entries` sorted by sae_index."""

    path: str
    sae_path: str | None
    total_sae_features: int
    entries: tuple[FeatureLabel, ...]

    def by_category(self) -> dict[str, list[FeatureLabel]]:
        """Entries grouped by their category string (categories sorted, entries by sae_index)."""
        groups: dict[str, list[FeatureLabel]] = defaultdict(list)
        for entry in self.entries:
            groups[entry.category].append(entry)
        return {category: groups[category] for category in sorted(groups)}

    def __len__(self) -> int:
        return len(self.entries)


def _is_int(value) -> bool:
    return type(value) is int  # bool is not an index


def _is_number(value) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _entry(path: Path, key: str, raw, d_sae: int) -> FeatureLabel:
    where = f"mappings[{key!r}]"
    if not isinstance(raw, dict):
        raise DataError(path, f"{where} must be an object, got {type(raw).__name__}")
    missing = [f for f in ("sae_index", "label", "category") if f not in raw]
    if missing:
        raise DataError(path, f"{where} lacks {', '.join(missing)}")
    index = raw["sae_index"]
    if not _is_int(index):
        raise DataError(path, f"{where}.sae_index must be an integer, got {index!r}")
    if not 0 <= index < d_sae:
        raise DataError(path, f"{where}.sae_index {index} is out of range [0, {d_sae})")
    if key != str(index):
        raise DataError(path, f"{where}.sae_index {index} does not match its key")
    dict_index = raw.get("dict_index")
    if dict_index is not None and not (_is_int(dict_index) and dict_index >= 0):
        raise DataError(path, f"{where}.dict_index must be a non-negative integer or null, got {dict_index!r}")
    for field in ("label", "category"):
        if not isinstance(raw[field], str) or not raw[field].strip():
            raise DataError(path, f"{where}.{field} must be a non-empty string, got {raw[field]!r}")
    confidence = raw.get("confidence")
    if confidence is not None and not _is_number(confidence):
        raise DataError(path, f"{where}.confidence must be a finite number or null, got {confidence!r}")
    return FeatureLabel(index, dict_index, raw["label"], raw["category"],
                        None if confidence is None else float(confidence))


def load_feature_map(path: str | os.PathLike, d_sae: int | None = None) -> FeatureMap:
    """Read and validate a feature map; with `d_sae`, also check it belongs to an SAE that wide."""
    path = Path(path)
    data = input_files.read_json(path, DataError)
    if not isinstance(data, dict):
        raise DataError(path, "a feature map must be a JSON object")
    version = data.get("version")
    if not _is_int(version) or version not in SUPPORTED_VERSIONS:
        raise DataError(path, f"unsupported feature map version {version!r} (supported: {SUPPORTED_VERSIONS})")
    mappings = data.get("mappings")
    if not isinstance(mappings, dict):
        raise DataError(path, "'mappings' must be an object of {index: entry}")
    total = data.get("total_sae_features")
    if total is not None and not (_is_int(total) and total > 0):
        raise DataError(path, f"total_sae_features must be a positive integer, got {total!r}")
    if d_sae is not None and total is not None and total != d_sae:
        raise DataError(path, f"total_sae_features is {total} but the SAE has {d_sae} latents")
    bound = d_sae if d_sae is not None else total
    if bound is None:
        raise DataError(path, "total_sae_features is missing and no SAE width was given")
    sae_path = data.get("sae_path")
    if sae_path is not None and not isinstance(sae_path, str):
        raise DataError(path, f"sae_path must be a string or null, got {sae_path!r}")
    count = data.get("mapped_count")
    if count is not None and (not _is_int(count) or count != len(mappings)):
        raise DataError(path, f"mapped_count {count!r} does not match the {len(mappings)} mappings")
    entries = sorted((_entry(path, key, raw, bound) for key, raw in mappings.items()), key=lambda e: e.sae_index)
    return FeatureMap(str(path), sae_path, bound, tuple(entries))
