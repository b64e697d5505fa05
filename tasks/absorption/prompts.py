"""In-context first-letter prompts, drawn exactly as SAEBench draws them (same sequence of
`random` calls, so one `random.Random(seed)` reproduces its prompts word for word).

A prompt for word w: `sep` + k examples `template(e) + " E"` joined by `sep`, then `sep` +
`template(w)`; the k examples are `rng.sample(pool, k)`, redrawn (at most 1000 times) while w is
among them. The probe data set shuffles the words once (`rng.sample(words, len(words))`), takes
the first `train_fraction` as training words and draws each split's examples from that split.
This module never runs a model.
"""

from __future__ import annotations

import random
from typing import NamedTuple

from sae_bench.tasks.absorption.vocab import first_letter_class


class Prompt(NamedTuple):
    text: str
    word: str
    letter: int  # 0..25


def first_letter_answer(word: str) -> str:
    """' C' for 'cat' or ' cat': a space and the first letter, upper case."""
    letters = [char for char in word.strip() if char.isalpha()]
    return " " + letters[0].upper()


def icl_prompt(word: str, pool: list[str], rng: random.Random, *, template: str, n_examples: int,
               separator: str = "\n", max_attempts: int = 1000) -> Prompt:
    for _ in range(max_attempts):
        examples = rng.sample(pool, n_examples)
        if word not in examples:
            break
    else:
        raise ValueError(f"no example set without {word!r} after {max_attempts} draws")
    shots = [template.format(word=example) + first_letter_answer(example) for example in examples]
    text = separator + separator.join(shots) + separator + template.format(word=word)
    return Prompt(text, word, first_letter_class(word))


def probe_prompts(words: list[str], rng: random.Random, *, template: str, n_examples: int,
                  train_fraction: float) -> tuple[list[Prompt], list[Prompt]]:
    """(train, test) prompts: one per word, the words shuffled and split as SAEBench does."""
    shuffled = rng.sample(words, len(words))
    cut = int(len(shuffled) * train_fraction)
    train_words, test_words = shuffled[:cut], shuffled[cut:]
    train = [icl_prompt(w, train_words, rng, template=template, n_examples=n_examples) for w in train_words]
    test = [icl_prompt(w, test_words, rng, template=template, n_examples=n_examples) for w in test_words]
    return train, test
