"""Leaderboard versions: which folder a build goes to, and the index that lists them.

Definitions (the contract):
- The *key set* of a build is the sorted set of comparability keys (task name, task version,
  task config hash, corpus hash) of all records it is built from.
- A *leaderboard version* is a folder `<out>/v<N>/` (N = 1, 2, ...) identified by one key set.
  `<out>/index.json` lists the versions in the order they were opened, each with its key set:
      {"format": 1, "versions": [{"name": "v1", "keys": [{"task", "task_version",
                                                          "config_hash", "corpus_hash"}, ...]}]}
- A build whose key set equals that of an existing version replaces that version's folder with
  the build of the given records (same records -> the same bytes). Any other key set opens a new
  version `v<max N + 1>`. No other version folder is ever touched: a change of a task's meaning
  bumps the task version, hence the key set, hence opens a new leaderboard version, and the old
  numbers stay where they were. A subset or superset of an existing key set is a different key
  set (a new version), never a merge.
- A version folder holds the records it was built from (`results/`), so it can be rebuilt on its
  own, and the whole leaderboard can be reproduced by rebuilding its versions in index order.
- Optionally the index lists *other boards* (`"boards": [{"path": "gemma-3-270m/", "title": ...}]`,
  paths relative to this folder) that the front page links to: one leaderboard per model beside
  another, each with its own versions (`api.link_board`). Absent when there are none.

This module reads and renders the index; it never touches a version folder.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from sae_bench.core.errors import ResultError
from sae_bench.inputs.input_files import read_json
from sae_bench.leaderboard_build.collect import ComparabilityKey

INDEX_FILE = "index.json"
INDEX_FORMAT = 1
_VERSION_NAME = re.compile(r"^v([1-9][0-9]*)$")


@dataclass(frozen=True)
class VersionEntry:
    name: str
    keys: tuple[ComparabilityKey, ...]

    @property
    def number(self) -> int:
        return int(_VERSION_NAME.match(self.name).group(1))  # type: ignore[union-attr]

    def to_json(self) -> dict:
        return {"name": self.name, "keys": [k.to_json() for k in self.keys]}


@dataclass
class LeaderboardIndex:
    versions: list[VersionEntry] = field(default_factory=list)
    boards: list[tuple[str, str]] = field(default_factory=list)  # (relative folder ending in "/", title)

    def find(self, keys: tuple[ComparabilityKey, ...]) -> VersionEntry | None:
        return next((v for v in self.versions if v.keys == keys), None)

    def next_name(self) -> str:
        return f"v{max((v.number for v in self.versions), default=0) + 1}"

    def dumps(self) -> str:
        data = {"format": INDEX_FORMAT, "versions": [v.to_json() for v in self.versions]}
        if self.boards:
            data["boards"] = [{"path": path, "title": title} for path, title in self.boards]
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def key_set(keys) -> tuple[ComparabilityKey, ...]:
    return tuple(sorted(set(keys)))


def load_index(out_dir: str | os.PathLike) -> LeaderboardIndex:
    """The index of `out_dir` (empty when the folder is new); a ResultError naming index.json if it
    is malformed, or if version folders exist without an index (never guess what they hold)."""
    out_dir = Path(out_dir)
    path = out_dir / INDEX_FILE
    if not path.exists():
        strays = sorted(p.name for p in out_dir.glob("v*") if p.is_dir() and _VERSION_NAME.match(p.name)) \
            if out_dir.is_dir() else []
        if strays:
            raise ResultError(path, f"missing, but version folders exist ({', '.join(strays)}): restore it or "
                                    "build into another folder")
        return LeaderboardIndex()
    data = read_json(path, ResultError, "leaderboard index")
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT or not isinstance(data.get("versions"), list):
        raise ResultError(path, f"not a leaderboard index (expected format {INDEX_FORMAT} with a 'versions' list)")
    index = LeaderboardIndex()
    for i, entry in enumerate(data["versions"]):
        where = f"{path} versions[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                or not _VERSION_NAME.match(entry["name"]) or not isinstance(entry.get("keys"), list):
            raise ResultError(where, "needs a 'name' like v1 and a 'keys' list")
        keys = key_set(ComparabilityKey.from_json(k, where) for k in entry["keys"])
        if any(v.name == entry["name"] for v in index.versions):
            raise ResultError(where, f"version {entry['name']} listed twice")
        if index.find(keys) is not None:
            raise ResultError(where, f"same key set as {index.find(keys).name}")  # type: ignore[union-attr]
        index.versions.append(VersionEntry(entry["name"], keys))
    for i, board in enumerate(data.get("boards", [])):
        if not isinstance(board, dict) or not isinstance(board.get("title"), str) \
                or (problem := board_path_problem(board.get("path"))):
            raise ResultError(f"{path} boards[{i}]", "needs a 'title' and a relative folder 'path' ending in '/'"
                                                     + (f" ({problem})" if board.get("path") is not None else ""))
        index.boards.append((board["path"], board["title"]))
    return index


def board_path_problem(path) -> str | None:
    """Why `path` cannot be another board's folder link (None when it can): relative, ending in '/'."""
    if not isinstance(path, str) or not path.endswith("/") or path.startswith("/") or ":" in path or "\\" in path:
        return f"{path!r} is not a relative folder ending in '/'"
    return None


def choose_version(index: LeaderboardIndex, keys: tuple[ComparabilityKey, ...]) -> tuple[str, bool]:
    """(version name, True when it is a new version) for a build with key set `keys`."""
    existing = index.find(keys)
    if existing is not None:
        return existing.name, False
    return index.next_name(), True


def with_version(index: LeaderboardIndex, name: str, keys: tuple[ComparabilityKey, ...]) -> LeaderboardIndex:
    if any(v.name == name for v in index.versions):
        return index
    return LeaderboardIndex(index.versions + [VersionEntry(name, keys)], list(index.boards))
