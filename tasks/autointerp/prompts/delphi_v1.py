"""Detection and fuzzing prompts in the shape of EleutherAI delphi's classifier scorers (our own
wording of their instructions; delphi's prompts are few-shot chat transcripts we do not ship).

Both show a batch of contexts numbered "Example 0", "Example 1", ... and want one Python list of
0/1, one entry per example, in order. Detection: does the example contain what the explanation
describes. Fuzzing: the example has some tokens marked `<<...>>`; are the marked tokens the ones
the explanation describes. The answer is the first `[...]` in the reply; a list of the wrong
length, or anything but 0/1, is a parse failure (counted, never a score).
"""

from __future__ import annotations

import json
import re

VERSION = "delphi_v1"

DETECTION_SYSTEM = (
    "You are a careful linguistics researcher. You will be given a description of a feature of text, "
    "such as \"male pronouns\" or \"text about weather\", and then several text examples. Some examples "
    "have the feature and some do not. For each example in order, write 1 if it has the feature and 0 if "
    "it does not. Reply with a Python list of 0s and 1s, one per example, and nothing else."
)

FUZZING_SYSTEM = (
    "You are a careful linguistics researcher. You will be given a description of a feature of text and "
    "then several text examples. In each example some tokens are marked between << and >>. For each "
    "example in order, write 1 if the marked tokens are ones the description fits, and 0 if they are "
    "marked wrongly. Reply with a Python list of 0s and 1s, one per example, and nothing else."
)

DEMO = "Feature: the word \"cat\".\n\nExample 0: the dog slept\nExample 1: a cat sat\n\nAnswer: [0, 1]"


def render(tokens, marked=None) -> str:
    """Concatenated tokens, contiguous marked runs wrapped in `<<` `>>`; newlines shown as "↵"."""
    marks = list(marked) if marked is not None else [False] * len(tokens)
    out, inside = [], False
    for token, on in zip(tokens, marks):
        if on and not inside:
            out.append("<<")
        if not on and inside:
            out.append(">>")
        inside = on
        out.append(token)
    if inside:
        out.append(">>")
    return "".join(out).replace("\ufffd", "").replace("\n", "↵")


def messages(kind: str, explanation: str, shown: list[str]) -> list[dict[str, str]]:
    system = DETECTION_SYSTEM if kind == "detection" else FUZZING_SYSTEM
    examples = "\n".join(f"Example {i}: {text}" for i, text in enumerate(shown))
    return [{"role": "system", "content": f"{system}\n\n{DEMO}"},
            {"role": "user", "content": f"Feature: {explanation}\n\n{examples}\n\nAnswer:"}]


def max_tokens(n_shown: int) -> int:
    return 3 * n_shown + 4


def parse_list(text: str, n: int) -> list[int] | None:
    """The first bracketed list of n 0/1 values in `text`, or None."""
    match = re.search(r"\[.*?\]", text, flags=re.S)
    if match is None:
        return None
    try:
        values = json.loads(match.group(0))
    except ValueError:
        return None
    if not isinstance(values, list) or len(values) != n or any(v not in (0, 1) or isinstance(v, bool) for v in values):
        return None
    return [int(v) for v in values]
