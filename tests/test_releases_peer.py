"""Opt-in (`-m peer`): our release registry against SAELens's `pretrained_saes.yaml`, for the hub
repositories both list. The yaml is read from the sae-lens wheel (downloaded once with
`pip download --no-deps` into ~/.cache/sae-bench-peers, never installed). This check reads the
yaml itself and our registry through `sae_bench.inputs.releases`; it shares no code with
`benchmarks/saelens_releases.py`, which generated our entries."""

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sae_bench.inputs import releases

pytestmark = pytest.mark.peer

CACHE = Path(os.environ.get("SAE_BENCH_PEERS_CACHE") or Path.home() / ".cache" / "sae-bench-peers") / "saelens_wheel"


@pytest.fixture(scope="module")
def saelens() -> dict:
    yaml = pytest.importorskip("yaml")
    if not list(CACHE.glob("sae_lens-*.whl")):
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "sae-lens", "-d", str(CACHE)],
                       check=True)
    wheel = sorted(CACHE.glob("sae_lens-*.whl"))[-1]
    with zipfile.ZipFile(wheel) as archive:
        return yaml.safe_load(archive.read("sae_lens/pretrained_saes.yaml"))


def _layer(path: str) -> int:
    return int(re.search(r"layer_(\d+)_", path).group(1))


def test_every_gemma_scope_2_release_is_ours(saelens):
    theirs = sorted(name for name in saelens if name.startswith("gemma-scope-2-"))
    assert len(theirs) >= 70
    assert {re.match(r"gemma-scope-2-(\d+[mb])-", n).group(1) for n in theirs} == {"270m", "1b", "4b", "12b", "27b"}
    missing = [name for name in theirs if name not in releases.releases()]
    assert not missing, f"SAELens lists releases we do not: {missing}"


def test_repos_models_layers_and_folders_agree(saelens):
    shared_hubs = {r["repo_id"] for r in saelens.values()} & {r.hub for r in releases.releases().values()}
    assert shared_hubs, "no hub repository in common"
    problems = []
    for name, theirs in saelens.items():
        if theirs["repo_id"] not in shared_hubs:
            continue
        ours = releases.releases().get(name)
        if ours is None:
            problems.append(f"{name}: not in our registry")
            continue
        if (ours.hub, ours.model) != (theirs["repo_id"], theirs["model"]):
            problems.append(f"{name}: ours {ours.hub} / {ours.model}, theirs {theirs['repo_id']} / {theirs['model']}")
        their_folders: dict[int, set[str]] = {}
        for sae in theirs["saes"]:
            their_folders.setdefault(_layer(sae["path"]), set()).add(sae["path"])
        if sorted(their_folders) != list(ours.layers):
            problems.append(f"{name}: layers ours {list(ours.layers)}, theirs {sorted(their_folders)}")
        for layer, folders in their_folders.items():
            if set(ours.folders.get(layer, ())) != folders:
                problems.append(f"{name}: layer {layer} folders differ: "
                                f"{sorted(set(ours.folders.get(layer, ())) ^ folders)[:4]}")
        for checkpoint in releases.expand(name):  # what --release NAME evaluates is a published folder
            if checkpoint.subfolder not in their_folders.get(checkpoint.layer, ()):
                problems.append(f"{name}: we would evaluate {checkpoint.subfolder}, which SAELens does not list")
    # and no release of ours in those repositories that SAELens does not know
    for release in releases.releases().values():
        if release.hub in shared_hubs and release.name not in saelens:
            problems.append(f"{release.name}: ours only ({release.hub})")
    assert not problems, "\n".join(problems[:20])
