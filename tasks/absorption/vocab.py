"""The words absorption probes on: every single-token alphabetic word of the model's tokenizer.

SAEBench's definition (`get_alpha_tokens`): a token whose text, after at most one leading space,
is non-empty and made of ASCII letters only. SAEBench lists them in the tokenizer's dict order,
which for fast tokenizers changes from process to process (a Rust hash map), so its runs are not
reproducible even with a seed; we list them in token-id order. An optional seeded subset keeps a
CPU run short. This module never runs a model.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

from sae_bench.core.errors import DataError

LETTERS = string.ascii_lowercase
_ALPHA = set(string.ascii_letters)


def token_text(tokenizer, token: str) -> str:
    """The text of one vocabulary entry; a SentencePiece '▁' token always keeps its leading space."""
    text = tokenizer.convert_tokens_to_string([token])
    if token.startswith("▁") and not text.startswith(" "):
        text = " " + text
    return text


def is_alpha_word(text: str) -> bool:
    word = text[1:] if text.startswith(" ") else text
    return bool(word) and all(char in _ALPHA for char in word)


def single_token_words(tokenizer) -> list[str]:
    """Every alphabetic single-token word, in token-id order."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    return [text for text in (token_text(tokenizer, token) for token, _ in vocab) if is_alpha_word(text)]


def seeded_subset(words: list[str], n: int | None, seed: int) -> list[str]:
    """`n` words drawn with random.Random(seed), kept in their original order (all when n is None)."""
    if n is None or n >= len(words):
        return list(words)
    keep = sorted(random.Random(seed).sample(range(len(words)), n))
    return [words[i] for i in keep]


def first_letter_class(word: str) -> int:
    """0..25: the first letter of the word (SAEBench's answer class)."""
    return LETTERS.index(word.strip()[0].lower())


def read_words_file(path: str, allowed: list[str]) -> list[str]:
    """A JSON list of words, each one of `allowed` (the tokenizer's single-token words), in file order."""
    try:
        words = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(path, f"cannot read a JSON list of words ({type(exc).__name__})") from None
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise DataError(path, "expected a JSON list of strings")
    known = set(allowed)
    unknown = [w for w in words if w not in known]
    if unknown:
        raise DataError(path, f"{len(unknown)} entries are not single-token alphabetic words of this tokenizer "
                              f"(first: {unknown[0]!r})")
    return words
