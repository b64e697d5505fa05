"""Task `absorption`: feature absorption on first-letter features, as SAEBench 0.6.0 measures it
(Chanin et al., "A is for Absorption"), reproduced from its definitions.

1. Words: every single-token alphabetic word of the model's tokenizer (`vocab.py`; optionally a
   seeded subset, `max_words`), one 10-shot prompt each ("{word} has the first letter:"), shuffled
   and split 80/20 (`prompts.py`, the same `random` draws as SAEBench for `random_seed`).
2. Activations at the word's token (`prompt_token_pos`, -6) at the hookpoint (`extract.py`).
3. A 26-way one-vs-rest logistic first-letter probe on the training words (`probes.py`); a letter
   is evaluated when its probe's held-out F1 (logit > 0) exceeds `min_GT_probe_f1`, and the whole
   eval needs `min_feats_for_eval` such letters (else the metrics are null with the reason).
4. Per SAE: an L1 probe on the codes ranks latents per letter; k-sparse probes (k = 1..max_k_value)
   refit on the top-k latents; the main latents are those kept while held-out F1 jumps by more than
   `f1_jump_threshold` (`metric.split_latents`).
5. Each held-out word of letter ℓ that the probe classifies ℓ gets a fresh prompt (new examples,
   drawn from all words), and its absorption fraction and full absorption are computed
   (`metric.word_absorption`); per-letter means, then the mean over evaluated letters.

The words, prompts, activations and first-letter probe do not depend on the SAE: they are
memoised per hookpoint (with the random states SAEBench would be in afterwards), so every
checkpoint at the hookpoint shares them; with an activation cache folder the prompts' activations
are kept there too (`extract.cached_prompt_activations`), so a later run skips the model.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from sae_bench.core.errors import InputError
from sae_bench.core.registry import register_task
from sae_bench.core.task_api import Metric, MetricSpec, Task, TaskConfig, TaskOutput
from sae_bench.leaderboard_build.views import PageSection
from sae_bench.tasks.absorption.extract import cached_prompt_activations
from sae_bench.tasks.absorption.metric import f1_score, split_latents, word_absorption
from sae_bench.tasks.absorption.probes import k_sparse_probes, train_multi_probe
from sae_bench.tasks.absorption.prompts import icl_prompt, probe_prompts
from sae_bench.tasks.absorption.vocab import LETTERS, read_words_file, seeded_subset, single_token_words

# SAEBench's fixed settings of the L1 (latent-ranking) probe beside the configurable ones.
L1_PROBE_LR, L1_PROBE_END_LR, L1_PROBE_WEIGHT_DECAY = 1e-2, 1e-5, 1e-6


@dataclass(frozen=True)
class AbsorptionConfig(TaskConfig):
    positive = ("n_icl_examples", "probe_batch_size", "probe_epochs", "probe_lr", "probe_end_lr",
                "k_sparse_probe_batch_size", "k_sparse_probe_num_epochs", "max_k_value", "min_feats_for_eval",
                "llm_batch_size", "max_words")
    non_negative = ("random_seed", "probe_weight_decay", "k_sparse_probe_l1_decay", "f1_jump_threshold")
    unit_interval = ("train_fraction", "min_GT_probe_f1")
    negative = ("prompt_token_pos",)
    random_seed: int = 42  # SAEBench's random_seed: word shuffle, ICL examples, probe init and shuffling
    max_words: int | None = None  # a seeded subset of the words (None: all, as SAEBench)
    words_file: str | None = None  # JSON list of words to use instead of all (each a single-token word)
    prompt_template: str = "{word} has the first letter:"
    prompt_token_pos: int = -6  # the word's token, counted from the prompt's end
    n_icl_examples: int = 10
    train_fraction: float = 0.8
    probe_batch_size: int = 64
    probe_epochs: int = 50
    probe_lr: float = 1e-2
    probe_end_lr: float = 1e-5
    probe_weight_decay: float = 1e-4
    k_sparse_probe_l1_decay: float = 0.01
    k_sparse_probe_batch_size: int = 4096
    k_sparse_probe_num_epochs: int = 50
    max_k_value: int = 10
    f1_jump_threshold: float = 0.03
    min_GT_probe_f1: float = 0.6
    min_feats_for_eval: int = 20
    llm_batch_size: int = 64  # prompts per forward; no effect on the numbers


class ProbeData(NamedTuple):
    """Everything before the SAE: memoised per hookpoint."""

    words: list[str]
    train_letters: torch.Tensor  # [n_train] int64
    test_words: list[str]
    test_letters: torch.Tensor  # [n_test]
    x_train: torch.Tensor  # [n_train, d]
    x_test: torch.Tensor  # [n_test, d]
    probe_weight: torch.Tensor  # [26, d]
    test_logits: torch.Tensor  # [n_test, 26]
    python_state: Any  # random.Random state after the prompts were drawn
    torch_state: torch.Tensor  # global torch RNG state after the probe was trained


def _probe_data(ctx, cfg: AbsorptionConfig) -> ProbeData:
    words = single_token_words(ctx.model.tokenizer)
    if cfg.words_file:
        words = read_words_file(cfg.words_file, words)
    words = seeded_subset(words, cfg.max_words, cfg.random_seed)
    if len(words) < 2 * (cfg.n_icl_examples + 1):
        raise InputError("absorption", f"the tokenizer has only {len(words)} single-token alphabetic words; "
                         f"{2 * (cfg.n_icl_examples + 1)} are needed for {cfg.n_icl_examples}-shot prompts")
    rng = random.Random(cfg.random_seed)
    train, test = probe_prompts(words, rng, template=cfg.prompt_template, n_examples=cfg.n_icl_examples,
                                train_fraction=cfg.train_fraction)
    acts = {}
    for name, prompts in (("train", train), ("test", test)):
        acts[name] = cached_prompt_activations(ctx, [p.text for p in prompts], cfg.prompt_token_pos,
                                        batch_size=cfg.llm_batch_size, desc=f"absorption {name} prompts",
                                        words=[p.word for p in prompts])
    train_letters = torch.tensor([p.letter for p in train])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.random_seed)
        x_train = acts["train"]
        probe = train_multi_probe(lambda rows: x_train[rows], torch.nn.functional.one_hot(train_letters, 26),
                                  x_train.shape[1], batch_size=cfg.probe_batch_size, epochs=cfg.probe_epochs,
                                  lr=cfg.probe_lr, end_lr=cfg.probe_end_lr, weight_decay=cfg.probe_weight_decay)
        torch_state = torch.get_rng_state()
    with torch.no_grad():
        test_logits = probe(acts["test"])
    return ProbeData(words, train_letters, [p.word for p in test], torch.tensor([p.letter for p in test]),
                     x_train, acts["test"], probe.weight.detach().clone(), test_logits, rng.getstate(), torch_state)


def _letter_prompts(ctx, cfg: AbsorptionConfig, data: ProbeData, train_classes: list[int],
                    test_truth: list[torch.Tensor], passing: list[int]) -> dict[int, tuple[list[str], torch.Tensor | None]]:
    """{letter: (probe true positives, activations of their fresh prompts or None)}: SAE-independent,
    so memoised per hookpoint. Prompts are drawn letter by letter from the state SAEBench is in after
    the split (letters without training or held-out words draw nothing); only letters whose probe
    passes run the model."""
    rng = random.Random()
    rng.setstate(data.python_state)
    out = {}
    for l, letter in enumerate(LETTERS):
        if l not in train_classes or not bool(test_truth[l].any()):
            continue
        positives = [w for w, hit in zip(data.test_words, (test_truth[l] & (data.test_logits[:, l] > 0)).tolist()) if hit]
        prompts = [icl_prompt(w, data.words, rng, template=cfg.prompt_template, n_examples=cfg.n_icl_examples)
                   for w in positives]
        x = None
        if l in passing and positives:
            x = cached_prompt_activations(ctx, [p.text for p in prompts], cfg.prompt_token_pos,
                                          batch_size=cfg.llm_batch_size, desc=f"absorption '{letter}'")
        out[l] = (positives, x)
    return out


class SaeCodes:
    """Codes of a set of activations, kept sparse when the SAE is TopK; dense columns on demand."""

    def __init__(self, sae, x: torch.Tensor):
        x_in, _ = sae.preprocess(x.to(sae.device, sae.dtype))
        parts = [sae.encode(x_in[rows]) for rows in sae.row_chunks(len(x_in))]
        self.d_sae = sae.d_sae
        self.sparse = parts[0].indices is not None if parts else False
        if self.sparse:
            self.values = torch.cat([p.values for p in parts]).float().cpu()
            self.indices = torch.cat([p.indices for p in parts]).cpu()
        else:
            self.dense_all = torch.cat([p.values for p in parts]).float().cpu() if parts else torch.zeros(0, sae.d_sae)

    def rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Dense [len(rows), d_sae] codes."""
        if not self.sparse:
            return self.dense_all[rows]
        out = torch.zeros(len(rows), self.d_sae)
        return out.scatter_(1, self.indices[rows], self.values[rows])

    def columns(self, latents: torch.Tensor) -> torch.Tensor:
        """[n, len(latents)] codes of the given latents for every row."""
        if not self.sparse:
            return self.dense_all[:, latents]
        n = len(self.values)
        out = torch.zeros(n, len(latents))
        for slot, latent in enumerate(latents.tolist()):
            hit = self.indices == latent
            out[:, slot] = (self.values * hit).sum(dim=1)
        return out


def _per_letter_metrics(values: dict[str, float], name: str, reason: str) -> dict[str, Metric]:
    if not values:
        return {name: Metric.null(reason)}
    numbers = list(values.values())
    stderr = statistics.stdev(numbers) / len(numbers) ** 0.5 if len(numbers) > 1 else None
    out = {name: Metric(statistics.mean(numbers), stderr)}
    out.update({f"{name}/{letter}": Metric(value) for letter, value in sorted(values.items())})
    return out


@register_task
class AbsorptionTask(Task):
    name = "absorption"
    page_sections = (PageSection(30, "sae_bench.tasks.absorption.page:render"),)
    version = "1"
    Config = AbsorptionConfig
    description = "feature absorption on first-letter features (SAEBench 0.6.0's definitions)"
    random_sources = ("words, prompts and ICL examples: random.Random(random_seed), SAEBench's draw order",
                      "probe init and shuffling: torch global RNG seeded with random_seed inside fork_rng",
                      "k-sparse refits: scikit-learn lbfgs (deterministic)")
    metrics = (
        MetricSpec("mean_absorption_fraction", "lower", "mean over letters of Σ absorption fraction / n probe "
                   "true positives (SAEBench mean_absorption_fraction_score; /LETTER: one letter)",
                   "fraction", 0.02, headline=60, parts=True, frontier=4),
        MetricSpec("mean_full_absorption", "lower", "mean over letters of the share of probe true positives whose "
                   "main latents are silent and one aligned latent carries ≥ 40% of the probe projection "
                   "(SAEBench mean_full_absorption_score; /LETTER: one letter)", "fraction", 0.02, parts=True),
        MetricSpec("mean_num_split_features", "lower", "mean over letters of the number of main latents found by "
                   "k-sparse probing with an F1 jump > 0.03 (SAEBench mean_num_split_features; /LETTER: one letter)",
                   "latents", 0.2, parts=True),
    )

    def skip_reason(self, sae, ctx) -> str | None:
        if ctx.is_pooled or ctx.hookpoint == "pooled_final_norm":
            return "absorption reads the activation at one token; a pooled hookpoint has one vector per text"
        if sae.is_transcoder:
            return "absorption probes the SAE's own input site; a transcoder's decoder writes another site"
        return ctx.memo(f"absorption/applies/{self.config.config_hash()}", lambda: self._tokenizer_problem(ctx))

    def _tokenizer_problem(self, ctx) -> str | None:
        """Why this tokenizer cannot run the eval as configured (tokenizer only, no model): too few
        words, or `prompt_token_pos` not landing on the word of a prompt."""
        cfg = self.config
        words = single_token_words(ctx.model.tokenizer)
        needed = 2 * (cfg.n_icl_examples + 1)
        if len(words) < needed:
            return f"the tokenizer has only {len(words)} single-token alphabetic words ({needed} needed)"
        word = words[len(words) // 2]
        prompt = icl_prompt(word, words, random.Random(0), template=cfg.prompt_template, n_examples=cfg.n_icl_examples)
        ids = ctx.model.tokenizer(prompt.text).input_ids
        if len(ids) < -cfg.prompt_token_pos:
            return f"prompt_token_pos={cfg.prompt_token_pos} is before the start of a {len(ids)}-token prompt"
        read = ctx.model.tokenizer.decode([ids[cfg.prompt_token_pos]]).strip()
        if read != word.strip():
            return (f"prompt_token_pos={cfg.prompt_token_pos} reads {read!r}, not the word {word.strip()!r}, with this "
                    f"tokenizer and template {cfg.prompt_template!r}: set --task-option absorption.prompt_token_pos")
        return None

    def check_inputs(self, resources) -> None:
        cfg = self.config
        if "{word}" not in cfg.prompt_template:
            raise InputError("--task-option absorption.prompt_template", "must contain {word}")

    def run(self, sae, ctx) -> TaskOutput:
        cfg = self.config
        data: ProbeData = ctx.memo(f"absorption/{ctx.hookpoint}/{self.config.config_hash()}",
                                   lambda: _probe_data(ctx, cfg))
        test_truth = [data.test_letters == letter for letter in range(26)]
        probe_f1 = [f1_score(test_truth[l], data.test_logits[:, l] > 0) for l in range(26)]
        passing = [l for l in range(26) if probe_f1[l] > cfg.min_GT_probe_f1]
        counts = {"words": len(data.words), "train_words": len(data.train_letters),
                  "test_words": len(data.test_letters), "letters_probe_ok": len(passing)}
        artifacts: dict[str, Any] = {"probe_f1": {LETTERS[l]: probe_f1[l] for l in range(26)}}
        if len(passing) < cfg.min_feats_for_eval:
            reason = (f"only {len(passing)} letters have a first-letter probe with F1 > {cfg.min_GT_probe_f1} "
                      f"(min_feats_for_eval={cfg.min_feats_for_eval}): the model's activations carry too little "
                      "first-letter information here")
            return TaskOutput({spec.name: Metric.null(reason) for spec in self.metrics}, counts, artifacts, [reason])

        train_codes, test_codes = SaeCodes(sae, data.x_train), SaeCodes(sae, data.x_test)
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(data.torch_state)
            n_classes = int(data.train_letters.max()) + 1  # SAEBench one-hots without a class count
            l1 = train_multi_probe(train_codes.rows, torch.nn.functional.one_hot(data.train_letters, n_classes),
                                   sae.d_sae, batch_size=cfg.k_sparse_probe_batch_size,
                                   epochs=cfg.k_sparse_probe_num_epochs, lr=L1_PROBE_LR, end_lr=L1_PROBE_END_LR,
                                   weight_decay=L1_PROBE_WEIGHT_DECAY, l1=cfg.k_sparse_probe_l1_decay)
        train_classes = sorted(set(data.train_letters.tolist()))
        ks = list(range(1, cfg.max_k_value + 1))
        probes = k_sparse_probes(l1.weight, train_codes.columns, data.train_letters.numpy(), train_classes, ks)

        letter_prompts = ctx.memo(f"absorption/{ctx.hookpoint}/{self.config.config_hash()}/letters",
                                  lambda: _letter_prompts(ctx, cfg, data, train_classes, test_truth, passing))
        per_letter: dict[str, dict] = {}
        fraction, full, n_split, skipped = {}, {}, {}, {}
        decoder = sae.W_dec.float().cpu()
        for l, letter in enumerate(LETTERS):
            if l not in train_classes or not bool(test_truth[l].any()):
                skipped[letter] = (f"{int((data.train_letters == l).sum())} training and "
                                   f"{int(test_truth[l].sum())} held-out words")
                continue
            f1_by_k, latents_by_k = [], []
            for k in ks:
                probe = probes[k][l]
                score = probe.score(test_codes.columns)
                f1_by_k.append(f1_score(test_truth[l], score > 0))
                latents_by_k.append(probe.latents.tolist())
            main = split_latents(f1_by_k, latents_by_k, cfg.f1_jump_threshold)
            positives, x = letter_prompts[l]
            entry = {"probe_f1": probe_f1[l], "sparse_f1_by_k": f1_by_k, "main_latents": main,
                     "probe_true_positives": len(positives)}
            per_letter[letter] = entry
            if l not in passing or not positives:
                continue
            codes = SaeCodes(sae, x).rows(torch.arange(len(x)))
            result = word_absorption(x, codes, data.probe_weight[l], decoder, main)
            fraction[letter] = float(result.fraction.sum()) / len(positives)
            full[letter] = float(result.full.sum()) / len(positives)
            n_split[letter] = len(main)
            entry.update(absorption_fraction=fraction[letter], full_absorption_rate=full[letter],
                         n_full_absorption=int(result.full.sum()))
        reason = "no letter with a passing probe has probe true positives"
        metrics = {**_per_letter_metrics(fraction, "mean_absorption_fraction", reason),
                   **_per_letter_metrics(full, "mean_full_absorption", reason),
                   **_per_letter_metrics(n_split, "mean_num_split_features", reason)}
        counts["letters_evaluated"] = len(fraction)
        artifacts["per_letter"] = per_letter
        notes = []
        if skipped:
            artifacts["letters_skipped"] = skipped
            notes.append("letters without training or held-out words (not evaluated): "
                         + ", ".join(f"{k} ({v})" for k, v in skipped.items()))
        return TaskOutput(metrics, counts, artifacts, notes)
