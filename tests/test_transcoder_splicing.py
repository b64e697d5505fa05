"""Transcoders in closed form: what reconstruction compares, what spliced_loss and downstream replace.

A "transcoder" whose latents never fire and whose skip is the identity outputs its input exactly;
read and written at the same site it must leave the model untouched (fvu 0, CE recovered 1, KL 0),
and read at the MLP's input it must replace the MLP's output with that input.
"""

import torch

from sae_bench.activations import ActivationSource
from sae_bench.core.context import EvalContext
from sae_bench.inputs.corpus import load_corpus
from sae_bench.fixtures import EVAL_CORPUS_PATH, TINY_MODEL_DIR
from sae_bench.models import ModelAdapter
from sae_bench.checkpoints.sae import ActivationSpec, SaeMetadata, SparseAutoencoder


def skip_only(d: int, hookpoint: str, output_hookpoint: str, F: int = 4) -> SparseAutoencoder:
    """codes = relu(x @ 0 - 1) = 0; x_hat = 0 + b_dec (0) + x @ I.T = x."""
    meta = SaeMetadata(checkpoint_id="skip-only", format="test", d_in=d, d_sae=F, activation=ActivationSpec("relu"),
                       hookpoint=hookpoint, output_hookpoint=output_hookpoint)
    return SparseAutoencoder(torch.zeros(F, d), -torch.ones(F), torch.randn(F, d), torch.zeros(d), meta,
                             subtract_decoder_bias=False, W_skip=torch.eye(d))


def _context(model, corpus, hookpoint: str, output_hookpoint: str) -> EvalContext:
    def source(site):
        return ActivationSource(model, site, corpus, batch_size=8, show_progress=False)

    return EvalContext(model=model, hookpoint=hookpoint, corpus=corpus, activations=source(hookpoint),
                       batch_size=8, show_progress=False, output_hookpoint=output_hookpoint,
                       target_activations=source(output_hookpoint))


def test_identity_transcoder_at_one_site_changes_nothing():
    from sae_bench.tasks.reconstruction import ReconstructionTask
    from sae_bench.tasks.spliced_loss import SplicedLossTask

    model = ModelAdapter.load(TINY_MODEL_DIR)
    corpus = load_corpus(EVAL_CORPUS_PATH, model.tokenizer, seq_len=32, max_documents=8)
    site = "layers.2.mlp_out"
    ctx = _context(model, corpus, site, site)
    sae = skip_only(model.d_model, site, site)
    rec = ReconstructionTask().run(sae, ctx)
    assert rec.metrics["fvu"].value < 1e-10
    assert any("transcoder" in n for n in rec.notes)
    out = SplicedLossTask().run(sae, ctx)
    assert abs(out.metrics["ce_loss_recovered"].value - 1) < 1e-5 and out.metrics["kl_spliced"].value < 1e-6


def test_reconstruction_compares_with_the_output_site():
    """Read at mlp_in, predict mlp_out: the skip-only transcoder's fvu is that of mlp_in as a guess of mlp_out."""
    from sae_bench.tasks.reconstruction import ReconstructionTask

    model = ModelAdapter.load(TINY_MODEL_DIR)
    corpus = load_corpus(EVAL_CORPUS_PATH, model.tokenizer, seq_len=32, max_documents=8)
    ctx = _context(model, corpus, "layers.2.mlp_in", "layers.2.mlp_out")
    x, y = ctx.activations.all().x.double(), ctx.target_activations.all().x.double()
    expected = float(((y - x) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())
    rec = ReconstructionTask().run(skip_only(model.d_model, "layers.2.mlp_in", "layers.2.mlp_out"), ctx)
    assert abs(rec.metrics["fvu"].value - expected) < 1e-6 * max(1.0, expected)


def test_downstream_splice_replaces_the_output_site_with_the_input_site():
    from sae_bench.tasks.downstream_lm_eval.lm_eval_bridge import sae_splice

    model = ModelAdapter.load(TINY_MODEL_DIR)
    ids = torch.tensor([[2, 40, 41, 42, 43, 44]])
    mask = torch.ones_like(ids)
    sae = skip_only(model.d_model, "layers.2.mlp_in", "layers.2.mlp_out")
    with sae_splice(model, "layers.2.mlp_in", sae, "layers.2.mlp_out"), \
            model.capture("layers.2.mlp_in") as seen_in, model.capture("layers.2.mlp_out") as seen_out:
        model.logits(ids, mask)
    keep = ids[0] != 2  # BOS keeps its clean value
    assert torch.allclose(seen_out.value[0, keep], seen_in.value[0, keep])
    assert not torch.allclose(seen_out.value[0, ~keep], seen_in.value[0, ~keep])
