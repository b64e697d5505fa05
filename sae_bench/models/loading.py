"""Load a tokenizer and a causal LM from a local folder, a hub id or a GGUF file.

Gemma 4 checkpoints published as Gemma4ForConditionalGeneration (vision/audio towers plus the
language model) are loaded with that class; the adapter then works on its language model.
HF_HUB_OFFLINE is honoured (local files only, no download attempt). `device="auto"` spreads a model
too large for one device with `device_map="auto"`. Weights come from safetensors or GGUF only:
a folder offering only pickles (pytorch_model.bin) is refused by name. Any failure to find or load the model becomes
one InputError naming the ref. This module never registers hooks and never runs the model.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from sae_bench.core.errors import InputError
from sae_bench.inputs.input_files import refuse_special

_CONDITIONAL = ("Gemma4ForConditionalGeneration",)


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


_HUB_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")


def _looks_like_path(ref: str) -> bool:
    """Not a hub id ("name" or "owner/name"), so it can only be a (missing) local path."""
    return not _HUB_ID.match(ref) or ref.endswith(".gguf")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def _refuse_pickle_only(folder: Path) -> None:
    """A model folder offering weights only as pickles is refused by name: pickles can run code."""
    if any(folder.glob("*.safetensors")) or any(folder.glob("*.gguf")):
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise InputError(folder, f"only pickled weights ({', '.join(pickles)}); models are loaded from safetensors "
                                 "or GGUF only: convert them (e.g. save_pretrained(..., safe_serialization=True))")


def load_model_and_tokenizer(ref: str | os.PathLike, *, revision: str | None = None, gguf_file: str | None = None,
                             device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                             trust_remote_code: bool = False):
    """(model, tokenizer) with the model in eval mode, gradients off, on `device`."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    ref_str = str(ref)
    local = Path(ref_str).expanduser()
    refuse_special(local)
    if local.exists():
        ref_str = str(local)
        if local.is_file() and local.suffix == ".gguf" and gguf_file is None:
            local, gguf_file, ref_str = local.parent, local.name, str(local.parent)
        elif local.is_file():
            raise InputError(ref_str, "a model must be a folder, a hub id or a .gguf file")
    elif _looks_like_path(ref_str):
        raise InputError(ref_str, "model folder does not exist")
    if gguf_file is not None and local.is_dir() and not (local / gguf_file).is_file():
        raise InputError(local / gguf_file, "GGUF file does not exist")

    if gguf_file is None and local.is_dir():
        _refuse_pickle_only(local)
    common = {"revision": revision, "trust_remote_code": trust_remote_code}
    if hub_offline():
        common["local_files_only"] = True
    if gguf_file is not None:
        common["gguf_file"] = gguf_file
    try:
        config = AutoConfig.from_pretrained(ref_str, **common)
        tokenizer = AutoTokenizer.from_pretrained(ref_str, **common)
        load_kwargs = dict(common, dtype=dtype)
        if gguf_file is None:  # never fall back to pickled weights (pytorch_model.bin), local or hub
            load_kwargs["use_safetensors"] = True
        if str(device) == "auto":
            load_kwargs["device_map"] = "auto"
        architectures = list(getattr(config, "architectures", None) or [])
        if any(a in _CONDITIONAL for a in architectures):
            from transformers import Gemma4ForConditionalGeneration

            model = Gemma4ForConditionalGeneration.from_pretrained(ref_str, **load_kwargs)
        else:
            model = AutoModelForCausalLM.from_pretrained(ref_str, **load_kwargs)
    except InputError:
        raise
    except Exception as exc:  # transformers raises OSError/ValueError/KeyError/... for missing or bad models
        if not trust_remote_code and "custom code" in str(exc):
            raise InputError(ref_str, "the model needs custom code (auto_map in its config.json), which is never run "
                                      "unless asked for: pass --trust-remote-code (trust_remote_code=True)") from exc
        offline_miss = hub_offline() and not local.exists()
        where = "offline (HF_HUB_OFFLINE=1), not in the local cache" if offline_miss else "cannot load"
        raise InputError(ref_str, f"{where}: {_first_line(exc)}") from exc
    if str(device) != "auto":
        model = model.to(device)
    model.eval()
    model.requires_grad_(False)
    return model, tokenizer
