"""The pytest plugin as an SAE author uses it: fixtures and assert_no_regression inside their own test suite."""

from __future__ import annotations

import subprocess
import sys

import pytest

from record_factories import make_record_data, write_records
from sae_bench.analysis.gate import GateReport
from sae_bench.testing import assert_no_regression

pytest_plugins = ["pytester"]


def _folders(tmp_path):
    out = {}
    for name, fvu in (("base", 0.2), ("noise", 0.2005), ("worse", 0.3)):
        out[name] = tmp_path / name
        write_records(out[name], [make_record_data("my-sae", "reconstruction", {"fvu": (fvu, 0.001), "l0": (8.0, 0.1)})])
    return out


def test_plugin_import_is_cheap():
    code = "import sys, sae_bench.pytest_plugin, sae_bench.testing; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_assert_no_regression_directly(tmp_path):
    f = _folders(tmp_path)
    assert isinstance(assert_no_regression(f["noise"], f["base"]), GateReport)
    with pytest.raises(AssertionError) as info:
        assert_no_regression(f["worse"], f["base"])
    message = str(info.value)
    assert "FAIL" in message and "fvu" in message and "gate FAILED" in message
    assert_no_regression(f["worse"], f["base"], rules={"fvu": "lower:0.5"})
    assert_no_regression(f["worse"], f["base"], rules={"fvu": {"direction": "none"}})


def test_user_suite_with_synthetic_records(pytester, tmp_path):
    f = _folders(tmp_path)
    pytester.makepyfile(test_user=f"""
        import pytest
        from sae_bench.testing import assert_no_regression

        def test_noise_passes():
            assert_no_regression(r"{f['noise']}", r"{f['base']}")

        def test_planted_regression():
            assert_no_regression(r"{f['worse']}", r"{f['base']}")

        def test_rule_override():
            assert_no_regression(r"{f['worse']}", r"{f['base']}", rules={{"fvu": "lower:0.5"}})

        def test_fixtures(sae_bench_fixtures, sae_bench_results_dir, sae_bench_evaluate):
            assert sae_bench_fixtures.model.is_dir() and sae_bench_fixtures.corpus.is_file()
            assert sae_bench_fixtures.checkpoint("sparsify/tiny-gemma4-8x").is_dir()
            assert len(sae_bench_fixtures.checkpoints) >= 1
            assert sae_bench_results_dir.is_dir() and callable(sae_bench_evaluate)
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_planted_regression*", "*sae-bench regression gate failed*", "*FAIL*fvu*",
                                 "*gate FAILED: 1 regressed*"])
    assert "sae-bench" in pytester.runpytest_inprocess("--help").stdout.str()


def test_user_suite_evaluating_a_fixture_checkpoint(pytester, tmp_path):
    results = tmp_path / "kept-results"
    pytester.makepyfile(test_gate_my_sae="""
        import json
        import pytest
        from sae_bench.testing import assert_no_regression

        OPTS = dict(hookpoint="layers.2", tasks=["reconstruction"], max_documents=16, seq_len=32)

        @pytest.mark.sae_bench
        def test_my_checkpoint_does_not_regress(sae_bench_fixtures, sae_bench_evaluate):
            records = sae_bench_evaluate(sae_bench_fixtures.checkpoint("sparsify/tiny-gemma4-8x"), **OPTS)
            fvu = records["reconstruction"].metric("fvu")
            assert 0 < fvu < 0.5
            assert_no_regression(records, records)
            better = json.loads(json.dumps(records["reconstruction"].data))
            better["metrics"]["fvu"]["value"] = fvu - 0.1
            with pytest.raises(AssertionError, match="fvu"):
                assert_no_regression(records, better)

        def test_untrained_regresses(sae_bench_fixtures, sae_bench_evaluate):
            trained = sae_bench_evaluate(sae_bench_fixtures.checkpoint("sparsify/tiny-gemma4-8x"), **OPTS)
            untrained = sae_bench_evaluate(sae_bench_fixtures.checkpoint("sparsify/untrained-8x"), **OPTS)
            with pytest.raises(AssertionError, match="fvu"):
                assert_no_regression(untrained, trained)
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", f"--sae-bench-results={results}")
    result.assert_outcomes(passed=2)
    written = sorted(p.relative_to(results).parts[-1] for p in results.rglob("*.json"))
    assert written == ["reconstruction.json", "reconstruction.json"]
