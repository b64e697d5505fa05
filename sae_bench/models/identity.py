"""Which model a name means, so that a checkpoint trained on one model is not silently evaluated on another.

    model_key("google/gemma-4-E4B-it") == "gemma-4-e4b-it"
    model_key("/models/gemma-4-E4B-it/") == "gemma-4-e4b-it"         (a local folder: its name)
    model_key("/m/gemma-3-270m-q4_k_m-gguf/gemma-3-270m-q4_k_m.gguf") == "gemma-3-270m-q4_k_m"

Two names mean the same model when their keys are equal: the owner, the path, the case, a `.gguf`
file suffix and a trailing `-gguf` do not count; everything else does, so base and `-it`
variants, and different sizes, are different models. Names are not the whole story (`identify`):
a local folder is named by `--model-id` or the hub id its config records, and when the trained
model's architecture, sizes and vocabulary are known they decide (another folder name for the
same model passes; another model with a familiar name does not).
Must never: load a model or touch the network.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any


def model_key(name: str) -> str:
    """The comparable part of a model name (see the module docstring)."""
    text = str(name).strip().replace("\\", "/").rstrip("/")
    last = text.rsplit("/", 1)[-1]
    if last.lower().endswith(".gguf"):
        last = last[: -len(".gguf")]
    key = last.lower()
    return re.sub(r"-gguf$", "", key)


def mismatch_problem(trained_on: str, evaluated: str) -> str | None:
    """Why `trained_on` and `evaluated` differ in a way that matters (None when they are the same model)."""
    a, b = model_key(trained_on), model_key(evaluated)
    if a == b:
        return None
    strip = lambda k: re.sub(r"-(it|pt|instruct)$", "", k)  # noqa: E731
    kind = "base vs instruction-tuned" if strip(a) == strip(b) else "another model"
    return f"was trained on {trained_on} but the evaluated model is {evaluated} ({kind})"


# ------------------------------------------------------------------ identity by what a model is
# What a checkpoint's model name can be checked against besides its name: the architecture, sizes and
# vocabulary of models whose config we have read (gemma-3-270m: from its exported config.json).
KNOWN_MODELS: dict[str, dict[str, object]] = {
    "gemma-3-270m": {"model_type": "gemma3_text", "hidden_size": 640, "num_hidden_layers": 18, "vocab_size": 262144},
}
FINGERPRINT_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")


def fingerprint(config: dict | None) -> dict[str, object] | None:
    """A model's architecture, sizes and vocabulary from its config (the text part of a multimodal one)."""
    if not isinstance(config, dict):
        return None
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    found = {key: text.get(key) for key in FINGERPRINT_KEYS}
    return found if all(v is not None for v in found.values()) else None


def known_fingerprint(name: str) -> dict[str, object] | None:
    """The fingerprint of model `name` when it is known without a download: the table above, else
    the config.json of that hub id in the local hub cache."""
    found = KNOWN_MODELS.get(model_key(name))
    if found is not None or "/" not in str(name):
        return found
    try:
        import json

        from huggingface_hub import try_to_load_from_cache

        path = try_to_load_from_cache(str(name), "config.json")
        return fingerprint(json.loads(open(path, encoding="utf-8").read())) if isinstance(path, str) else None
    except Exception:  # no cache, no such entry, an unreadable file: unknown
        return None


def recorded_hub_id(config: dict | None) -> str | None:
    """The hub id a local model folder's config records (`_name_or_path`, when it is one)."""
    name = config.get("_name_or_path") if isinstance(config, dict) else None
    if isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", name):
        return name
    return None


def identify(trained_on: str, evaluated: str, *, config: dict | None = None, model_id: str | None = None,
             local_folder: bool = False) -> str | None:
    """Why a checkpoint trained on `trained_on` must not be evaluated on this model, None when it may.

    The evaluated model is named by `model_id` (what the user says the local folder is), else by
    the hub id its config records, else by `evaluated` (what was typed). Different architectures,
    sizes or vocabularies (when the trained model's are known) are another model whatever the
    names. A local folder whose name is no variant of the trained model's (a cache folder such as
    `gemma-3-270m-a5fd3b62230a-v1`) is identified by its config: the same fingerprint is the same model."""
    name = model_id or recorded_hub_id(config) or evaluated
    theirs, ours = known_fingerprint(trained_on), fingerprint(config)
    if theirs is not None and ours is not None and theirs != ours:
        differ = ", ".join(f"{k} {ours[k]} vs {theirs[k]}" for k in FINGERPRINT_KEYS if ours[k] != theirs[k])
        return f"was trained on {trained_on} but the evaluated model {name} is another model ({differ})"
    problem = mismatch_problem(trained_on, name)
    if problem is None or model_id is not None or name != evaluated or not local_folder:
        return problem
    a, b = model_key(trained_on), model_key(name)
    variant = re.sub(r"-(it|pt|instruct)$", "", a) == re.sub(r"-(it|pt|instruct)$", "", b)
    if not variant and theirs is not None and theirs == ours:
        return None  # the folder's name is only a name; its config is the trained model's
    return problem


def evaluated_identity(ref: str, model, model_id: str | None = None) -> dict[str, Any]:
    """What the evaluated model is besides the name typed: its config (as its folder's config.json
    records it, else as loaded), `--model-id`, and whether the name is only a local folder's."""
    local = Path(str(ref)).expanduser()
    config = None
    if local.is_dir() and (local / "config.json").is_file():
        try:
            config = json.loads((local / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = None
    if config is None and hasattr(getattr(model, "model", None), "config"):
        config = model.model.config.to_dict()
        config.pop("_name_or_path", None)  # as loaded: the path it was loaded from, not a hub id
    return {"config": config, "model_id": model_id, "local_folder": local.exists()}
