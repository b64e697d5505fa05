"""Which model a name means, so that a checkpoint trained on one model is not silently evaluated on another.

    model_key("google/gemma-4-E4B-it") == "gemma-4-e4b-it"
    model_key("/models/gemma-4-E4B-it/") == "gemma-4-e4b-it"         (a local folder: its name)
    model_key("/m/gemma-3-270m-q4_k_m-gguf/gemma-3-270m-q4_k_m.gguf") == "gemma-3-270m-q4_k_m"

Two names mean the same model when their keys are equal: the owner, the path, the case, a `.gguf`
file suffix and a trailing `-gguf` do not count; everything else does, so base and `-it`
variants, and different sizes, are different models. A local copy under another folder name
is a different name too: that is what `--allow-model-mismatch` is for.
Must never: load a model or touch the network.
"""

from __future__ import annotations

import re


def model_key(name: str) -> str:
    """The comparable part of a model name (see the module docstring)."""
    text = str(name).strip().replace("\\", "/").rstrip("/")
    last = text.rsplit("/", 1)[-1]
    if last.lower().endswith(".gguf"):
        last = last[: -len(".gguf")]
    key = last.lower()
    return re.sub(r"-gguf$", "", key)


def same_model(a: str, b: str) -> bool:
    return model_key(a) == model_key(b)


def mismatch_problem(trained_on: str, evaluated: str) -> str | None:
    """Why `trained_on` and `evaluated` differ in a way that matters (None when they are the same model)."""
    a, b = model_key(trained_on), model_key(evaluated)
    if a == b:
        return None
    strip = lambda k: re.sub(r"-(it|pt|instruct)$", "", k)  # noqa: E731
    kind = "base vs instruction-tuned" if strip(a) == strip(b) else "another model"
    return f"was trained on {trained_on} but the evaluated model is {evaluated} ({kind})"
