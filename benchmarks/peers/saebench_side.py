"""SAEBench 0.6.0's own absorption and sparse-probing code on our model, SAE and words: run by the SAEBench venv's
Python (its package is also called `sae_bench`, so this file never imports ours).

What is adapted, and only this (everything else is SAEBench's code as installed):
- the model: `HookedTransformer.from_pretrained_no_processing` is replaced by `HFHooked`, a thin
  TransformerLens look-alike over the same Hugging Face model folder our side loads
  (`run_with_cache` returns `blocks.L.hook_resid_post` = the output of decoder layer L, stopping
  the forward there — SAEBench's absorption asks for a full forward, which `--full-forward`
  restores: same numbers, about 7x the model work on Gemma 3 270M at layer 6; `to_tokens`
  prepends BOS; right padding). TransformerLens cannot load a model folder offline by itself.
- the SAE: `general_utils.load_and_format_sae` returns `TopKSae`, the checkpoint's own TopK
  encoder (nn.Linear on x − b_dec as the checkpoint's library computes it, ReLU, top k) with
  SAELens' attribute layout.
- the words: `get_alpha_tokens` returns the word list our side uses (token-id order, optional
  seeded subset): SAEBench's own list comes in the tokenizer's hash-map order, which changes from
  process to process, so no two SAEBench runs see the same words even with one seed.
- seeding: `random.seed(seed)` and `torch.manual_seed(seed)` right before `run_eval`
  (SAEBench's absorption never seeds either), and its probe cache folder is deleted first.
Sparse probing: SAEBench's `load_dataset` reads the local JSON-lines copies (hub schema; its hub
loaders cannot open Europarl's pair configs or GitHub code's loading script from a plain folder),
`run_with_hooks` stops after the hooked layer as TransformerLens' `stop_at_layer` does, and
`torch.manual_seed(seed)` precedes each `train_probe_on_activations(select_top_k=k)` call (its full
run threads one generator through all probes, dense ones included; ours seeds each k alike);
`JAXTYPING_DISABLE=1` (its shape annotations reject its own probe data as shipped); with `--dense`
its dense probes too, called as `run_eval_single_dataset` calls them (seeded alike).
`--shipped` runs its sparse-probing `run_eval` instead, untouched but for the SAE object and the
dataset reader: a TransformerLens model by its official name (this folder laid out as a hub cache),
its own seeding (one generator through all probes: its draws are not ours, so only the cost and
the means are comparable), dense probes, artifacts.
Writes a JSON of its metrics, per-letter details, probe F1s and main latents, CPU seconds and
peak RSS (VmHWM of this process: a fresh address space, so nothing inherited from a parent).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import torch

os.environ.setdefault("JAXTYPING_DISABLE", "1")


def vm_hwm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


class HFHooked:
    """The parts of HookedTransformer that SAEBench's absorption touches."""

    def __init__(self, model_dir: str, layer: int, name: str, device: str = "cpu"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.padding_side = "right"
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval().to(device)
        self.device = device
        config = self.model.config.get_text_config()
        self.cfg = SimpleNamespace(model_name=name, d_model=config.hidden_size)
        self.layer = layer

    def to_tokens(self, text):
        return self.tokenizer([text] if isinstance(text, str) else text, return_tensors="pt", padding=True).input_ids

    full_forward = False  # True: run_with_cache runs every layer and the lm_head, as TransformerLens does

    @torch.no_grad()
    def run_with_cache(self, prompts, names_filter=None):
        """Without `full_forward` the forward stops after the hooked layer (what `stop_at_layer`
        would do): the cached activation is the same, the cost is lower than SAEBench's as shipped."""
        enc = self.tokenizer(list(prompts), return_tensors="pt", padding=True).to(self.device)
        name = f"blocks.{self.layer}.hook_resid_post"
        if not self.full_forward:
            captured = {}
            self.run_with_hooks(enc.input_ids, fwd_hooks=[(name, lambda resid, hook: captured.update(r=resid))],
                                attention_mask=enc.attention_mask)
            return None, {name: captured["r"]}
        out = self.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, output_hidden_states=True,
                         use_cache=False)
        return out.logits, {name: out.hidden_states[self.layer + 1]}

    def to(self, *args, **kwargs):
        return self

    @torch.no_grad()
    def run_with_hooks(self, tokens, stop_at_layer=None, fwd_hooks=(), attention_mask=None):
        """TransformerLens' run_with_hooks for resid_post hooks: the forward stops after the hooked layer."""
        layers = self.model.get_decoder().layers if hasattr(self.model, "get_decoder") else self.model.model.layers
        captured = {}

        class Stop(Exception):
            pass

        def grab(_module, _args, output):
            captured["resid"] = output[0] if isinstance(output, tuple) else output
            raise Stop

        handle = layers[self.layer].register_forward_hook(grab)
        try:
            self.model(input_ids=tokens.to(self.device), use_cache=False,
                       attention_mask=None if attention_mask is None else attention_mask.to(self.device))
        except Stop:
            pass
        finally:
            handle.remove()
        for name, fn in fwd_hooks:
            fn(captured["resid"], hook=None)


class TopKSae(torch.nn.Module):
    def __init__(self, folder: str, layer: int, device: str = "cpu"):
        super().__init__()
        from safetensors.torch import load_file

        weights = load_file(str(Path(folder) / "sae.safetensors"), device=device)
        cfg = json.loads((Path(folder) / "cfg.json").read_text())
        self.encoder_weight = weights["encoder.weight"]  # [d_sae, d_in], as stored
        self.W_enc = self.encoder_weight.T  # SAELens layout [d_in, d_sae] (a view)
        self.b_enc = weights["encoder.bias"]
        self.W_dec = weights["W_dec"]
        self.b_dec = weights["b_dec"]
        self.k = cfg["k"]
        d_sae = self.W_dec.shape[0]
        self.cfg = SimpleNamespace(hook_layer=layer, hook_name=f"blocks.{layer}.hook_resid_post", d_sae=d_sae,
                                   to_dict=lambda: {"d_sae": d_sae, "k": cfg["k"], "hook_layer": layer})

    @property
    def device(self):
        return self.W_dec.device

    @property
    def dtype(self):
        return self.W_dec.dtype

    def to(self, *args, **kwargs):
        return self

    @torch.no_grad()
    def encode(self, x):
        # the checkpoint's own (sparsify) encoder, nn.Linear on x - b_dec: the same float rounding as
        # the checkpoint's library; SAELens' x @ W_enc (other memory layout) differs by ~1e-4 on
        # Gemma 3 270M codes, enough to flip a near-tie in a top-k latent choice
        pre = torch.nn.functional.relu(torch.nn.functional.linear(x.to(self.W_dec.dtype) - self.b_dec,
                                                                  self.encoder_weight, self.b_enc))
        top = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter_(-1, top.indices, top.values)


def run_absorption(args) -> dict:
    import sae_bench
    import sae_bench.evals.absorption.common as common
    import sae_bench.evals.absorption.feature_absorption as feature_absorption
    import sae_bench.evals.absorption.main as absorption_main
    import sae_bench.sae_bench_utils.general_utils as general_utils
    from sae_bench.evals.absorption.eval_config import AbsorptionEvalConfig

    words = json.loads(Path(args.words).read_text())
    shutil.rmtree(common.RESULTS_DIR, ignore_errors=True)  # its probe cache: never reuse one
    model = HFHooked(args.model, args.layer, "peer-model", args.device)
    model.full_forward = args.full_forward
    sae = TopKSae(args.sae, args.layer, args.device)
    absorption_main.HookedTransformer = SimpleNamespace(from_pretrained_no_processing=lambda *a, **k: model)
    general_utils.load_and_format_sae = lambda release, obj, device: ("custom_sae", obj, None)
    common.get_alpha_tokens = feature_absorption.get_alpha_tokens = lambda tokenizer, **kw: list(words)
    config = AbsorptionEvalConfig(model_name="peer-gemma", random_seed=args.seed, llm_batch_size=args.batch,
                                  llm_dtype="float32", prompt_template=args.template,
                                  prompt_token_pos=args.pos, min_feats_for_eval=args.min_letters,
                                  min_GT_probe_f1=args.min_f1)
    workdir = tempfile.mkdtemp(prefix="saebench-peer-")
    os.chdir(workdir)  # it writes artifacts/ into the working directory
    os.makedirs(os.path.join(workdir, "out"))  # its CLI creates the output folder, run_eval does not
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    results = absorption_main.run_eval(config, [("peer", sae)], args.device, os.path.join(workdir, "out"), force_rerun=True)
    probing = json.loads(Path(workdir, "artifacts", "absorption", "peer_custom_sae_k_sparse_probing.json").read_text())
    os.chdir(tempfile.gettempdir())
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(common.RESULTS_DIR, ignore_errors=True)
    out = {"probe_f1": {row["letter"]: row["f1_probe"] for row in probing},
           "main_latents": {row["letter"]: [int(i) for i in row["split_feats"]] for row in probing}}
    if results:
        result = next(iter(results.values()))
        mean = result["eval_result_metrics"]["mean"]
        out["metrics"] = {"mean_absorption_fraction": mean["mean_absorption_fraction_score"],
                          "mean_full_absorption": mean["mean_full_absorption_score"],
                          "mean_num_split_features": mean["mean_num_split_features"]}
        out["per_letter"] = {d["first_letter"]: {"absorption_fraction": d["mean_absorption_fraction"],
                                                 "full_absorption_rate": d["full_absorption_rate"],
                                                 "num_split_features": d["num_split_features"],
                                                 "probe_true_positives": d["num_probe_true_positives"]}
                             for d in result["eval_result_details"]}
    return out


def local_load_dataset(root: Path):
    """`datasets.load_dataset` over the local JSON-lines copies (hub schema, hub-id folders)."""
    def read(folder: Path, split: str) -> list[dict]:
        return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines() if line]

    def load_dataset(name, config=None, split=None, streaming=False, **kwargs):
        folder = root / name / (config or "")
        if split is not None:
            return read(folder, split)
        return {s: read(folder, s) for s in ("train", "test") if (folder / f"{s}.jsonl").exists()}

    return load_dataset


DENSE_PROBE = {"select_top_k": None, "use_sklearn": False, "batch_size": 250, "epochs": 100, "lr": 1e-2}


def hub_cache_of(model_dir: str, official_name: str) -> Path:
    """A temporary folder laid out like the hub cache, holding `model_dir`'s files (symlinks) as
    `official_name`: TransformerLens then loads the model by its official name offline."""
    root = Path(tempfile.mkdtemp(prefix="saebench-hub-"))
    repo = root / f"models--{official_name.replace('/', '--')}"
    (repo / "snapshots" / "local").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("local")
    for item in Path(model_dir).iterdir():
        if item.is_file():
            (repo / "snapshots" / "local" / item.name).symlink_to(item.resolve())
    return root


def run_sparse_probing_shipped(args) -> dict:
    """SAEBench's sparse-probing `run_eval` as shipped: its TransformerLens model by the official
    name (`--official-name`, read from a hub-cache layout of the same folder), its seeding (one
    generator through all of a run's probes), its dense probes, activation artifacts and output
    file. Adapted: the SAE object (`TopKSae`) and the dataset reader (local JSON-lines copies)."""
    hub = hub_cache_of(args.model, args.official_name)
    os.environ["HF_HUB_CACHE"] = str(hub)
    os.environ["HF_HUB_OFFLINE"] = "1"
    import sae_bench.evals.sparse_probing.main as sparse_main
    import sae_bench.sae_bench_utils.dataset_utils as dataset_utils
    from sae_bench.evals.sparse_probing.eval_config import SparseProbingEvalConfig

    dataset_utils.load_dataset = local_load_dataset(Path(args.data_dir))
    sae = TopKSae(args.sae, args.layer, args.device)
    sae.cfg.model_name, sae.cfg.architecture = args.official_name, "topk"  # what its cfg standardisation reads
    config = SparseProbingEvalConfig(model_name=args.official_name, random_seed=args.seed,
                                     dataset_names=args.datasets.split(","), probe_train_set_size=args.train_size,
                                     probe_test_set_size=args.test_size, context_length=args.context_length,
                                     llm_batch_size=args.batch, llm_dtype="float32",
                                     k_values=[int(k) for k in args.k_values.split(",")])
    workdir = Path(tempfile.mkdtemp(prefix="saebench-peer-"))
    try:
        results = sparse_main.run_eval(config, [("peer", sae)], args.device, str(workdir / "out"), force_rerun=True,
                                       artifacts_path=str(workdir / "artifacts"))
    finally:  # its saved activations and the symlinked hub layout
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(hub, ignore_errors=True)
    per_class = results["peer_custom_sae"]["eval_result_unstructured"]
    out: dict = {"per_dataset": {}}
    for key, entry in per_class.items():
        dataset = key.removesuffix("_results").split("/", 1)[1]
        out["per_dataset"][dataset] = {metric: {"mean": sum(v.values()) / len(v), "per_class": v}
                                       for metric, v in entry.items()}
    return out


def run_sparse_probing(args) -> dict:
    """SAEBench's data selection, tokenisation, activation masking, mean pooling and
    `train_probe_on_activations(select_top_k=k)` (seeded with torch.manual_seed(seed) per call)."""
    import sae_bench.evals.sparse_probing.probe_training as probe_training
    import sae_bench.sae_bench_utils.activation_collection as activation_collection
    import sae_bench.sae_bench_utils.dataset_info as dataset_info
    import sae_bench.sae_bench_utils.dataset_utils as dataset_utils

    dataset_utils.load_dataset = local_load_dataset(Path(args.data_dir))
    model = HFHooked(args.model, args.layer, "peer-model", args.device)
    sae = TopKSae(args.sae, args.layer, args.device)
    hook = f"blocks.{args.layer}.hook_resid_post"
    out: dict = {"per_dataset": {}}
    for dataset in args.datasets.split(","):
        train, test = dataset_utils.get_multi_label_train_test_data(dataset, args.train_size, args.test_size, args.seed)
        classes = dataset_info.chosen_classes_per_dataset[dataset]
        train, test = dataset_utils.filter_dataset(train, classes), dataset_utils.filter_dataset(test, classes)
        acts = {}
        for split, data in (("train", train), ("test", test)):
            tokens = dataset_utils.tokenize_data_dictionary(data, model.tokenizer, args.context_length, args.device)
            acts[split] = activation_collection.get_all_llm_activations(tokens, model, args.batch, args.layer, hook,
                                                                          mask_bos_pad_eos_tokens=True)
        reps = {"llm": [activation_collection.create_meaned_model_activations(acts[s]) for s in ("train", "test")],
                "sae": [activation_collection.get_sae_meaned_activations(acts[s], sae, 125) for s in ("train", "test")]}
        entry = {}
        for rep, (x_train, x_test) in reps.items():
            dense = [(f"{rep}_test_accuracy", None)] if args.dense else []
            for name, k in dense + [(f"{rep}_top_{k}_test_accuracy", int(k)) for k in args.k_values.split(",")]:
                torch.manual_seed(args.seed)
                options = DENSE_PROBE if k is None else {"select_top_k": k}  # the calls of run_eval_single_dataset
                _, accuracies = probe_training.train_probe_on_activations(x_train, x_test, **options)
                entry[name] = {"mean": sum(accuracies.values()) / len(accuracies), "per_class": accuracies}
        out["per_dataset"][dataset.split("/", 1)[1]] = entry
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--sae", required=True, help="the sparsify layer folder (cfg.json + sae.safetensors)")
    parser.add_argument("--layer", type=int, required=True)
    parser.add_argument("--words", help="JSON list of the words (absorption)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--template", default="{word} has the first letter:")
    parser.add_argument("--pos", type=int, default=-6)
    parser.add_argument("--min-letters", type=int, default=20)
    parser.add_argument("--min-f1", type=float, default=0.6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full-forward", action="store_true", help="absorption: full forwards, as shipped")
    parser.add_argument("--eval", choices=["absorption", "sparse_probing"], default="absorption")
    parser.add_argument("--data-dir")
    parser.add_argument("--datasets", default="")
    parser.add_argument("--train-size", type=int, default=4000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--context-length", type=int, default=128)
    parser.add_argument("--k-values", default="1,2,5")
    parser.add_argument("--dense", action="store_true", help="sparse probing: also its dense probes")
    parser.add_argument("--shipped", action="store_true",
                        help="sparse probing: its run_eval as shipped (TransformerLens model by --official-name)")
    parser.add_argument("--official-name", default="google/gemma-3-270m")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.eval == "absorption":
        out = run_absorption(args)
    else:
        out = run_sparse_probing_shipped(args) if args.shipped else run_sparse_probing(args)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cost"] = {"cpu_user_s": usage.ru_utime, "cpu_sys_s": usage.ru_stime, "peak_rss_bytes": vm_hwm_bytes()}
    if args.device.startswith("cuda"):
        out["cost"]["peak_cuda_bytes"] = torch.cuda.max_memory_allocated()
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
