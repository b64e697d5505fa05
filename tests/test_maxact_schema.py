"""Reading and validating max-activation parquets: good files round-trip, bad ones fail in one line."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sae_bench.core.errors import DataError
from sae_bench.tasks.maxact_repro.schema import MaxActExample, read_maxact, read_maxact_metadata, write_maxact


def _loupe_table(**override):
    cols = {
        "feature": pa.array([3, 3, 5], pa.int64()),
        "activation": pa.array([2.5, 1.5, 4.0], pa.float32()),
        "token": pa.array(["Ġcat", "Ġdog", "."]),
        "context": pa.array(["the cat", "a dog", "end."]),
        "context_tokens": pa.array([json.dumps(["the", "Ġcat"]), json.dumps(["a", "Ġdog"]),
                                    json.dumps(["end", "."])]),
        "token_activations": pa.array([json.dumps([0.0, 2.5]), json.dumps([0.5, 1.5]), json.dumps([1.0, 4.0])]),
    }
    cols.update(override)
    return pa.table({k: v for k, v in cols.items() if v is not None})


def _write(tmp_path, table, name="acts.parquet"):
    path = tmp_path / name
    pq.write_table(table, path)
    return path


def test_gemma_loupe_layout_reads_without_offsets(tmp_path):
    table = read_maxact(_write(tmp_path, _loupe_table()))
    assert table.features() == [3, 5] and not table.has_offsets and table.metadata == {}
    first = table.examples[0]
    assert first.context_tokens == ("the", "Ġcat") and first.token_activations == (0.0, 2.5)
    assert first.peak_position == 1 and first.activation == 2.5 and first.row == 0
    assert [e.row for e in read_maxact(table.path, max_features=1).examples] == [0, 1]
    assert [e.row for e in read_maxact(table.path, features=[5]).examples] == [2]


def test_round_trip_with_offsets_and_metadata_is_byte_stable(tmp_path):
    ex = [MaxActExample(0, 1, 2.0, "b", "ab", ("a", "b"), (0.5, 2.0), 1, doc_id=4, start=3, end=5)]
    a = write_maxact(tmp_path / "a.parquet", ex, {"hookpoint": "layers.2", "checkpoint_sha256": "ab" * 32})
    b = write_maxact(tmp_path / "b.parquet", ex, {"hookpoint": "layers.2", "checkpoint_sha256": "ab" * 32})
    assert a.read_bytes() == b.read_bytes()
    back = read_maxact(a)
    assert back.examples == ex and back.has_offsets
    assert read_maxact_metadata(a)["hookpoint"] == "layers.2"
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("override, column, fragment", [
    ({"token_activations": None}, "token_activations", "missing required column"),
    ({"feature": pa.array(["3", "3", "5"])}, "feature", "expected an integer"),
    ({"activation": pa.array(["x", "y", "z"])}, "activation", "expected a float"),
    ({"context_tokens": pa.array(['["the", "Ġcat"]', '["a", "Ġdog"', '["end", "."]'])}, "context_tokens",
     "not valid JSON"),
    ({"token_activations": pa.array(["[0.0, 2.5]", "[0.5]", "[1.0, 4.0]"])}, "token_activations",
     "lengths must match"),
    ({"context_tokens": pa.array(['["the", 1]', '["a", "Ġdog"]', '["end", "."]'])}, "context_tokens",
     "must be a string"),
    ({"token_activations": pa.array(["[0.0, 2.5]", '{"a": 1}', "[1.0, 4.0]"])}, "token_activations",
     "expected a JSON list"),
])
def test_bad_files_fail_in_one_line_naming_file_column_and_row(tmp_path, override, column, fragment):
    path = _write(tmp_path, _loupe_table(**override), "bad.parquet")
    with pytest.raises(DataError) as info:
        read_maxact(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and column in message and fragment in message
    if "missing" not in fragment and "expected an" not in fragment and "expected a float" not in fragment:
        assert "row 1" in message or "row 0" in message


def test_inconsistent_offsets_and_not_a_parquet(tmp_path):
    table = _loupe_table(doc_id=pa.array([0, 1, 2]), start=pa.array([1, 1, 1]), end=pa.array([3, 4, 3]))
    with pytest.raises(DataError, match=r"row 1, column 'end'"):
        read_maxact(_write(tmp_path, table))
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(DataError, match="not a readable parquet"):
        read_maxact(junk)
    with pytest.raises(DataError, match="not found"):
        read_maxact(tmp_path / "missing.parquet")
