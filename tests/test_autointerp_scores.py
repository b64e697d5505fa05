"""autointerp: closed-form scores, parsers, the oracle on a planted latent, the cache, bad judges."""

from __future__ import annotations

import random

import pytest
import torch

from sae_bench.tasks.autointerp import scores
from sae_bench.tasks.autointerp.cache import CachingJudge, ResponseCache
from sae_bench.tasks.autointerp.examples import SamplingSettings, sample_latent, valid_centres
from sae_bench.tasks.autointerp.judges import JudgeReply, OracleJudge
from sae_bench.tasks.autointerp.prompts import delphi_v1, saebench_v1
from sae_bench.tasks.autointerp.scorers import run_protocol

SETTINGS = SamplingSettings(buffer=4, n_top_explain=6, n_iw_explain=3, n_top_score=2, n_iw_score=2,
                            n_random_score=10, n_quantiles=4)


def test_closed_form_scores():
    assert scores.balanced_accuracy([1, 1, 0, 0], [1, 0, 0, 0]) == 0.75
    assert scores.balanced_accuracy([1, 1], [1, 1]) is None
    assert scores.auroc([1, 1, 0, 0], [0.9, 0.4, 0.4, 0.1]) == pytest.approx((1 + 0.5 + 1 + 1) / 4)
    assert scores.auroc([1, 0], [0.5, 0.5]) == 0.5
    assert scores.saebench_score([1, 3], [True, False, False, True]) == 0.5
    assert scores.mean_and_stderr([1.0, None, 0.0]) == (0.5, 0.5, 2)


def test_parsers_never_guess():
    assert delphi_v1.parse_list("sure: [1, 0, 1] done", 3) == [1, 0, 1]
    assert delphi_v1.parse_list("[1, 0]", 3) is None  # wrong count
    assert delphi_v1.parse_list("[1, 2, 0]", 3) is None
    assert delphi_v1.parse_list("[true, false, true]", 3) is None
    assert delphi_v1.parse_list("no list here", 3) is None
    assert saebench_v1.parse_numbers("1, 4 and 7.") == [1, 4, 7]
    assert saebench_v1.parse_numbers("None") == []
    assert saebench_v1.parse_numbers("examples 1 and 2") is None
    assert saebench_v1.parse_explanation("This neuron activates on the word cat.") == "the word cat"


def _planted_corpus(seed=0, n=160, t=30):
    """Tokens from a small vocabulary with "zebra" at 3%; a latent firing exactly on zebra, and
    latents firing at random positions with the same rate."""
    rng = random.Random(seed)
    words = [f" w{i}" for i in range(40)]
    rows = [[" zebra" if rng.random() < 0.03 else rng.choice(words) for _ in range(t)] for _ in range(n)]
    is_zebra = torch.tensor([[tok == " zebra" for tok in row] for row in rows])
    gen = torch.Generator().manual_seed(seed)
    planted = is_zebra.float() * (1 + torch.rand(n, t, generator=gen))
    randoms = [(torch.rand(n, t, generator=gen) < 0.03).float() * (1 + torch.rand(n, t, generator=gen)) for _ in range(12)]
    centres = valid_centres(torch.ones(n, t, dtype=torch.int64), torch.ones(n, t, dtype=torch.bool), SETTINGS.buffer)
    return rows, planted, randoms, centres


def test_oracle_scores_a_planted_latent_one_and_a_random_one_one_half():
    rows, planted, randoms, centres = _planted_corpus()
    examples = [sample_latent(0, planted, centres, rows, SETTINGS, seed=0)]
    examples += [sample_latent(i + 1, acts, centres, rows, SETTINGS, seed=0) for i, acts in enumerate(randoms)]
    assert all(not isinstance(e, str) for e in examples)
    results = run_protocol(examples, OracleJudge(), seed=0, examples_per_prompt=5, n_correct=4)
    zebra = results[0]
    assert zebra.explanation == "the token zebra"
    assert zebra.scores["detection_balanced_accuracy"] == 1.0
    assert zebra.scores["detection_auroc"] == 1.0
    assert zebra.scores["fuzzing_balanced_accuracy"] == 1.0
    # SAEBench labels its random contexts inactive even where the latent fires: the oracle (right
    # about zebra) loses exactly those random contexts that contain zebra.
    shown = examples[0].score_active + examples[0].score_random
    wrong = sum(" zebra" in c.tokens for c in examples[0].score_random)
    assert zebra.scores["autointerp_score"] == pytest.approx(1 - wrong / len(shown))
    random_bacc = [r.scores["detection_balanced_accuracy"] for r in results[1:]]
    mean = sum(random_bacc) / len(random_bacc)
    assert 0.35 <= mean <= 0.65, random_bacc
    assert all(not r.failures for r in results)


class _Counting:
    identity = "oracle:token-match-v1"

    def __init__(self):
        self.inner, self.calls = OracleJudge(), 0

    def complete(self, requests):
        self.calls += len(requests)
        return self.inner.complete(requests)


def test_cache_serves_a_rerun_without_calls_and_same_results(tmp_path):
    rows, planted, randoms, centres = _planted_corpus()
    examples = [sample_latent(i, a, centres, rows, SETTINGS, seed=3) for i, a in enumerate([planted] + randoms[:3])]
    first, second = _Counting(), _Counting()
    j1, j2 = CachingJudge(first, ResponseCache(tmp_path)), CachingJudge(second, ResponseCache(tmp_path))
    r1 = run_protocol(examples, j1, seed=3, examples_per_prompt=5, n_correct=4)
    r2 = run_protocol(examples, j2, seed=3, examples_per_prompt=5, n_correct=4)
    assert first.calls > 0 and second.calls == 0
    assert j2.usage.calls_cached == j1.usage.calls_made and j2.usage.calls_made == 0
    assert [r.to_json() for r in r1] == [r.to_json() for r in r2]
    assert not list(tmp_path.rglob("*.tmp"))


class _Broken:
    """Explains fine, then answers badly: an error, unparseable text, wrong counts."""

    identity = "broken"

    def __init__(self):
        self.n = 0

    def complete(self, requests):
        out = []
        for r in requests:
            self.n += 1
            if r.kind == "explain":
                out.append(JudgeReply("This neuron activates on things"))
            elif self.n % 3 == 0:
                out.append(JudgeReply(None, error="APIStatusError 500: boom"))
            elif self.n % 3 == 1:
                out.append(JudgeReply("I think several of them"))
            else:
                out.append(JudgeReply("[1, 0]"))
        return out


def test_bad_judge_output_is_counted_per_latent_never_a_zero():
    rows, planted, randoms, centres = _planted_corpus()
    examples = [sample_latent(0, planted, centres, rows, SETTINGS, seed=0)]
    (res,) = run_protocol(examples, _Broken(), seed=0, examples_per_prompt=5, n_correct=4)
    assert res.explanation == "things"
    assert sum(res.failures.values()) == sum(res.prompts.values()) - 1  # everything but the explanation failed
    assert res.scores["detection_balanced_accuracy"] is None and res.scores["autointerp_score"] is None
    assert res.failure_examples


def test_sampling_is_seeded_per_latent_and_refuses_rare_latents():
    rows, planted, randoms, centres = _planted_corpus()
    a = sample_latent(5, planted, centres, rows, SETTINGS, seed=1)
    b = sample_latent(5, planted, centres, rows, SETTINGS, seed=1)
    assert [c.to_json() for c in a.explain + a.score_random] == [c.to_json() for c in b.explain + b.score_random]
    rare = torch.zeros_like(planted)
    rare[0, 10] = 1.0
    assert "needs" in sample_latent(7, rare, centres, rows, SETTINGS, seed=1)
    assert all(max(c.acts) == 0 for c in a.nonactive)
    assert all(c.max_act > 0 for c in a.activating)
