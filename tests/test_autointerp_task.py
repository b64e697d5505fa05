"""autointerp end to end: the local judge on the fixture model (plumbing, cache, determinism), the
OpenAI-compatible judge against a local fault-injecting server, option checks."""

from __future__ import annotations

import json

import pytest

from fake_openai_server import FakeOpenAI
from sae_bench.cli import main
from sae_bench.fixtures import EVAL_CORPUS_PATH, SAES_DIR, TINY_MODEL_DIR
from sae_bench.tasks.autointerp.judges import OpenAIJudge, request

CHECKPOINT = f"{SAES_DIR / 'sparsify/tiny-gemma4-8x'}@layers.2"
SMALL = ["buffer=4", "min_firing=5", "n_top_explain=4", "n_iw_explain=2", "n_random_score=4", "n_quantiles=2"]


def _run(tmp_path, out, *options):
    argv = ["run", "--model", str(TINY_MODEL_DIR), "--corpus", str(EVAL_CORPUS_PATH), "--seq-len", "64",
            "--checkpoint", CHECKPOINT, "--tasks", "autointerp", "--results", str(tmp_path / out), "--quiet"]
    for opt in SMALL + list(options):
        argv += ["--task-option", f"autointerp.{opt}"]
    assert main(argv) == 0
    (path,) = (tmp_path / out).rglob("autointerp.json")
    return json.loads(path.read_text())


def _comparable(record):
    record = json.loads(json.dumps(record))
    for key in ("timings", "created_at"):
        record.pop(key)
    for key in ("calls_made", "calls_cached"):
        record["artifacts"]["judge_usage"].pop(key)
    return record


def test_local_judge_on_the_fixture_model_rerun_served_from_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SAE_BENCH_JUDGE_CACHE", str(tmp_path / "cache"))
    first = _run(tmp_path, "r1", "judge=local", "n_latents=1")
    second = _run(tmp_path, "r2", "judge=local", "n_latents=1")
    u1, u2 = first["artifacts"]["judge_usage"], second["artifacts"]["judge_usage"]
    assert u1["calls_made"] > 0 and u1["calls_cached"] == 0
    assert u2["calls_made"] == 0 and u2["calls_cached"] == u1["calls_made"]
    assert u1["prompt_tokens"] > 0 and u1["completion_tokens"] > 0
    assert _comparable(first) == _comparable(second)
    assert first["artifacts"]["judge"]["identity"].startswith("local:")
    assert str(TINY_MODEL_DIR) not in json.dumps(first)  # records hold no absolute local path
    assert first["counts"]["latents_scored"] == 1
    for name, metric in first["metrics"].items():  # a weak judge: a number or a null with its reason
        assert metric["value"] is not None or metric["reason"], name


def test_oracle_run_is_deterministic_and_records_per_latent_detail(tmp_path, monkeypatch):
    monkeypatch.setenv("SAE_BENCH_JUDGE_CACHE", str(tmp_path / "cache"))
    a = _run(tmp_path, "a", "judge=oracle", "n_latents=12", "use_cache=false")
    b = _run(tmp_path, "b", "judge=oracle", "n_latents=12", "use_cache=false")
    assert _comparable(a) == _comparable(b)
    assert not (tmp_path / "cache").exists()
    row = a["artifacts"]["per_latent"][0]
    assert row["explanation"].startswith("the token") and row["top_contexts"]
    assert a["metrics"]["judge_failure_fraction"]["value"] == 0.0
    assert 0 <= a["metrics"]["detection_balanced_accuracy"]["value"] <= 1


def _req(mode):
    return request("detection", "delphi_v1", [{"role": "user", "content": f"mode:{mode} go"}], 10)


def test_openai_judge_fault_paths_are_counted_errors(monkeypatch):
    monkeypatch.setenv("SAE_BENCH_TEST_KEY", "sk-test-secret")
    with FakeOpenAI(slow_s=3.0) as server:
        judge = OpenAIJudge(server.url, "fake-model", api_key_env="SAE_BENCH_TEST_KEY", timeout_s=1.0,
                            max_retries=0, max_concurrency=4)
        modes = ["ok", "429", "500", "malformed", "empty", "slow"]
        replies = dict(zip(modes, judge.complete([_req(m) for m in modes])))
        assert replies["ok"].text == "[1, 0]" and replies["ok"].error is None
        assert replies["ok"].digit_probs == pytest.approx((1 / (1 + 2.718281828 ** -1.9), 1 - 1 / (1 + 2.718281828 ** -1.7)), rel=1e-6)
        assert (replies["ok"].prompt_tokens, replies["ok"].completion_tokens) == (11, 5)
        assert "429" in replies["429"].error and "500" in replies["500"].error
        for mode in ("malformed", "empty", "slow"):
            assert replies[mode].text is None and replies[mode].error, mode
        assert "Timeout" in replies["slow"].error
        assert set(server.auth) == {"Bearer sk-test-secret"}
        retrying = OpenAIJudge(server.url, "fake-model", api_key_env="SAE_BENCH_TEST_KEY", max_retries=1)
        (flaky,) = retrying.complete([_req("flaky")])
        assert flaky.text == "[1, 0]"


def test_openai_judge_run_with_a_failing_server_reports_failures_and_never_writes_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("SAE_BENCH_JUDGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SAE_BENCH_TEST_KEY", "sk-test-secret")
    with FakeOpenAI(default_mode="500") as server:
        record = _run(tmp_path, "r", "judge=openai", f"base_url={server.url}", "judge_model=fake-model",
                      "api_key_env=SAE_BENCH_TEST_KEY", "max_retries=0", "n_latents=2")
    assert record["metrics"]["judge_failure_fraction"]["value"] == 1.0
    assert record["metrics"]["autointerp_score"]["value"] is None and record["metrics"]["autointerp_score"]["reason"]
    assert record["artifacts"]["per_latent"][0]["failures"] == {"explain": 1}
    text = json.dumps(record) + "".join(p.read_text() for p in (tmp_path / "cache").rglob("*") if p.is_file()) \
        if (tmp_path / "cache").exists() else json.dumps(record)
    assert "sk-test-secret" not in text


def test_bad_judge_option_is_a_one_line_error(tmp_path, capsys):
    argv = ["run", "--model", str(TINY_MODEL_DIR), "--corpus", str(EVAL_CORPUS_PATH), "--checkpoint", CHECKPOINT,
            "--tasks", "autointerp", "--task-option", "autointerp.judge=gpt", "--results", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown judge" in err[0]


def test_without_a_judge_the_task_skips_with_its_reason(tmp_path, capsys):
    argv = ["run", "--model", str(TINY_MODEL_DIR), "--corpus", str(EVAL_CORPUS_PATH), "--seq-len", "64",
            "--checkpoint", CHECKPOINT, "--tasks", "sparsity,autointerp", "--results", str(tmp_path / "r"), "--quiet"]
    assert main(argv) == 0
    assert not list((tmp_path / "r").rglob("autointerp.json")) and list((tmp_path / "r").rglob("sparsity.json"))
    assert "no judge chosen" in capsys.readouterr().out
