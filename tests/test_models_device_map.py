"""Models spread with accelerate (`device="auto"` -> `device_map="auto"`): hooks, splices, suffix forwards.

A model too large for one device is loaded with `device_map="auto"`; accelerate then wraps each
placed module in a hook that moves its inputs to the module's execution device, and offloaded
modules keep their weights on the `meta` device until they run. On CPU the tiny fixture model is
dispatched by hand (`accelerate.dispatch_model`, one entry per layer, the last layer, final norm
and lm_head offloaded to disk) so every such hook is active; every adapter read (capture, splice,
residual, suffix forward, pooled vector, logits) and the spliced_loss task must give exactly the
plain model's numbers. On a CUDA machine the same checks run with half the model on the GPU and
the rest offloaded to CPU, and with a forward that starts on the GPU and ends on the CPU. `sae-bench run --device auto` runs end to end with the numbers of
`--device cpu`.
"""

from __future__ import annotations

import functools
import json

import pytest
import torch

from sae_bench.fixtures import EVAL_CORPUS_PATH, SAES_DIR, TINY_MODEL_DIR

accelerate = pytest.importorskip("accelerate")
CUDA = torch.cuda.is_available()


def _plain():
    from sae_bench.models import ModelAdapter

    return ModelAdapter.load(TINY_MODEL_DIR)


def _device_map(early: str, late: str, head: str | None = None) -> dict[str, str]:
    """Embeddings and layers 0-1 on `early`; layers 2-3 and the final norm on `late`; lm_head on
    `head` (default `late`). The fixture's lm_head is tied to the input embeddings, so a map that
    really runs modules on two devices keeps them together, as `device_map="auto"` does."""
    top = ["model.embed_tokens", "model.embed_tokens_per_layer", "model.per_layer_model_projection",
           "model.per_layer_projection_norm", "model.rotary_emb"]
    placed = {name: early for name in top}
    placed.update({f"model.layers.{i}": early if i < 2 else late for i in range(4)})
    placed.update({"model.norm": late, "lm_head": head or late})
    return placed


def _dispatched(device_map: dict[str, str], offload_dir, main_device: str | None = None):
    """main_device None: accelerate's default (modules mapped to cpu/disk are offloaded and run on the
    first GPU); "cpu": modules mapped to cpu run there, so one forward crosses devices."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sae_bench.models import ModelAdapter

    model = AutoModelForCausalLM.from_pretrained(TINY_MODEL_DIR).eval()
    model = accelerate.dispatch_model(model, device_map=device_map, main_device=main_device,
                                      offload_dir=str(offload_dir), force_hooks=True,
                                      skip_keys=model._skip_keys_device_placement)
    return ModelAdapter.from_pretrained_model(model, AutoTokenizer.from_pretrained(TINY_MODEL_DIR),
                                              model_id=str(TINY_MODEL_DIR))


def _corpus(tokenizer, n: int):
    """The first n fixture texts (read directly: `datasets` is not needed on a GPU machine)."""
    from sae_bench.inputs.corpus import tokenize

    lines = EVAL_CORPUS_PATH.read_text(encoding="utf-8").splitlines()[:n]
    return tokenize([json.loads(line)["text"] for line in lines], tokenizer, seq_len=40, corpus_id="eval")


@functools.lru_cache(maxsize=None)
def _batch():
    corpus = _corpus(_plain().tokenizer, 6)
    return corpus.input_ids, corpus.attention_mask


def _same(a: torch.Tensor, b: torch.Tensor, exact: bool = True) -> None:
    if exact:
        assert torch.equal(a.cpu(), b.cpu())
    else:  # GPU and CPU kernels round differently
        torch.testing.assert_close(a.cpu(), b.cpu(), rtol=1e-4, atol=1e-4)


def _check_adapter_matches_plain(spread, plain, exact: bool = True):
    same = functools.partial(_same, exact=exact)
    ids, mask = _batch()
    assert any(hasattr(m, "_hf_hook") for m in spread.model.modules())  # accelerate's hooks are in place
    for hookpoint in ("layers.1", "layers.2"):
        clean = plain.residual(hookpoint, ids, mask)
        same(spread.residual(hookpoint, ids, mask), clean)
        with spread.capture(hookpoint) as box:
            spread.final_hidden(ids, mask)
        same(box.value, clean)
        noisy = clean.cpu() + 0.5 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
        with plain.splice(hookpoint, lambda _h: noisy):
            want = plain.final_hidden(ids, mask)
        with spread.splice(hookpoint, lambda _h: noisy):
            same(spread.final_hidden(ids, mask), want)
        same(spread.final_hidden_from(hookpoint, noisy, ids, mask), plain.final_hidden_from(hookpoint, noisy, ids, mask))
    same(spread.pooled_final_norm(ids, mask), plain.pooled_final_norm(ids, mask))
    same(spread.logits(ids, mask), plain.logits(ids, mask))


def _spliced_loss(model):
    from sae_bench.activations import ActivationSource
    from sae_bench import load_checkpoint
    from sae_bench.core.context import EvalContext
    from sae_bench.tasks.spliced_loss import SplicedLossTask

    corpus = _corpus(model.tokenizer, 10)
    source = ActivationSource(model, "layers.2", corpus, batch_size=4, show_progress=False)
    ctx = EvalContext(model=model, hookpoint="layers.2", corpus=corpus, activations=source,
                      device=model.device, batch_size=4, show_progress=False)
    sae = load_checkpoint(SAES_DIR / "sparsify/tiny-gemma4-8x", hookpoint="layers.2", device=str(model.device))
    out = SplicedLossTask(chunk_positions=33).run(sae, ctx)
    return {name: metric.to_json() for name, metric in out.metrics.items()}


def test_device_auto_loads_and_matches_cpu():
    from sae_bench.models import ModelAdapter

    auto = ModelAdapter.load(TINY_MODEL_DIR, device="auto")
    plain = _plain()
    ids, mask = _batch()
    assert auto.device == torch.device("cuda:0" if CUDA else "cpu")  # the tiny model fits on one device
    _same(auto.residual("layers.2", ids, mask), plain.residual("layers.2", ids, mask), exact=not CUDA)


def test_hooks_splices_and_suffix_work_through_accelerate_hooks_and_offload(tmp_path):
    spread = _dispatched(_device_map("cpu", "disk"), tmp_path)
    assert spread.module("layers.3").self_attn.q_proj.weight.device.type == "meta"  # really offloaded
    plain = _plain()
    _check_adapter_matches_plain(spread, plain)
    assert _spliced_loss(spread) == _spliced_loss(plain)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_half_on_gpu_half_offloaded_to_cpu(tmp_path):
    spread = _dispatched(_device_map("cuda:0", "cpu"), tmp_path)
    assert spread.device.type == "cuda"
    assert spread.module("layers.3").self_attn.q_proj.weight.device.type == "meta"
    gpu = _dispatched({"": "cuda:0"}, tmp_path)  # the same kernels, all on the GPU
    _check_adapter_matches_plain(spread, gpu)
    assert _spliced_loss(spread) == _spliced_loss(gpu)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_forward_that_starts_on_gpu_and_ends_on_cpu(tmp_path):
    spread = _dispatched(_device_map("cuda:0", "cpu", head="cuda:0"), tmp_path, main_device="cpu")
    assert spread.device.type == "cuda" and spread.module("layers.3").self_attn.q_proj.weight.device.type == "cpu"
    plain = _plain()
    _check_adapter_matches_plain(spread, plain, exact=False)
    got, want = _spliced_loss(spread), _spliced_loss(plain)
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name]["value"] == pytest.approx(want[name]["value"], rel=1e-4, abs=1e-5), name


def test_run_with_device_auto_end_to_end(tmp_path):
    from sae_bench.cli import main
    from sae_bench.records.results import iter_records

    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"model": str(TINY_MODEL_DIR), "corpus": str(EVAL_CORPUS_PATH), "seq_len": 32,
                                 "label_root": "auto", "checkpoints": [
                                     {"path": str(SAES_DIR / "sparsify/tiny-gemma4-8x"), "hookpoint": "layers.2",
                                      "format": "sparsify", "label": "l2"}]}))
    numbers = {}
    for device in ("auto", "cpu"):
        results = tmp_path / device
        argv = ["run", "--suite", str(suite), "--results", str(results), "--no-cache", "--quiet", "--device", device,
                "--max-documents", "8", "--tasks", "reconstruction,spliced_loss"]
        assert main(argv) == 0
        records = iter_records(results)
        assert {r.data["device"] for r in records} == {device}
        numbers[device] = {r.task_name: (r.data["metrics"], r.data["counts"]) for r in records}
    assert sorted(numbers["auto"]) == ["reconstruction", "spliced_loss"]
    if not CUDA:  # auto is the CPU here: exactly the same run
        assert numbers["auto"] == numbers["cpu"]
    for task, (metrics, counts) in numbers["cpu"].items():
        assert numbers["auto"][task][1] == counts
        for name, metric in metrics.items():
            assert numbers["auto"][task][0][name]["value"] == pytest.approx(metric["value"], rel=1e-3, abs=1e-5)
