"""Labeled probe texts: positives and negatives per feature-map category, split train/test.

The shipped set (`data/probe_set.jsonl` beside this module, installed as
`sae_bench/tasks/probing/data/probe_set.jsonl`) was written for this project. Users replace it
with the `probe_set` option of the probing task: any JSON-lines file with one record per text,

    {"text": str, "category": str, "label": 1 | 0, "split": "train" | "test"}

(extra keys are allowed and ignored). `label` 1 means the text is an instance of `category`,
0 a neutral text of similar length used as that category's negative. Every category needs at
least one positive and one negative in each split. This module only reads and validates the
file; it never runs a model and never scores anything. Malformed input raises a one-line
`DataError` naming the file and line.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from sae_bench.core.errors import DataError
from sae_bench.core.errors import os_problem
from sae_bench.inputs.input_files import unique_keys_object

SPLITS = ("train", "test")
REQUIRED_KEYS = ("text", "category", "label", "split")


DATA_DIR = Path(__file__).resolve().parent / "data"  # the probing task's own data, beside its code


def default_probe_set_path() -> Path:
    """The shipped probe set (editable install or wheel: it sits beside this module)."""
    return DATA_DIR / "probe_set.jsonl"


@dataclass(frozen=True)
class ProbeText:
    text: str
    category: str
    label: int  # 1 positive, 0 negative
    split: str  # "train" | "test"


@dataclass(frozen=True)
class ProbeSet:
    path: str
    sha256: str  # of the file's bytes: goes into results so replaced sets are never ranked together
    items: tuple[ProbeText, ...]

    @property
    def texts(self) -> list[str]:
        return [item.text for item in self.items]

    @property
    def categories(self) -> list[str]:
        """Categories in first-appearance order."""
        return list(dict.fromkeys(item.category for item in self.items))

    def rows(self, category: str, split: str | None = None) -> list[int]:
        """Indices into `items` for one category (and split, if given)."""
        return [i for i, item in enumerate(self.items)
                if item.category == category and (split is None or item.split == split)]

    def counts(self) -> dict[str, dict[str, int]]:
        """{category: {"train_pos", "train_neg", "test_pos", "test_neg"}}."""
        out: dict[str, dict[str, int]] = {}
        for item in self.items:
            key = f"{item.split}_{'pos' if item.label else 'neg'}"
            out.setdefault(item.category, {"train_pos": 0, "train_neg": 0, "test_pos": 0, "test_neg": 0})[key] += 1
        return out


def _parse_line(path: Path, lineno: int, line: str) -> ProbeText:
    where = f"{path}:{lineno}"
    try:
        record = json.loads(line, object_pairs_hook=unique_keys_object)
    except ValueError as exc:
        raise DataError(where, f"not valid JSON ({getattr(exc, 'msg', exc)})") from exc
    if not isinstance(record, dict):
        raise DataError(where, "each line must be a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        raise DataError(where, f"missing key(s) {', '.join(missing)} (need {', '.join(REQUIRED_KEYS)})")
    text, category, label, split = (record[k] for k in REQUIRED_KEYS)
    if not isinstance(text, str) or not text.strip():
        raise DataError(where, "'text' must be a non-empty string")
    if not isinstance(category, str) or not category.strip():
        raise DataError(where, "'category' must be a non-empty string")
    if isinstance(label, bool) or label not in (0, 1):
        raise DataError(where, f"'label' must be 1 or 0, got {label!r}")
    if split not in SPLITS:
        raise DataError(where, f"'split' must be 'train' or 'test', got {split!r}")
    return ProbeText(text, category.strip(), int(label), split)


def load_probe_set(path: str | os.PathLike | None = None) -> ProbeSet:
    """Read and validate a probe set (the shipped one when `path` is None)."""
    path = Path(path) if path is not None else default_probe_set_path()
    if not path.is_file():
        raise DataError(path, "probe set file not found")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read probe set: {os_problem(exc)}") from None
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"probe set is not UTF-8 (byte {exc.start})") from exc
    items: list[ProbeText] = []
    seen: dict[tuple[str, str], int] = {}
    for lineno, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        item = _parse_line(path, lineno, line)
        key = (item.category, item.text)
        if key in seen:
            raise DataError(f"{path}:{lineno}", f"duplicate text in category {item.category!r} (first on line {seen[key]})")
        seen[key] = lineno
        items.append(item)
    if not items:
        raise DataError(path, "probe set has no records")
    probe_set = ProbeSet(str(path), hashlib.sha256(raw).hexdigest(), tuple(items))
    for category, count in probe_set.counts().items():
        empty = [name for name, n in count.items() if n == 0]
        if empty:
            raise DataError(path, f"category {category!r} has no {', '.join(empty)} examples "
                                  "(every category needs positives and negatives in both splits)")
    return probe_set
