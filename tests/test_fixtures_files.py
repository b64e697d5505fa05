"""The committed fixtures are exactly what the builder's manifest says, small, and self-consistent."""

import hashlib
import json

from sae_bench.fixtures import FIXTURES_DIR, MANIFEST_PATH, SUITE_PATH, load_suite
from sae_bench.fixtures.build import OWNED_PATHS, owned_files, suite


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_matches_committed_files():
    manifest = json.loads(MANIFEST_PATH.read_text())
    listed = manifest["files"]
    on_disk = {p.relative_to(FIXTURES_DIR).as_posix() for p in owned_files(FIXTURES_DIR)}
    assert set(listed) == on_disk, f"unlisted: {on_disk - set(listed)}, missing: {set(listed) - on_disk}"
    mismatched = [rel for rel, sha in listed.items() if _sha256(FIXTURES_DIR / rel) != sha]
    assert not mismatched, f"files changed since the build: {mismatched}"


def test_total_fixture_size_under_5mb():
    total = sum(p.stat().st_size for p in owned_files(FIXTURES_DIR)) + MANIFEST_PATH.stat().st_size
    assert total < 5 * 1024 * 1024, total


def test_suite_file_is_what_the_builder_writes_and_every_path_exists():
    assert json.loads(SUITE_PATH.read_text()) == suite()
    resolved = load_suite()
    assert resolved["seq_len"] == 64
    for key in ("model", "corpus"):
        assert (FIXTURES_DIR / resolved[key]).exists()
    hookpoints = set()
    for ckpt in resolved["checkpoints"]:
        path = FIXTURES_DIR / ckpt["path"]
        assert path.is_absolute() and path.exists(), ckpt
        if ckpt["format"] == "sparsify":
            assert (path / ckpt["hookpoint"] / "cfg.json").is_file()
            assert (path / ckpt["hookpoint"] / "sae.safetensors").is_file()
        elif ckpt["format"] == "saelens":
            assert json.loads((path / "cfg.json").read_text())["hook_name"] == ckpt["hookpoint"]
        hookpoints.add(ckpt["hookpoint"])
    assert hookpoints == {"layers.1", "layers.2", "layers.3", "pooled_final_norm"}
    assert "MANIFEST.json" in OWNED_PATHS and "maxact" not in OWNED_PATHS
