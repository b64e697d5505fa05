"""Bad checkpoints and options fail with one-line InputErrors that name the file and the problem."""

import json
import os
import pickle
import shutil

import pytest
import torch
from safetensors.torch import save_file

from sae_bench.checkpoints import load_checkpoint, load_feature_map
from sae_bench.checkpoints.safe_tensors import check_tensor, read_header, sha256_file
from sae_bench.core.errors import CheckpointError, DataError, InputError, one_line
from sae_bench.fixtures import SAES_DIR

F, D = 32, 8
ERNOS_FILE = SAES_DIR / "ernos/tiny_sae.safetensors"
SPARSIFY_L2 = SAES_DIR / "sparsify/tiny-gemma4-8x/layers.2"


def ernos_tensors(F=F, D=D, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"W_enc": torch.randn(F, D, generator=g), "b_enc": torch.randn(F, generator=g),
            "W_dec": torch.randn(D, F, generator=g), "b_dec": torch.randn(D, generator=g)}


def write(tmp_path, tensors, name="sae.safetensors"):
    path = tmp_path / name
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


def fails(exc_type, *words, call, source=None):
    """Run `call`, check it raises exc_type with a one-line message naming `source` and `words`."""
    with pytest.raises(exc_type) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    if source is not None:
        assert str(source) in message, message
    for word in words:
        assert word.lower() in message.lower(), message
    return message


# ------------------------------------------------------------------ file-level corruption
def test_truncated_file(tmp_path):
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(ERNOS_FILE.read_bytes()[:-100])
    fails(CheckpointError, "truncated", source=bad, call=lambda: load_checkpoint(bad))


def test_header_shorter_than_length_field(tmp_path):
    bad = tmp_path / "tiny.safetensors"
    bad.write_bytes(b"\x01\x02")
    fails(CheckpointError, "not a safetensors file", source=bad, call=lambda: load_checkpoint(bad))


def test_garbage_header(tmp_path):
    bad = tmp_path / "garbage.safetensors"
    body = b"{this is not json}"
    bad.write_bytes(len(body).to_bytes(8, "little") + body)
    fails(CheckpointError, "corrupt safetensors header", source=bad, call=lambda: load_checkpoint(bad))
    bad.write_bytes((10**12).to_bytes(8, "little") + b"{}")
    fails(CheckpointError, "header", source=bad, call=lambda: load_checkpoint(bad))


def test_inconsistent_offsets(tmp_path):
    header = json.dumps({"W_enc": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 32]}}).encode()
    bad = tmp_path / "short.safetensors"
    bad.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 32)
    fails(CheckpointError, "'W_enc'", "needs 64 bytes", source=bad, call=lambda: read_header(bad))


def test_wrong_shapes(tmp_path):
    t = ernos_tensors()
    t["b_enc"] = torch.zeros(F + 1)
    path = write(tmp_path, t)
    fails(CheckpointError, "'b_enc'", "shape", source=path, call=lambda: load_checkpoint(path))
    t = ernos_tensors()
    t["W_dec"] = torch.zeros(D + 1, F)
    path = write(tmp_path, t, "dec.safetensors")
    fails(CheckpointError, "'W_dec'", "shape", source=path, call=lambda: load_checkpoint(path))


def test_sparsify_wrong_shape(tmp_path):
    folder = tmp_path / "layers.2"
    shutil.copytree(SPARSIFY_L2, folder)
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg["d_in"] = 32  # the tensors are 64 wide
    (folder / "cfg.json").write_text(json.dumps(cfg))
    fails(CheckpointError, "shape", "expected", source=folder / "sae.safetensors", call=lambda: load_checkpoint(folder))


def test_int_dtype(tmp_path):
    t = ernos_tensors()
    t["W_enc"] = torch.ones(F, D, dtype=torch.int32)
    path = write(tmp_path, t)
    fails(CheckpointError, "'W_enc'", "int32", "floating point", source=path, call=lambda: load_checkpoint(path))


@pytest.mark.parametrize("value,word", [(float("nan"), "NaN"), (float("inf"), "Inf"), (float("-inf"), "Inf")])
def test_non_finite_weights(tmp_path, value, word):
    t = ernos_tensors()
    t["W_dec"][3, 5] = value
    path = write(tmp_path, t)
    fails(CheckpointError, "'W_dec'", word, source=path, call=lambda: load_checkpoint(path))


def test_non_finite_check_is_chunked():
    big = torch.zeros(1000, 3)
    big[997, 1] = float("nan")
    fails(CheckpointError, "'x'", "NaN", source="f.safetensors",
          call=lambda: check_tensor("f.safetensors", "x", big, (1000, 3), rows_per_chunk=7))


def test_sha256_matches_hashlib(tmp_path):
    import hashlib

    path = tmp_path / "blob.bin"
    path.write_bytes(os.urandom(3 * (1 << 20) + 17))
    assert sha256_file(path, chunk_bytes=1 << 20) == hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ pickle refusal
class _Bomb:
    """Unpickling this would create a marker folder: the test proves we never unpickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("name", ["model.pt", "sae.bin", "weights.ckpt", "sae.safetensors"])
def test_pickle_files_refused_without_unpickling(tmp_path, monkeypatch, name):
    marker = tmp_path / "UNPICKLED"
    payload = pickle.dumps({"W_enc": [[1.0]], "bomb": _Bomb(str(marker))})
    path = tmp_path / name
    path.write_bytes(payload)

    def forbidden(*a, **k):
        raise AssertionError("the loader tried to unpickle")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    fails(CheckpointError, "pickle", source=path, call=lambda: load_checkpoint(path))
    fails(CheckpointError, "pickle", source=path, call=lambda: load_checkpoint(path, format="ernos"))
    assert not marker.exists()


def test_torch_zip_named_safetensors_refused(tmp_path):
    path = tmp_path / "sae.safetensors"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 64)
    fails(CheckpointError, "zip", "refusing to unpickle", source=path, call=lambda: load_checkpoint(path))


def test_folder_with_only_pickles_is_not_detected(tmp_path):
    (tmp_path / "sae_weights.pt").write_bytes(pickle.dumps({"a": 1}))
    (tmp_path / "cfg.json").write_text("{}")
    fails(CheckpointError, "cannot detect", "sae_weights.pt", "pickle", source=tmp_path,
          call=lambda: load_checkpoint(tmp_path))


# ------------------------------------------------------------------ activation settings
def test_k_larger_than_d_sae(tmp_path):
    path = write(tmp_path, ernos_tensors())
    fails(CheckpointError, "k=33", "exceeds", source=path,
          call=lambda: load_checkpoint(path, activation="topk", k=F + 1))
    (tmp_path / "sae_config.json").write_text(json.dumps({"activation": "topk", "k": 1000}))
    fails(CheckpointError, "k=1000", "sidecar", source=path, call=lambda: load_checkpoint(path))


def test_sparsify_k_larger_than_latents(tmp_path):
    folder = tmp_path / "layers.2"
    shutil.copytree(SPARSIFY_L2, folder)
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg["k"] = 513
    (folder / "cfg.json").write_text(json.dumps(cfg))
    fails(CheckpointError, "k=513", "512", source=folder / "cfg.json", call=lambda: load_checkpoint(folder))


@pytest.mark.parametrize("change,words", [
    ({"activation": "groupmax"}, ("groupmax", "not supported")),
    ({"transcode": True}, ("transcode=true", "MLP hookpoints")),  # transcoders: only at layers.N.mlp
    ({"k": "eight"}, ("k", "integer")),
    ({"skip_connection": 1}, ("skip_connection", "true/false")),
])
def test_sparsify_unsupported_cfg(tmp_path, change, words):
    folder = tmp_path / "layers.2"
    shutil.copytree(SPARSIFY_L2, folder)
    cfg = {**json.loads((folder / "cfg.json").read_text()), **change}
    (folder / "cfg.json").write_text(json.dumps(cfg))
    fails(CheckpointError, *words, source=folder / "cfg.json", call=lambda: load_checkpoint(folder))


@pytest.mark.parametrize("change,words", [
    ({"normalize_activations": "expected_average_only_in"}, ("expected_average_only_in", "not supported")),
    ({"architecture": "gated"}, ("gated", "not supported")),
    ({"architecture": "topk", "k": None}, ("needs k",)),
    ({"d_sae": "512"}, ("d_sae", "wrong type")),
])
def test_saelens_unsupported_cfg(tmp_path, change, words):
    folder = tmp_path / "sae"
    shutil.copytree(SAES_DIR / "saelens/standard-layers.2", folder)
    cfg = {**json.loads((folder / "cfg.json").read_text()), **change}
    cfg = {k: v for k, v in cfg.items() if v is not None}
    (folder / "cfg.json").write_text(json.dumps(cfg))
    fails(CheckpointError, *words, source=folder / "cfg.json", call=lambda: load_checkpoint(folder))


def test_mixed_and_missing_ernos_names(tmp_path):
    t = ernos_tensors()
    t["encoder.weight"] = t.pop("W_enc")
    path = write(tmp_path, t)
    fails(CheckpointError, "mixes both", source=path, call=lambda: load_checkpoint(path))
    t = ernos_tensors()
    del t["b_enc"]
    path = write(tmp_path, t, "missing.safetensors")
    fails(CheckpointError, "missing tensor", "b_enc", source=path, call=lambda: load_checkpoint(path))


# ------------------------------------------------------------------ references, formats, options
@pytest.mark.parametrize("ref", ["../../etc/passwd", "owner/../../x", "owner/name/..", "/no/such/abs/path",
                                 "owner\\name", "a/b/c/..", "owner//name"])
def test_bad_refs_and_traversal(ref):
    msg = fails(CheckpointError, call=lambda: load_checkpoint(ref, hookpoint="layers.2"))
    assert one_line(ref) in msg  # named as the error line shows it (backslashes escaped)


@pytest.mark.parametrize("hookpoint", ["../layers.2", "/abs/layers.2", "run\\layers.2", "run/../../x", "a//b"])
def test_hookpoint_traversal_refused(hookpoint):
    fails(CheckpointError, "hookpoint", call=lambda: load_checkpoint("owner/name", hookpoint=hookpoint))
    fails(CheckpointError, "hookpoint", call=lambda: load_checkpoint(SPARSIFY_L2.parent, hookpoint=hookpoint))


def test_unknown_format_lists_valid_ones():
    fails(CheckpointError, "unknown checkpoint format 'pytorch'", "sparsify, saelens, gemma_scope, ernos", source=SPARSIFY_L2,
          call=lambda: load_checkpoint(SPARSIFY_L2, format="pytorch"))


def test_unknown_option_lists_valid_ones():
    fails(CheckpointError, "unknown option 'treshold'", "threshold", source=ERNOS_FILE,
          call=lambda: load_checkpoint(ERNOS_FILE, treshold=0.1))
    fails(CheckpointError, "unknown option 'k'", "none", call=lambda: load_checkpoint(SPARSIFY_L2, k=3))


def test_wrong_format_forced(tmp_path):
    fails(CheckpointError, "not a SAELens checkpoint", source=SPARSIFY_L2,
          call=lambda: load_checkpoint(SPARSIFY_L2, format="saelens"))


def test_undetectable_folder_lists_contents(tmp_path):
    (tmp_path / "README.md").write_text("hi")
    (tmp_path / "weights.npz").write_bytes(b"PK")
    fails(CheckpointError, "cannot detect", "README.md", source=tmp_path, call=lambda: load_checkpoint(tmp_path))


def test_run_folder_needs_a_hookpoint_and_lists_them(tmp_path):
    run = SAES_DIR / "sparsify/tiny-gemma4-8x"
    fails(CheckpointError, "pass hookpoint", "layers.1, layers.2, layers.3", source=run, call=lambda: load_checkpoint(run))
    fails(CheckpointError, "layers.9", "layers.1, layers.2, layers.3", source=run,
          call=lambda: load_checkpoint(run, hookpoint="layers.9"))
    fails(CheckpointError, "not of the requested", source=SPARSIFY_L2,
          call=lambda: load_checkpoint(SPARSIFY_L2, hookpoint="layers.3"))


def test_all_errors_are_input_errors():
    assert issubclass(CheckpointError, InputError) and issubclass(DataError, InputError)


# ------------------------------------------------------------------ feature maps
def feature_map(tmp_path, mappings, **top):
    data = {"version": 1, "sae_path": "x.safetensors", "total_sae_features": F, "mappings": mappings, **top}
    path = tmp_path / "feature_map.json"
    path.write_text(json.dumps(data))
    return path


def entry(i, **change):
    return {"sae_index": i, "dict_index": i, "label": "grief", "category": "emotion", "confidence": 0.5, **change}


def test_feature_map_valid(tmp_path):
    path = feature_map(tmp_path, {"7": entry(7), "3": entry(3, category="meta", confidence=None, dict_index=None)})
    fmap = load_feature_map(path, d_sae=F)
    assert [e.sae_index for e in fmap.entries] == [3, 7]
    assert fmap.entries[0].confidence is None and fmap.entries[0].dict_index is None
    assert list(fmap.by_category()) == ["emotion", "meta"]
    assert fmap.path == str(path) and fmap.sae_path == "x.safetensors" and fmap.total_sae_features == F


@pytest.mark.parametrize("mappings,words", [
    ({"32": entry(32)}, ("mappings['32']", "out of range [0, 32)")),
    ({"-1": entry(-1)}, ("mappings['-1']", "out of range")),
    ({"5": entry(6)}, ("mappings['5']", "does not match its key")),
    ({"5": entry("5")}, ("mappings['5'].sae_index", "integer")),
    ({"5": entry(True)}, ("mappings['5'].sae_index", "integer")),
    ({"5": entry(5, label=3)}, ("mappings['5'].label", "string")),
    ({"5": entry(5, category=None)}, ("mappings['5'].category", "string")),
    ({"5": entry(5, confidence="high")}, ("mappings['5'].confidence", "number")),
    ({"5": [1, 2]}, ("mappings['5']", "object")),
    ({"5": {"sae_index": 5}}, ("mappings['5']", "lacks label, category")),
])
def test_feature_map_bad_entries(tmp_path, mappings, words):
    path = feature_map(tmp_path, mappings)
    fails(DataError, *words, source=path, call=lambda: load_feature_map(path, d_sae=F))


def test_feature_map_bad_files(tmp_path):
    path = tmp_path / "feature_map.json"
    path.write_text('{"version": 1, "mappings": {')
    fails(DataError, "malformed JSON", source=path, call=lambda: load_feature_map(path))
    path.write_text('[1, 2]')
    fails(DataError, "JSON object", source=path, call=lambda: load_feature_map(path))
    path.write_text('{"version": 2, "mappings": {}}')
    fails(DataError, "version 2", source=path, call=lambda: load_feature_map(path))
    path.write_text('{"version": 1, "mappings": [], "total_sae_features": 4}')
    fails(DataError, "'mappings'", source=path, call=lambda: load_feature_map(path))
    path.write_text('{"version": 1, "mappings": {"1": {"sae_index": 1, "label": "a", "category": "b", '
                    '"confidence": NaN}}, "total_sae_features": 4}')
    fails(DataError, "NaN", source=path, call=lambda: load_feature_map(path))
    path.write_bytes(b"\xff\xfe{}")
    fails(DataError, "UTF-8", source=path, call=lambda: load_feature_map(path))
    fails(DataError, "no such file", call=lambda: load_feature_map(tmp_path / "absent.json"))
    good = feature_map(tmp_path, {"1": entry(1)})
    fails(DataError, "total_sae_features is 32", "64", source=good, call=lambda: load_feature_map(good, d_sae=64))
    bad_count = feature_map(tmp_path, {"1": entry(1)}, mapped_count=5)
    fails(DataError, "mapped_count", source=bad_count, call=lambda: load_feature_map(bad_count))


def test_ernos_loader_rejects_bad_sibling_feature_map(tmp_path):
    path = write(tmp_path, ernos_tensors())
    fmap = feature_map(tmp_path, {"40": entry(40)}, total_sae_features=64)
    fails(DataError, "total_sae_features is 64", source=fmap, call=lambda: load_checkpoint(path))
    fmap.write_text(json.dumps({"version": 1, "total_sae_features": F, "mappings": {"40": entry(40)}}))
    fails(DataError, "out of range [0, 32)", source=fmap, call=lambda: load_checkpoint(path))
