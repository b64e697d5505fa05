"""Fuzz: arbitrary bytes, mutated safetensors headers and random JSON never escape as anything but
sae_bench.core.errors.InputError subclasses (or load cleanly)."""

import json
import shutil
from pathlib import Path
import struct

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import save_file

from fuzz_support import FUZZ, json_values, raises_only_input_errors, reading_refuses_only_as_input
from sae_bench.checkpoints import load_checkpoint, load_feature_map
from sae_bench.fixtures import SAES_DIR

KEYS = ["version", "mappings", "total_sae_features", "mapped_count", "sae_path", "sae_index", "dict_index", "label",
        "category", "confidence", "d_in", "d_sae", "k", "activation", "architecture", "expansion_factor",
        "num_latents", "apply_b_dec_to_input", "activation_fn_kwargs", "normalise", "standardise", "threshold",
        "multi_topk", "skip_connection", "transcode", "dtype", "shape", "data_offsets", "0", "1", "5"]
keyed_objects = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 600) | st.floats(allow_nan=False) | st.sampled_from(
        ["topk", "relu", "jumprelu", "standard", "none", "l2", "batch", "fixed", "F32", "I32", "x"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(KEYS), children, max_size=6),
    max_leaves=25)
any_json = json_values | keyed_objects


@pytest.fixture(scope="module")
def small_ernos(tmp_path_factory):
    g = torch.Generator().manual_seed(0)
    path = tmp_path_factory.mktemp("seed") / "seed.safetensors"
    save_file({"W_enc": torch.randn(16, 4, generator=g), "b_enc": torch.randn(16, generator=g),
               "W_dec": torch.randn(4, 16, generator=g), "b_dec": torch.randn(4, generator=g)}, str(path))
    return path.read_bytes()


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes(tmp_path, data):
    reading_refuses_only_as_input(tmp_path / "random.safetensors", data, load_checkpoint)


@FUZZ
@given(data=st.data())
def test_mutated_safetensors_bytes(tmp_path, small_ernos, data):
    raw = bytearray(small_ernos)
    (n,) = struct.unpack("<Q", raw[:8])
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, 8 + n - 1))  # flip bytes inside the length field or header
        raw[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw)))]
    path = tmp_path / "mutated.safetensors"
    path.write_bytes(bytes(raw))
    raises_only_input_errors(lambda: load_checkpoint(path))


@FUZZ
@given(data=st.data())
def test_structurally_mutated_headers(tmp_path, small_ernos, data):
    (n,) = struct.unpack("<Q", small_ernos[:8])
    header = json.loads(small_ernos[8:8 + n])
    body = small_ernos[8 + n:]
    name = data.draw(st.sampled_from([k for k in header if k != "__metadata__"]))
    field = data.draw(st.sampled_from(["dtype", "shape", "data_offsets", "drop", "rename", "whole"]))
    if field == "drop":
        del header[name]
    elif field == "rename":
        header[data.draw(st.text(max_size=8))] = header.pop(name)
    elif field == "whole":
        header[name] = data.draw(any_json)
    elif field == "dtype":
        header[name]["dtype"] = data.draw(st.sampled_from(["F16", "BF16", "F64", "I32", "U8", "BOOL", "F8_E4M3", "Q4"]))
    else:
        header[name][field] = data.draw(st.lists(st.integers(-5, 2**64), max_size=3) | any_json)
    raw = json.dumps(header).encode()
    path = tmp_path / "structured.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body[:data.draw(st.integers(0, len(body) + 8))])
    raises_only_input_errors(lambda: load_checkpoint(path, normalise="none", standardise="none"))


@FUZZ
@given(doc=any_json)
def test_random_feature_maps(tmp_path, doc):
    path = tmp_path / "feature_map.json"
    path.write_text(json.dumps(doc))
    raises_only_input_errors(lambda: load_feature_map(path, d_sae=512))
    raises_only_input_errors(lambda: load_feature_map(path))


def _fuzz_cfg(tmp_path, fixture: str, fmt: str, doc, merge: bool) -> None:
    """Copy a fixture checkpoint folder, replace (or merge into) its cfg.json, and load it."""
    folder = tmp_path / Path(fixture).name
    if not folder.exists():
        shutil.copytree(SAES_DIR / fixture, folder)
    base = json.loads((SAES_DIR / fixture / "cfg.json").read_text())
    cfg = {**base, **doc} if merge and isinstance(doc, dict) else doc
    (folder / "cfg.json").write_text(json.dumps(cfg))
    raises_only_input_errors(lambda: load_checkpoint(folder, format=fmt))


@FUZZ
@given(doc=any_json, merge=st.booleans())
def test_random_sparsify_cfg(tmp_path, doc, merge):
    _fuzz_cfg(tmp_path, "sparsify/tiny-gemma4-8x/layers.2", "sparsify", doc, merge)


@FUZZ
@given(doc=any_json, merge=st.booleans())
def test_random_saelens_cfg(tmp_path, doc, merge):
    _fuzz_cfg(tmp_path, "saelens/jumprelu-layers.2", "saelens", doc, merge)


@FUZZ
@given(doc=any_json, options=st.dictionaries(st.sampled_from(["activation", "k", "threshold", "normalise",
                                                              "standardise", "mean", "std", "decoder_layout"]),
                                             any_json, max_size=3))
def test_random_ernos_sidecar_and_options(tmp_path, small_ernos, doc, options):
    (tmp_path / "sae.safetensors").write_bytes(small_ernos)
    (tmp_path / "sae_config.json").write_text(json.dumps(doc))
    raises_only_input_errors(lambda: load_checkpoint(tmp_path / "sae.safetensors", **options))
