"""The plan of a sweep, before any work: checkpoints, sites, forwards, estimated time and cache disk.

For: `sae-bench run --release NAME` (every published layer), `--dry-run` (the plan and nothing
else) and the disk check that refuses a sweep whose activation cache or hub downloads would not
fit in the free space (one error line, exit 2, before anything is written).

Everything here is an estimate made without loading the model's weights or any checkpoint: the
sites come from the specs (a release's registry entry names them; another checkpoint's site is
its `@hookpoint`, or counted as one site of its own when only the loaded weights would tell), the
model's sizes from its config.json, the tokens from the tokenised corpus. Costs are counted in
multiply-adds per token (each layer's projections, the lm_head, the SAE's encoder) as the current
runner spends them — one site: its capture forward, the clean and zero-ablated suffix runs, one
spliced suffix per checkpoint; several sites: one capture forward through every layer for all of
them (its final states are the clean run, scored once), the zero-ablated suffix per site, one
spliced suffix per checkpoint (assuming every site fits one memory group) — and turned into seconds at the float32 matmul rate
measured here on a small product (a few hundredths of a second). Must never: download weights,
run the model, or write a file.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from sae_bench.core import registry
from sae_bench.core.errors import InputError

CACHE_TOKEN_BYTES = 16  # per kept token: its sequence and position (int64 each) beside the activations


class NoPlan(Exception):
    """The plan cannot be made (the model's tokenizer does not load): the run reports why itself."""


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs from a model's config.json."""

    d_model: int
    n_layers: int
    vocab: int
    layer_macs: int  # multiply-adds per token of one decoder layer (projections and MLP)

    @classmethod
    def from_config(cls, config) -> "ModelShape":
        text = getattr(config, "text_config", None) or config
        d, inter = int(text.hidden_size), int(getattr(text, "intermediate_size", 4 * text.hidden_size))
        heads = int(getattr(text, "num_attention_heads", 1))
        head_dim = int(getattr(text, "head_dim", None) or d // heads)
        kv = int(getattr(text, "num_key_value_heads", heads))
        attention = d * head_dim * (2 * heads + 2 * kv)
        return cls(d, int(text.num_hidden_layers), int(text.vocab_size), attention + 3 * d * inter)


@dataclass(frozen=True)
class SweepPlan:
    checkpoints: int
    sites: list[str]  # where activations are cached (a transcoder adds its output site)
    tokens: int  # attended positions per site (every row of the corpus)
    batches: int
    forwards: int | None  # batch forwards, whole or suffix (None: no model shape)
    seconds: float | None  # estimated CPU/GPU time of the model and SAE arithmetic
    cache_bytes: int | None  # new activation-cache bytes (sites already cached count 0)
    download_bytes: int  # checkpoint weights still to fetch from the hub (estimated from the registry)
    cache_dir: Path | None

    def line(self) -> str:
        """The one-line plan."""
        parts = [f"{self.checkpoints} checkpoint{'s' * (self.checkpoints != 1)} at {len(self.sites)} "
                 f"site{'s' * (len(self.sites) != 1)}", f"{self.tokens:,} tokens in {self.batches} batches"]
        parts.append(f"{self.forwards:,} batch forwards" if self.forwards is not None else "forwards unknown")
        parts.append(f"≈ {_duration(self.seconds)} of arithmetic" if self.seconds is not None else "time unknown")
        if self.cache_dir is None:
            parts.append("no activation cache")
        elif self.cache_bytes is not None:
            parts.append(f"cache +{_size(self.cache_bytes)} in {self.cache_dir}")
        if self.download_bytes:
            parts.append(f"downloads ≈ {_size(self.download_bytes)}")
        return "plan: " + ", ".join(parts)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def planned_site(spec) -> tuple[str, str | None]:
    """(input site, output site or None) of a checkpoint spec without loading it."""
    from sae_bench.inputs import releases

    found = releases.parse_short_ref(spec.label) if spec.label else None
    if found is not None:
        release = releases.get_release(found.release)
        output = release.output_hookpoint.format(layer=found.layer) if release.output_hookpoint else None
        return found.hookpoint, output
    if spec.hookpoint:
        return spec.hookpoint.rsplit("/", 1)[-1], None
    return f"<{spec.display_id}>", None  # only its weights know: one site of its own


def _layer(site: str) -> int | None:
    import re

    match = re.search(r"(?:^|\.)(?:layers|blocks)\.(\d+)", site)
    return int(match.group(1)) if match else None


def _download_bytes(specs) -> int:
    """Estimated bytes of hub checkpoints (registry releases) not yet in the local hub cache."""
    from sae_bench.inputs import releases
    from sae_bench.checkpoints.formats.gemma_scope import parse_folder_name

    total = 0
    for spec in specs:
        found = releases.parse_short_ref(spec.label) if spec.label else None
        if found is None:
            continue
        release = releases.get_release(found.release)
        width = parse_folder_name(Path(found.subfolder or "")).get("width") or release.d_sae
        if not (width and release.d_in) or _in_hub_cache(found.ref, found.subfolder):
            continue
        total += 4 * (2 * release.d_in * width + 2 * width + release.d_in
                      + (release.d_in ** 2 if release.output_hookpoint else 0))
    return total


def _in_hub_cache(repo: str, folder: str | None) -> bool:
    try:
        from huggingface_hub import scan_cache_dir

        for cached in scan_cache_dir().repos:
            if cached.repo_id == repo:
                return any(f.file_path.as_posix().find(f"/{folder}/") >= 0 for rev in cached.revisions
                           for f in rev.files) if folder else True
    except Exception:  # no cache folder yet, or one we cannot read: count it as missing
        return False
    return False


def matmul_rate(seconds: float = 0.05) -> float:
    """Float32 multiply-adds per second of a [512, 1024] x [1024, 1024] product on this CPU."""
    import torch

    a, b = torch.randn(512, 1024), torch.randn(1024, 1024)
    a @ b  # warm-up
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or runs < 2:
        a @ b
        runs += 1
    return runs * 512 * 1024 * 1024 / (time.perf_counter() - start)


def _model_shape(config) -> ModelShape | None:
    from transformers import AutoConfig

    from sae_bench.models.loading import hub_offline

    ref = Path(str(config.model)).expanduser()
    if ref.is_file():  # a .gguf: its config is only known once transformers reads the file
        return None
    try:
        loaded = AutoConfig.from_pretrained(str(ref) if ref.exists() else str(config.model), revision=config.model_revision,
                                            local_files_only=hub_offline() or ref.exists())
        return ModelShape.from_config(loaded)
    except Exception:  # offline and not cached, a config transformers does not know: no estimate
        return None


def _corpus(config):
    """The tokenised corpus, as the run will read it (tokenizer only, no model weights)."""
    from transformers import AutoTokenizer

    from sae_bench.inputs.corpus import load_corpus
    from sae_bench.models.loading import hub_offline

    ref = Path(str(config.model)).expanduser()
    options = {"local_files_only": True} if hub_offline() or ref.exists() else {}
    try:
        if ref.is_file():
            tokenizer = AutoTokenizer.from_pretrained(str(ref.parent), gguf_file=ref.name, **options)
        else:
            tokenizer = AutoTokenizer.from_pretrained(str(ref) if ref.exists() else str(config.model),
                                                      revision=config.model_revision, **options)
    except Exception as exc:  # the run itself reports a model it cannot load, with its own message
        raise NoPlan(f"cannot load the tokenizer of {config.model}: {str(exc).splitlines()[0] if str(exc) else exc}")
    return load_corpus(config.corpus, tokenizer, seq_len=config.seq_len, split=config.corpus_split,
                       column=config.corpus_column, max_documents=config.max_documents,
                       packing=config.corpus_packing, prepend_bos=config.corpus_prepend_bos)


def make_plan(config, specs, task_names: list[str]) -> SweepPlan:
    """The plan of evaluating `specs` with `task_names` under `config` (see the module docstring)."""
    import torch

    from sae_bench.activations.source import cache_key

    corpus = _corpus(config)
    sites_of = [planned_site(spec) for spec in specs]
    input_sites = list(dict.fromkeys(site for site, _ in sites_of))
    sites = list(dict.fromkeys([s for pair in sites_of for s in pair if s]))
    batches = -(-corpus.n_sequences // config.batch_size)
    shape = _model_shape(config)
    splices = any(getattr(registry.find_task(task), "runs_suffix", False) for task in task_names)
    forwards = seconds = cache_bytes = None
    if shape is not None:
        depth = {s: (_layer(s) if _layer(s) is not None else shape.n_layers - 1) for s in sites}
        head = shape.vocab * shape.d_model

        def suffix(site):
            return (shape.n_layers - depth[site] - 1) * shape.layer_macs + head

        if len(sites) > 1:  # one pass for every site, its final states the shared clean run
            forwards = batches * (1 + (len(input_sites) + len(specs) if splices else 0))
            macs = shape.n_layers * shape.layer_macs + (head if splices else 0)
            baselines = 1  # the zero-ablated suffix per input site
        else:  # capture to the site's layer; the clean and the zero-ablated suffix
            forwards = batches * (len(sites) + (2 * len(input_sites) + len(specs) if splices else 0))
            macs = sum((depth[s] + 1) * shape.layer_macs for s in sites)
            baselines = 2
        if splices:  # one spliced suffix per checkpoint; the lm_head after every suffix
            macs += sum(baselines * suffix(s) for s in input_sites) + sum(suffix(site) for site, _ in sites_of)
        widths = [_registry_width(spec) or 16 * shape.d_model for spec in specs]
        macs += sum(2 * shape.d_model * w for w in widths)  # encoder (dense) and decoder per checkpoint
        seconds = macs * corpus.n_tokens / matmul_rate()
        if config.cache_dir is not None:
            per_site = corpus.n_tokens * (4 * shape.d_model + CACHE_TOKEN_BYTES)
            dtype = getattr(torch, config.dtype)
            cache_bytes = 0
            for site in sites:
                key = cache_key(str(config.model), config.model_revision, corpus, site, dtype)
                if not (Path(config.cache_dir) / key / "complete.json").is_file():
                    cache_bytes += per_site + (corpus.n_tokens * 4 * shape.d_model if splices and site in input_sites
                                               else 0)  # the spliced-loss baseline's clean final states
    return SweepPlan(len(specs), sites, corpus.n_tokens, batches, forwards, seconds, cache_bytes,
                     _download_bytes(specs), Path(config.cache_dir) if config.cache_dir is not None else None)


def _registry_width(spec) -> int | None:
    from sae_bench.inputs import releases
    from sae_bench.checkpoints.formats.gemma_scope import parse_folder_name

    found = releases.parse_short_ref(spec.label) if spec.label else None
    if found is None:
        return None
    return parse_folder_name(Path(found.subfolder or "")).get("width") or releases.get_release(found.release).d_sae


def free_bytes(path: Path) -> int:
    """Free bytes on the filesystem that holds `path` (or its nearest existing parent)."""
    path = Path(path).expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def check_disk(plan: SweepPlan) -> None:
    """Refuse, before any work, a sweep whose new cache or downloads exceed the free space."""
    if plan.cache_dir is not None and plan.cache_bytes:
        free = free_bytes(plan.cache_dir)
        if plan.cache_bytes > free:
            raise InputError(plan.cache_dir, f"the sweep needs about {_size(plan.cache_bytes)} of activation cache "
                                             f"but only {_size(free)} is free: free space, pass another --cache-dir, "
                                             "or --no-cache")
    if plan.download_bytes:
        from huggingface_hub import constants

        hub = Path(os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE)
        free = free_bytes(hub)
        if plan.download_bytes > free:
            raise InputError(hub, f"the sweep would download about {_size(plan.download_bytes)} of checkpoints "
                                  f"but only {_size(free)} is free in the hub cache")
