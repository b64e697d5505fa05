"""The regression gate: planted regressions fail, noise passes, incomparable rows are refused, rules override."""

from __future__ import annotations

import json
import math

import pytest

from record_factories import make_record_data, write_records
from sae_bench.cli import main
from sae_bench.core.errors import InputError
from sae_bench.analysis.gate import gate, rules_from_options
from sae_bench.core import registry
from sae_bench.core.metric_directions import MetricRule, load_rules_file, lookup, parse_rule_arg, rule_for
from sae_bench.records.results import validate


def rec(ckpt="sae", task="reconstruction", metrics=None, **kw):
    return validate(make_record_data(ckpt, task, metrics or {"fvu": (0.2, 0.001)}, **kw))


def test_planted_regression_fails_beyond_min_effect_and_noise():
    base = rec(metrics={"fvu": (0.20, 0.001), "cossim": (0.9, 0.001)})
    cand = rec(metrics={"fvu": (0.30, 0.001), "cossim": (0.9, 0.001)})
    report = gate([base], [cand])
    assert not report.ok and report.exit_code == 1
    assert [(r.metric, r.status) for r in report.failures] == [("fvu", "fail")]
    row = report.failures[0]
    assert row.diff == pytest.approx(0.1)
    assert row.se_diff == pytest.approx(math.sqrt(2) * 0.001) and not row.paired
    assert row.tolerance == pytest.approx(0.01)  # min effect beats 2·se = 0.0028
    assert "fvu" in report.format() and "FAIL" in report.format()


def test_noise_passes():
    base = rec(metrics={"fvu": (0.2, 0.001)})
    cand = rec(metrics={"fvu": (0.2005, 0.001)})
    report = gate([base], [cand])
    assert report.ok and report.exit_code == 0
    assert [r.metric for r in report.passes] == ["fvu"]


def test_improvement_passes_and_direction_matters():
    base = rec(metrics={"fvu": (0.3, 0.001), "cossim": (0.95, 0.001)})
    cand = rec(metrics={"fvu": (0.2, 0.001), "cossim": (0.80, 0.001)})  # fvu better, cossim worse
    report = gate([base], [cand])
    assert [r.metric for r in report.failures] == ["cossim"]
    assert [r.metric for r in report.passes] == ["fvu"]


def test_tolerance_grows_with_standard_error():
    # worse by 0.05 > min effect 0.01, but se 0.03 each: 2·√2·0.03 = 0.085 > 0.05 -> noise
    base = rec(metrics={"fvu": (0.20, 0.03)})
    cand = rec(metrics={"fvu": (0.25, 0.03)})
    report = gate([base], [cand])
    assert report.ok
    assert report.passes[0].tolerance == pytest.approx(2 * math.sqrt(2) * 0.03)
    assert not gate([base], [cand], z=1.0).ok  # 0.042 < 0.05


def test_paired_standard_error_used_when_per_sequence_values_match():
    a_seq = [0.10, 0.20, 0.30, 0.40]
    b_seq = [0.12, 0.21, 0.33, 0.41]  # consistently worse (lower is better for mse)
    base = rec(metrics={"mse": (0.25, 0.05)}, artifacts={"per_sequence": {"mse": a_seq}})
    cand = rec(metrics={"mse": (0.2675, 0.05)}, artifacts={"per_sequence": {"mse": b_seq}})
    deltas = [b - a for a, b in zip(a_seq, b_seq)]
    mean = sum(deltas) / 4
    se = math.sqrt(sum((d - mean) ** 2 for d in deltas) / 3) / 2
    report = gate([base], [cand])
    row = report.failures[0]
    assert row.paired and row.se_diff == pytest.approx(se)
    # unpaired (√2·0.05·2 = 0.14) would have called this noise
    assert row.tolerance == pytest.approx(max(0.05 * 0.25, 2 * se))


def test_null_candidate_fails_and_unknown_or_neutral_metrics_are_not_gated():
    base = rec(metrics={"fvu": (0.2, 0.001), "l2_ratio": (0.9, 0.01), "my_metric": (1.0, 0.1)})
    cand = rec(metrics={"fvu": None, "l2_ratio": (0.5, 0.01), "my_metric": (9.0, 0.1)})
    report = gate([base], [cand])
    assert [(r.metric, r.reason.split(":")[0]) for r in report.failures] == [("fvu", "candidate is null")]
    assert {r.metric: r.reason for r in report.ungated} == {"l2_ratio": "no direction", "my_metric": "unknown metric"}


def test_refuses_task_version_mismatch_with_reason():
    base = rec(version=1)
    cand = rec(version=2)
    report = gate([base], [cand])
    assert not report.ok and not report.failures
    assert [r.reason for r in report.refused] == ["reconstruction: task version 1 vs 2"]
    assert "reconstruction: task version 1 vs 2" in report.format()


def test_refuses_other_corpus_and_missing_candidate_record():
    base = [rec(), rec(task="sparsity", metrics={"dead_fraction": (0.1, 0.01)})]
    cand = [rec(corpus_hash="another")]
    report = gate(base, cand)
    reasons = sorted(r.reason for r in report.refused)
    assert reasons == ["reconstruction: corpus hash c0ffee00c0ffee00 vs another", "sparsity: missing in the candidate"]


def test_candidate_only_records_are_listed_not_gated():
    report = gate([rec()], [rec(), rec(task="sparsity", metrics={"dead_fraction": (0.9, 0.01)})])
    assert report.ok and len(report.extra) == 1 and "sparsity" in report.extra[0]


def test_several_checkpoints_are_matched_by_id():
    base = [rec("a", metrics={"fvu": (0.2, 0.001)}), rec("b", metrics={"fvu": (0.2, 0.001)})]
    cand = [rec("a", metrics={"fvu": (0.2, 0.001)}), rec("b", metrics={"fvu": (0.5, 0.001)})]
    report = gate(base, cand)
    assert [(r.checkpoint, r.metric) for r in report.failures] == [("b", "fvu")]


# ------------------------------------------------------------------------------------ rules
def test_declared_rules_and_patterns():
    declared = lambda task, metric: registry.get_task(task).metric_spec(metric)  # noqa: E731
    assert declared("reconstruction", "fvu").rule == MetricRule("lower", 0.01)
    assert declared("reconstruction", "explained_variance").direction == "higher"
    assert declared("sparsity", "l0").direction == "none"
    assert declared("probing", "sae_accuracy_k20").direction == "higher"  # the sae_accuracy_k* family
    assert declared("probing", "label_confirmed_fraction/semantic").direction == "higher"
    assert declared("reconstruction", "nonexistent_metric") is None


def test_overrides_beat_declared_rules_task_key_first():
    fvu = registry.get_task("reconstruction").metric_spec("fvu").rule
    rules = {"reconstruction.fvu": MetricRule("lower", 0.5), "fvu": MetricRule("lower", 0.2),
             "sae_accuracy_k*": MetricRule("none")}
    assert rule_for("fvu", "reconstruction", fvu, rules).min_effect == 0.5
    assert rule_for("fvu", "other", fvu, rules).min_effect == 0.2
    assert rule_for("fvu", "reconstruction", fvu, {}).min_effect == 0.01
    assert rule_for("sae_accuracy_k5", "probing", MetricRule("higher", 0.02), rules).direction == "none"
    assert lookup("nonexistent_metric", rules) is None


def test_parse_rules():
    assert parse_rule_arg("fvu=lower:0.02") == ("fvu", MetricRule("lower", 0.02))
    assert parse_rule_arg("mse=lower:5%") == ("mse", MetricRule("lower", 0.05, relative=True))
    assert parse_rule_arg("l0=none") == ("l0", MetricRule("none"))
    for bad in ("fvu", "fvu=sideways:1", "fvu=lower:abc", "fvu=lower:-1", "=lower"):
        with pytest.raises(InputError):
            parse_rule_arg(bad)


def test_rules_override_from_command_line_and_file(tmp_path):
    base = rec(metrics={"fvu": (0.20, 0.001), "l0": (10.0, 0.1)})
    cand = rec(metrics={"fvu": (0.25, 0.001), "l0": (30.0, 0.1)})
    assert not gate([base], [cand]).ok
    assert gate([base], [cand], rules_from_options(["fvu=lower:0.1"])).ok
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text('[rules]\nfvu = "lower:0.1"\nl0 = { direction = "lower", min_effect = "10%" }\n')
    report = gate([base], [cand], rules_from_options([], rules_file))
    assert [r.metric for r in report.failures] == ["l0"]  # l0 now gated, fvu relaxed
    # the command line beats the file
    assert gate([base], [cand], rules_from_options(["l0=none"], rules_file)).ok
    json_file = tmp_path / "rules.json"
    json_file.write_text(json.dumps({"fvu": {"direction": "lower", "min_effect": 0.1}}))
    assert load_rules_file(json_file) == {"fvu": MetricRule("lower", 0.1)}


def test_malformed_rules_files(tmp_path):
    for name, text in (("a.json", "{"), ("b.toml", "fvu = "), ("c.json", '{"fvu": 3}'), ("d.json", "[1]"),
                       ("e.json", '{"fvu": {"min_effect": 1}}')):
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(InputError, match=name):
            load_rules_file(path)


# -------------------------------------------------------------------------------------- CLI
def _write(tmp_path, name, records):
    folder = tmp_path / name
    write_records(folder, records)
    return folder


def test_cli_exit_codes(tmp_path, capsys):
    base = _write(tmp_path, "base", [make_record_data("sae", "reconstruction", {"fvu": (0.2, 0.001)})])
    noise = _write(tmp_path, "noise", [make_record_data("sae", "reconstruction", {"fvu": (0.2005, 0.001)})])
    worse = _write(tmp_path, "worse", [make_record_data("sae", "reconstruction", {"fvu": (0.3, 0.001)})])
    other = _write(tmp_path, "v2", [make_record_data("sae", "reconstruction", {"fvu": (0.2, 0.001)}, version=2)])

    assert main(["gate", "--baseline", str(base), "--candidate", str(noise)]) == 0
    assert "gate PASSED" in capsys.readouterr().out

    assert main(["gate", "--baseline", str(base), "--candidate", str(worse)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "fvu" in out and "gate FAILED" in out

    assert main(["gate", "--baseline", str(base), "--candidate", str(worse), "--rule", "fvu=lower:0.2"]) == 0
    capsys.readouterr()
    rules = tmp_path / "rules.json"
    rules.write_text('{"fvu": "lower:0.2"}')
    assert main(["gate", "--baseline", str(base), "--candidate", str(worse), "--rules", str(rules)]) == 0
    capsys.readouterr()

    assert main(["gate", "--baseline", str(base), "--candidate", str(other)]) == 1
    assert "reconstruction: task version 1 vs 2" in capsys.readouterr().out

    record_file = next(worse.rglob("*.json"))
    assert main(["gate", "--baseline", str(base), "--candidate", str(record_file), "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is False and payload["failures"][0]["metric"] == "fvu"


def test_cli_bad_input_exits_2(tmp_path, capsys):
    base = _write(tmp_path, "base", [make_record_data("sae", "reconstruction", {"fvu": (0.2, 0.001)})])
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert main(["gate", "--baseline", str(base), "--candidate", str(broken)]) == 2
    assert "broken.json" in capsys.readouterr().err
    assert main(["gate", "--baseline", str(base), "--candidate", str(tmp_path / "missing")]) == 2
    assert main(["gate", "--baseline", str(base), "--candidate", str(base), "--rule", "fvu=up"]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["gate", "--baseline", str(base), "--candidate", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "no result records" in err and err.count("\n") == 3


# ------------------------------------------------------------- end to end on fixture checkpoints
def _perturbed_copy(folder, scale: float, seed: int):
    """A copy of the trained fixture SAE (layers.2) with Gaussian noise of `scale`·‖row‖ on each decoder row."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from sae_bench.fixtures import SAES_DIR

    source = SAES_DIR / "sparsify" / "tiny-gemma4-8x" / "layers.2"
    target = folder / "layers.2"
    target.mkdir(parents=True)
    shutil.copy(source / "cfg.json", target / "cfg.json")
    tensors = load_file(str(source / "sae.safetensors"))
    w = tensors["W_dec"]
    noise = torch.randn(w.shape, generator=torch.Generator().manual_seed(seed)) / w.shape[1] ** 0.5
    tensors["W_dec"] = torch.nn.functional.normalize(w + scale * w.norm(dim=1, keepdim=True) * noise, dim=1)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(target / "sae.safetensors"))
    return folder


def test_gate_end_to_end_fails_on_planted_regression_and_passes_on_noise(tmp_path, capsys):
    from sae_bench.fixtures import EVAL_CORPUS_PATH, SAES_DIR, TINY_MODEL_DIR

    common = ["--model", str(TINY_MODEL_DIR), "--corpus", str(EVAL_CORPUS_PATH), "--seq-len", "32",
              "--max-documents", "24", "--tasks", "reconstruction,sparsity", "--quiet", "--no-cache"]
    checkpoints = {"base": SAES_DIR / "sparsify" / "tiny-gemma4-8x",
                   "noise": _perturbed_copy(tmp_path / "noise-sae", 0.03, 1),
                   "worse": _perturbed_copy(tmp_path / "worse-sae", 0.5, 2)}
    for name, path in checkpoints.items():
        assert main(["run", *common, "-c", f"{path}@layers.2", "--results", str(tmp_path / name)]) == 0
    capsys.readouterr()
    assert main(["gate", "--baseline", str(tmp_path / "base"), "--candidate", str(tmp_path / "noise")]) == 0
    assert "gate PASSED" in capsys.readouterr().out
    assert main(["gate", "--baseline", str(tmp_path / "base"), "--candidate", str(tmp_path / "worse")]) == 1
    out = capsys.readouterr().out
    failed = {line.split()[1] for line in out.splitlines() if line.startswith("FAIL")}  # status, metric, ...
    assert max(len(line) for line in out.splitlines()) <= 100  # a table per checkpoint @ hookpoint · task
    assert {"fvu", "explained_variance", "cossim", "mse"} <= failed
