"""hypothesis fuzzing of the non-checkpoint parsers: result records, suites, probe sets, maxact parquets.

Whatever the bytes, each parser either returns a valid object or raises the one-line InputError
subclass for its input (never a KeyError/TypeError traceback), and a valid object survives a
round trip. Checkpoint and feature-map parsers are fuzzed in test_fuzz_checkpoints.py.
"""

from __future__ import annotations

import copy
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz_support import FUZZ, json_values, raises_only_input_errors, reading_refuses_only_as_input
from record_factories import make_record_data
from sae_bench.analysis.compare import compare_records
from sae_bench.fixtures import MAXACT_DIR
from sae_bench.analysis.gate import gate
from sae_bench.leaderboard_build.collect import collect
from sae_bench.leaderboard_build.table import build_table
from sae_bench.tasks.maxact_repro.schema import read_maxact
from sae_bench.tasks.probing.probe_set import load_probe_set
from sae_bench.records.results import dumps, read_record, validate
from sae_bench.run.config import load_suite

VALID_RECORD = make_record_data("fuzz-sae", "reconstruction", {"fvu": (0.1, 0.01), "mse": None})


def _paths(obj, prefix=()):
    """Every key path into a nested dict/list (for mutating one spot of a valid record)."""
    yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _paths(value, prefix + (i,))


RECORD_PATHS = [p for p in _paths(VALID_RECORD) if p]


def test_the_valid_record_round_trips(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(dumps(VALID_RECORD))
    assert read_record(path).data == validate(copy.deepcopy(VALID_RECORD)).data


@FUZZ
@given(doc=json_values)
def test_random_json_as_a_record(tmp_path, doc):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    raises_only_input_errors(lambda: read_record(path))


@FUZZ
@given(where=st.sampled_from(RECORD_PATHS), replacement=json_values, delete=st.booleans())
def test_one_spot_of_a_valid_record_mutated(tmp_path, where, replacement, delete):
    data = copy.deepcopy(VALID_RECORD)
    parent = data
    for key in where[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = replacement
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    record = raises_only_input_errors(lambda: read_record(path))
    if record is not None:  # accepted: then gate, compare and the leaderboard table can rely on it
        other = read_record(path)
        report = gate([record], [other])
        assert not report.failures and report.format()
        compare_records([record], [other]).format()
        folder = tmp_path / "results"
        folder.mkdir(exist_ok=True)
        (folder / "r.json").write_text(dumps(record.data))
        assert build_table(collect(folder)) is not None


@FUZZ
@given(text=st.text(max_size=200))
def test_random_text_as_a_record(tmp_path, text):
    reading_refuses_only_as_input(tmp_path / "r.json", text, read_record)


@FUZZ
@given(doc=json_values | st.fixed_dictionaries({"checkpoints": st.lists(json_values, max_size=3)}))
def test_random_suites(tmp_path, doc):
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(doc))
    loaded = raises_only_input_errors(lambda: load_suite(path))
    if loaded is not None:
        suite, specs = loaded
        assert len(specs) == len(suite["checkpoints"]) and all(isinstance(s.ref, str) for s in specs)


@FUZZ
@given(lines=st.lists(json_values | st.fixed_dictionaries(
    {"text": json_values, "category": json_values, "label": json_values, "split": json_values}), max_size=6))
def test_random_probe_sets(tmp_path, lines):
    path = tmp_path / "probe.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    raises_only_input_errors(lambda: load_probe_set(path))


@pytest.fixture(scope="module")
def maxact_table():
    return pq.read_table(next(MAXACT_DIR.glob("*.parquet")))


@FUZZ
@given(data=st.data())
def test_mutated_maxact_parquets(tmp_path, maxact_table, data):
    """Drop a column, or replace one by a column of another type, or keep a random row subset."""
    table = maxact_table
    names = table.column_names
    action = data.draw(st.sampled_from(["drop", "retype", "rows"]))
    if action == "drop":
        table = table.drop([data.draw(st.sampled_from(names))])
    elif action == "retype":
        name = data.draw(st.sampled_from(names))
        values = data.draw(st.sampled_from([pa.array(["x"] * len(table)), pa.array([1.5] * len(table)),
                                            pa.array([None] * len(table), pa.int64()),
                                            pa.array([[1, 2]] * len(table))]))
        table = table.set_column(names.index(name), name, values)
    else:
        keep = data.draw(st.lists(st.integers(0, len(table) - 1), max_size=5))
        table = table.take(pa.array(keep, pa.int64()))
    path = tmp_path / "m.parquet"
    pq.write_table(table, path)
    raises_only_input_errors(lambda: read_maxact(path))


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_as_a_maxact_parquet(tmp_path, data):
    reading_refuses_only_as_input(tmp_path / "m.parquet", data, read_maxact)
