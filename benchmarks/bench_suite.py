"""Benchmark: the harness (shared activations, suffix-only splicing) against a per-task reference.

What it measures. N checkpoints evaluated at ONE hookpoint with the tasks reconstruction,
sparsity and spliced_loss, two ways, in the same process and on the same model, corpus and
checkpoints:

* harness   — `sae_bench.run.runner.evaluate` (what `sae-bench run` does, records written to a temp
              folder, no activation cache on disk): one prefix pass extracts the activations once
              for every task and checkpoint; the spliced-loss baseline (clean, zero- and
              mean-ablated runs) is computed once per hookpoint through the layers after the
              hookpoint only; each checkpoint then costs one suffix pass per batch.
* reference — what the peers' evals (SAEBench / SAELens `evals.py`) do: for each checkpoint and
              each task the model is run again. Reconstruction and sparsity: one forward per batch
              stopped after the hooked layer (SAELens' `run_with_cache(stop_at_layer=L+1)`).
              Spliced loss: a pass for the mean activation (mean ablation), then per batch full
              forwards for the clean, spliced, zero- and mean-ablated runs, each materialising the
              full-vocabulary logits [B, T, V].

Mean ablation is opt-in in the harness (`spliced_loss.mean_ablation`); both sides run it here.
Both sides compute every number with the same metric code (`sae_bench.metrics.*` accumulators,
`token_ce_kl`, the same seeded bootstrap generator), so the script asserts that every metric value
and standard error agrees — exactly by default (`--rtol 0`). It prints wall times and their ratio,
and writes JSON with `--out`.

Run:  python benchmarks/bench_suite.py [--checkpoints 4] [--max-documents N] [--out bench.json]

Must never: hand-tune the reference to be slow (it uses the same batch size, dtype and device as
the harness and stops its activation forwards after the hookpoint, as the peers do), or time
anything but the evaluation work (both sides load the model and corpus inside their timers).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _importable  # noqa: E402

_importable.ensure()
from sae_bench.fixtures import EVAL_CORPUS_PATH, SAES_DIR, TINY_MODEL_DIR  # noqa: E402

TASKS = ("reconstruction", "sparsity", "spliced_loss")
HOOKPOINT = "layers.2"
# The fixture checkpoints at layers.2, in the order they are taken by --checkpoints N.
FIXTURE_CHECKPOINTS = (
    ("sparsify/tiny-gemma4-8x", "sparsify"),
    ("sparsify/untrained-8x", "sparsify"),
    ("saelens/topk-layers.2", "saelens"),
    ("saelens/jumprelu-layers.2", "saelens"),
    ("saelens/standard-layers.2", "saelens"),
)
SEQ_LEN = 64  # the fixture suite's


@dataclass
class Setting:
    model: str
    corpus: str
    hookpoint: str
    checkpoints: list[tuple[str, str, str]]  # (label, path, format)
    seq_len: int
    batch_size: int
    max_documents: int | None
    device: str
    dtype: str
    seed: int
    show_progress: bool


def fixture_setting(n_checkpoints: int, *, max_documents: int | None = None, batch_size: int = 8, device: str = "cpu",
                    dtype: str = "float32", seed: int = 0, show_progress: bool = True) -> Setting:
    if not 1 <= n_checkpoints <= len(FIXTURE_CHECKPOINTS):
        raise SystemExit(f"--checkpoints must be 1..{len(FIXTURE_CHECKPOINTS)}")
    ckpts = [(rel, str(SAES_DIR / rel), fmt) for rel, fmt in FIXTURE_CHECKPOINTS[:n_checkpoints]]
    return Setting(model=str(TINY_MODEL_DIR), corpus=str(EVAL_CORPUS_PATH), hookpoint=HOOKPOINT, checkpoints=ckpts,
                   seq_len=SEQ_LEN, batch_size=batch_size, max_documents=max_documents, device=device,
                   dtype=dtype, seed=seed, show_progress=show_progress)


# ----------------------------------------------------------------------------- harness
def run_harness(s: Setting) -> dict[str, dict[str, dict]]:
    """{checkpoint label: {task: {metric: {"value", "stderr"}}}} from sae_bench.run.runner.evaluate."""
    from sae_bench import CheckpointSpec, RunConfig, evaluate

    with tempfile.TemporaryDirectory(prefix="bench_suite_") as tmp:
        config = RunConfig(model=s.model, corpus=s.corpus, results_dir=Path(tmp), seq_len=s.seq_len,
                           max_documents=s.max_documents, tasks=list(TASKS), device=s.device, dtype=s.dtype,
                           task_options={"spliced_loss": {"mean_ablation": True}},  # the reference's 4 runs
                           seed=s.seed, batch_size=s.batch_size, overwrite=True, show_progress=False)
        specs = [CheckpointSpec(ref=path, hookpoint=s.hookpoint, format=fmt, label=label)
                 for label, path, fmt in s.checkpoints]
        report = evaluate(config, specs)
    out: dict[str, dict[str, dict]] = {}
    for record in report.records:
        data = record.data
        out.setdefault(data["checkpoint"]["id"], {})[data["task"]["name"]] = {
            name: {"value": m["value"], "stderr": m["stderr"]} for name, m in data["metrics"].items()}
    return out


# ----------------------------------------------------------------------------- reference
def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _sequence_ids(rows: slice, keep: torch.Tensor) -> torch.Tensor:
    return torch.arange(rows.start, rows.stop)[:, None].expand_as(keep)[keep]


def run_reference(s: Setting, progress: bool = True) -> dict[str, dict[str, dict]]:
    """The same metrics, computed the way per-task evals do it (see the module docstring)."""
    from sae_bench import load_checkpoint, load_model
    from sae_bench.inputs.corpus import load_corpus
    from sae_bench.checkpoints.compute_dtype import sae_compute_dtype

    model = load_model(s.model, device=s.device, dtype=s.dtype)
    corpus = load_corpus(s.corpus, model.tokenizer, seq_len=s.seq_len, max_documents=s.max_documents)
    sae_dtype = sae_compute_dtype(s.device, model.dtype, s.hookpoint)  # the same SAE dtype as the harness
    loaders = [(label, lambda path=path, fmt=fmt: load_checkpoint(path, hookpoint=s.hookpoint, format=fmt,
                                                                   device=s.device, dtype=sae_dtype))
               for label, path, fmt in s.checkpoints]
    return reference_metrics(model, corpus, s.hookpoint, loaders, batch_size=s.batch_size, seed=s.seed,
                             progress=progress)


def reference_metrics(model, corpus, hookpoint: str, loaders, *, batch_size: int, seed: int = 0,
                      progress: bool = True) -> dict[str, dict[str, dict]]:
    """Per-task reference on a loaded ModelAdapter and TokenizedCorpus; `loaders`: [(label, () -> SAE)]."""
    from sae_bench.metrics.reconstruction import ReconstructionAccumulator
    from sae_bench.metrics.sparsity import SparsityAccumulator
    from sae_bench.metrics.spliced_loss import (SplicedLossAccumulator, next_token_targets, prediction_mask,
                                                token_ce_kl)
    from sae_bench.tasks.reconstruction import ReconstructionConfig
    from sae_bench.tasks.sparsity import RNG_OFFSET as SPARSITY_RNG_OFFSET
    from sae_bench.tasks.sparsity import SparsityConfig

    rcfg, scfg = ReconstructionConfig(), SparsityConfig()
    hook = model.resolve_hookpoint(hookpoint)
    dev = model.device
    n_seq = corpus.n_sequences
    n_batches = -(-n_seq // batch_size)
    out: dict[str, dict[str, dict]] = {}

    def activations(ids, mask, keep):  # one forward stopped after the hooked layer, kept positions
        with torch.no_grad():
            return model.residual(hook, ids.to(dev), mask.to(dev)).float()[keep.to(dev)]

    for label, load in tqdm(loaders, desc="reference", unit="ckpt", disable=not progress):
        sae = load()
        results: dict[str, dict] = {}

        # reconstruction: its own pass over the corpus
        torch.manual_seed(seed)
        acc = ReconstructionAccumulator(n_seq, sae.d_in)
        for rows, ids, mask, keep in corpus.batches(batch_size):
            x_all, seq_all = activations(ids, mask, keep), _sequence_ids(rows, keep)
            for part in _chunks(x_all.shape[0], rcfg.batch_tokens):
                x_in, _ = sae.preprocess(x_all[part].to(sae.device, sae.dtype))
                acc.update(x_in, sae.decode(sae.encode(x_in), x_in), seq_all[part])
        results["reconstruction"] = acc.finalize()

        # sparsity: its own pass over the corpus
        torch.manual_seed(seed)
        sacc = SparsityAccumulator(n_seq, sae.d_sae, dense_threshold=scfg.dense_threshold)
        for rows, ids, mask, keep in corpus.batches(batch_size):
            x_all, seq_all = activations(ids, mask, keep), _sequence_ids(rows, keep)
            for part in _chunks(x_all.shape[0], scfg.batch_tokens):
                x_in, _ = sae.preprocess(x_all[part].to(sae.device, sae.dtype))
                sacc.update(sae.encode(x_in), seq_all[part])
        results["sparsity"] = sacc.finalize(replicates=scfg.bootstrap_replicates,
                                            generator=torch.Generator().manual_seed(seed + SPARSITY_RNG_OFFSET))

        # spliced loss: a pass for the mean activation, then four full forwards per batch
        torch.manual_seed(seed)
        total = torch.zeros(model.d_model, dtype=torch.float64)
        count = 0
        for rows, ids, mask, keep in corpus.batches(batch_size):
            x_all = activations(ids, mask, keep).cpu()
            for part in _chunks(x_all.shape[0], 4096):  # ActivationSource.mean()'s summation order
                total += x_all[part].to(torch.float64).sum(dim=0)
            count += x_all.shape[0]
        mean = (total / max(count, 1)).to(torch.float32)
        lacc = SplicedLossAccumulator(n_seq)
        for rows, ids, mask, keep in tqdm(corpus.batches(batch_size), total=n_batches, desc=f"{label} spliced",
                                          leave=False, disable=not progress):
            ids_d, mask_d, keep_d = ids.to(dev), mask.to(dev), keep.to(dev)
            pred = prediction_mask(keep)
            targets = next_token_targets(ids)[pred].to(dev)
            pred_d = pred.to(dev)
            pred_seq = torch.arange(rows.start, rows.stop)[:, None].expand_as(keep)[pred]

            def replace(fn):
                def hook_fn(h):
                    h = h.clone()
                    h[keep_d] = fn(h[keep_d]).to(h.dtype)
                    return h
                return hook_fn

            def full_logits(fn=None):  # full forward + full-vocabulary logits [B, T, V]
                if fn is None:
                    return model.logits(ids_d, mask_d)
                with model.splice(hook, replace(fn)):
                    return model.logits(ids_d, mask_d)

            clean = full_logits()[pred_d]
            clean_lp = torch.log_softmax(clean.float(), dim=-1)
            ce_clean, _ = token_ce_kl(clean, targets)
            spliced = full_logits(lambda x: sae.splice(x.to(sae.device, sae.dtype)))[pred_d]
            ce_s, kl_s = token_ce_kl(spliced, targets, clean_lp)
            zero = full_logits(torch.zeros_like)[pred_d]
            ce_z, kl_z = token_ce_kl(zero, targets, clean_lp)
            mean_run = full_logits(lambda x: mean.to(x.device, x.dtype).expand_as(x))[pred_d]
            ce_m, _ = token_ce_kl(mean_run, targets)
            lacc.add_count(pred_seq)
            lacc.add("clean", pred_seq, ce_clean)
            lacc.add("spliced", pred_seq, ce_s, kl_s)
            lacc.add("zero", pred_seq, ce_z, kl_z)
            lacc.add("mean", pred_seq, ce_m)
        results["spliced_loss"] = lacc.finalize()
        out[label] = {task: {name: {"value": m.value, "stderr": m.stderr} for name, m in metrics.items()}
                      for task, metrics in results.items()}
        del sae
    return out


def harness_metrics(model, corpus, hookpoint: str, loaders, *, batch_size: int, seed: int = 0,
                    show_progress: bool = False) -> dict[str, dict[str, dict]]:
    """What `runner.evaluate` does at one hookpoint, on a loaded ModelAdapter and TokenizedCorpus
    (no records, no preflight): the runner's own per-site loop (`sae_bench.run.site_run.SiteRun`), one
    ActivationSource + EvalContext shared by every task and checkpoint."""
    from sae_bench import CheckpointSpec, RunConfig
    from sae_bench.core.task_options import build_tasks
    from sae_bench.run.site_run import SiteRun, site_context

    config = RunConfig(model="", corpus="", results_dir=Path("."), seed=seed, batch_size=batch_size,
                       show_progress=show_progress)
    tasks = build_tasks(list(TASKS), {"spliced_loss": {"mean_ablation": True}})
    out: dict[str, dict[str, dict]] = {}

    def collect(task, output, sae, spec, hookpoint, seconds):
        out.setdefault(spec.display_id, {})[task.name] = {n: {"value": m.value, "stderr": m.stderr}
                                                          for n, m in output.metrics.items()}

    site = SiteRun(site_context(config, model, corpus, str(model.device), hookpoint), collect)
    for label, load in loaders:
        sae = load()
        site.add(sae, CheckpointSpec(ref=label, label=label), tasks)
        del sae
    site.finish()
    return out


# ----------------------------------------------------------------------------- comparison
def compare(harness: dict, reference: dict, rtol: float = 0.0) -> list[str]:
    """Every disagreement between the two metric sets (empty: they agree)."""
    problems = []
    for label in sorted(set(harness) | set(reference)):
        for task in TASKS:
            h = harness.get(label, {}).get(task)
            r = reference.get(label, {}).get(task)
            if h is None or r is None:
                problems.append(f"{label}/{task}: missing on the {'harness' if h is None else 'reference'} side")
                continue
            for name in sorted(set(h) | set(r)):
                for field in ("value", "stderr"):
                    a, b = h.get(name, {}).get(field), r.get(name, {}).get(field)
                    if a is None or b is None:
                        if a is not b:
                            problems.append(f"{label}/{task}/{name}.{field}: harness {a} vs reference {b}")
                        continue
                    if not (a == b or math.isclose(a, b, rel_tol=rtol, abs_tol=0.0)):
                        problems.append(f"{label}/{task}/{name}.{field}: harness {a!r} vs reference {b!r}")
    return problems


def max_relative_difference(harness: dict, reference: dict) -> float:
    """The largest |a - b| / max(|a|, |b|) over every value and standard error both sides have."""
    worst = 0.0
    for label, tasks in harness.items():
        for task, metrics in tasks.items():
            for name, m in metrics.items():
                for field in ("value", "stderr"):
                    a, b = m[field], reference.get(label, {}).get(task, {}).get(name, {}).get(field)
                    if a is not None and b is not None and a != b:
                        worst = max(worst, abs(a - b) / max(abs(a), abs(b)))
    return worst


def _timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", type=int, default=4, help="how many fixture checkpoints at layers.2 (1-5)")
    p.add_argument("--max-documents", type=int, default=None, help="corpus documents (default: all 100)")
    p.add_argument("--batch-size", type=int, default=8, help="sequences per forward, both sides")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", help="model dtype, both sides (bf16 on CUDA also runs the SAEs in bf16)")
    p.add_argument("--repeat", type=int, default=1, help="timed repetitions of each side (the minimum is reported)")
    p.add_argument("--no-warmup", action="store_true", help="skip the untimed 2-document warm-up of both sides")
    p.add_argument("--rtol", type=float, default=0.0, help="relative tolerance of the metric check (0: exact)")
    p.add_argument("--out", type=Path, help="write the measurements as JSON here")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))

    setting = fixture_setting(args.checkpoints, max_documents=args.max_documents, batch_size=args.batch_size,
                              device=args.device, dtype=args.dtype, show_progress=not args.no_progress)
    if not args.no_warmup:  # imports, first-call allocations, thread pools: paid by neither timed run
        warm = fixture_setting(1, max_documents=2, batch_size=args.batch_size, device=args.device, dtype=args.dtype,
                               show_progress=False)
        run_harness(warm)
        run_reference(warm, progress=False)
    harness_times, reference_times = [], []
    harness = reference = None
    for _ in tqdm(range(args.repeat), desc="repeats", disable=args.no_progress or args.repeat == 1):
        t, harness = _timed(run_harness, setting)
        harness_times.append(t)
        t, reference = _timed(run_reference, setting, not args.no_progress)
        reference_times.append(t)
    problems = compare(harness, reference, args.rtol)
    n_metrics = sum(len(m) for tasks in harness.values() for m in tasks.values())
    h, r = min(harness_times), min(reference_times)
    result = {
        "setting": {"model": setting.model, "corpus": setting.corpus, "hookpoint": setting.hookpoint,
                    "checkpoints": [c[0] for c in setting.checkpoints], "tasks": list(TASKS),
                    "max_documents": setting.max_documents, "seq_len": setting.seq_len,
                    "batch_size": setting.batch_size, "device": setting.device, "dtype": setting.dtype,
                    "torch_threads": torch.get_num_threads(), "repeat": args.repeat},
        "harness_seconds": harness_times, "reference_seconds": reference_times,
        "speedup": r / h, "metrics_compared": n_metrics * 2, "rtol": args.rtol,
        "identical": not problems, "problems": problems,
        "max_relative_difference": max_relative_difference(harness, reference),
    }
    print(f"\n{len(setting.checkpoints)} checkpoints @ {setting.hookpoint}, tasks {', '.join(TASKS)}, "
          f"device {setting.device}, {torch.get_num_threads()} threads")
    print(f"{'side':<12}{'wall s (min)':>14}{'all runs':>30}")
    print(f"{'harness':<12}{h:>14.2f}{', '.join(f'{t:.2f}' for t in harness_times):>30}")
    print(f"{'reference':<12}{r:>14.2f}{', '.join(f'{t:.2f}' for t in reference_times):>30}")
    print(f"speedup (reference / harness): {r / h:.2f}x")
    check = "exactly" if args.rtol == 0 else f"within rtol {args.rtol}"
    if problems:
        print(f"METRICS DIFFER ({len(problems)} of {n_metrics * 2} values):")
        for line in problems[:20]:
            print("  " + line)
    else:
        print(f"metrics identical: {n_metrics} metrics x (value, stderr) agree {check}")
    if result["max_relative_difference"]:
        print(f"largest relative difference: {result['max_relative_difference']:.2e}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
