"""An independent reference for the harness's metrics, written the way SAELens and SAEBench do it.

Plain torch + transformers, sharing no code with `sae_bench` (it must be able to disagree):
  * the SAE is read with safetensors from its sparsify folder (`cfg.json` + `sae.safetensors`) and
    applied densely: codes = TopK(relu((x - b_dec) W_enc^T + b_enc)), x_hat = codes W_dec + b_dec;
  * activations come from a `register_forward_hook` on the HF decoder layer; the first pass stops
    the forward after that layer (as SAELens's `stop_at_layer`);
  * clean, spliced, zero-ablated and mean-ablated runs are full forwards of the whole model per batch,
    with a forward hook that replaces the layer's output, and full-vocabulary log_softmax over the
    [B, T, V] logits (no chunking, no suffix-only forward, no cached baselines).

Definitions are the harness's contract (DESIGN.md / README "Conventions"), restated here from the
prose, not from its code: kept tokens are real tokens that are not BOS, EOS or pad; the prediction
at position t counts iff tokens t and t+1 are kept; the spliced run replaces kept positions only;
with ablate="kept" the zero/mean runs replace kept positions only, with ablate="all" every position
(BOS included), as SAELens's and SAEBench's zero-ablation hooks do. The mean is the mean activation
over all kept tokens of the corpus.

It also reports the peers' own token masks (`peer_*` numbers): SAELens/SAEBench keep the CE of
position t iff token t is not special, and the KL of every non-special position, the last one
included (it has no target, but it has a next-token distribution). Those numbers are for the README's
Conventions section; the harness is compared on the shared definitions.

Run: python tests/reference/peer_reference.py MODEL_DIR SAE_DIR CORPUS_JSONL [--ablate kept|all]
(SAE_DIR is the hookpoint folder holding cfg.json). Memory: a batch of B rows holds a few
[B, T, 262144] float32 tensors (B=2, T=128: ~270 MB each).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file


class DenseTopKSAE:
    """The sparsify TopK SAE as SAELens would apply it: dense codes, one matmul to decode."""

    def __init__(self, folder: Path):
        cfg = json.loads((folder / "cfg.json").read_text())
        weights = load_file(str(folder / "sae.safetensors"))
        self.k = int(cfg["k"])
        self.W_enc = weights["encoder.weight"].float()  # [F, D]
        self.b_enc = weights["encoder.bias"].float()    # [F]
        self.W_dec = weights["W_dec"].float()           # [F, D]
        self.b_dec = weights["b_dec"].float()           # [D]
        self.d_sae = self.W_enc.shape[0]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu((x - self.b_dec) @ self.W_enc.T + self.b_enc)
        values, indices = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter_(-1, indices, values)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return codes @ self.W_dec + self.b_dec


class _Stop(Exception):
    pass


def _layer(model, hookpoint: str):
    index = int(hookpoint.rsplit(".", 1)[-1])
    return model.model.layers[index]


def _hidden(output):
    return output[0] if isinstance(output, tuple) else output


def _replace(output, new):
    return (new, *output[1:]) if isinstance(output, tuple) else new


def tokenize(texts: list[str], tokenizer, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One document per row: BOS + tokens, cut at seq_len, right-padded (ids, attention mask)."""
    rows = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
        if ids[:1] != [tokenizer.bos_token_id]:
            ids = [tokenizer.bos_token_id] + ids
        rows.append(ids[:seq_len])
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = 1
    return ids, mask


@torch.no_grad()
def reference_metrics(model_dir: str | Path, sae_dir: str | Path, corpus: str | Path, *, hookpoint: str = "layers.6",
                      seq_len: int = 128, batch_size: int = 2, ablate_modes: tuple[str, ...] = ("kept", "all"),
                      mean_ablation: bool = True, show_progress: bool = True) -> dict[str, dict[str, float]]:
    """{ablate mode: {metric: value}} for the harness's shared metrics (+ peer_* masks), on CPU in float32."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    sae = DenseTopKSAE(Path(sae_dir))
    texts = [json.loads(line)["text"] for line in Path(corpus).read_text(encoding="utf-8").splitlines() if line.strip()]
    ids_all, attn_all = tokenize(texts, tokenizer, seq_len)
    special = torch.tensor(sorted({t for t in (tokenizer.bos_token_id, tokenizer.eos_token_id,
                                               tokenizer.pad_token_id) if t is not None}))
    keep_all = attn_all.bool() & ~torch.isin(ids_all, special)
    layer = _layer(model, hookpoint)
    batches = [slice(i, i + batch_size) for i in range(0, ids_all.shape[0], batch_size)]

    def say(msg: str) -> None:
        if show_progress:
            print(f"[reference] {msg}", file=sys.stderr, flush=True)

    # Pass 1: activations at the hookpoint (forward stopped after the layer), reconstruction and sparsity.
    sums = {name: 0.0 for name in ("n", "sq_err", "sq_norm", "cos", "ratio", "xhat_sq", "x_dot", "l0", "l1")}
    sum_x = torch.zeros(sae.W_dec.shape[1], dtype=torch.float64)
    fired = torch.zeros(sae.d_sae, dtype=torch.float64)
    for b, rows in enumerate(batches):
        box = {}

        def grab(_m, _a, out):
            box["x"] = _hidden(out)
            raise _Stop

        handle = layer.register_forward_hook(grab)
        try:
            model(input_ids=ids_all[rows], attention_mask=attn_all[rows])
        except _Stop:
            pass
        finally:
            handle.remove()
        x = box["x"][keep_all[rows]].float()
        codes = sae.encode(x)
        x_hat = sae.decode(codes)
        x64, xh64 = x.double(), x_hat.double()
        sums["n"] += x.shape[0]
        sums["sq_err"] += float(((x64 - xh64) ** 2).sum())
        sums["sq_norm"] += float((x64 ** 2).sum())
        sum_x += x64.sum(0)
        sums["cos"] += float(torch.nn.functional.cosine_similarity(x64, xh64, dim=-1).sum())
        sums["ratio"] += float((xh64.norm(dim=-1) / x64.norm(dim=-1)).sum())
        sums["xhat_sq"] += float((xh64 ** 2).sum())
        sums["x_dot"] += float((x64 * xh64).sum())
        sums["l0"] += float((codes != 0).sum())
        sums["l1"] += float(codes.abs().double().sum())
        fired += (codes != 0).double().sum(0)
        say(f"activations batch {b + 1}/{len(batches)}")
    n, d = sums["n"], sae.W_dec.shape[1]
    mu = sum_x / n
    total_var = sums["sq_norm"] - n * float(mu @ mu)  # Σ‖x − μ‖² = Σ‖x‖² − n‖μ‖²
    fvu = sums["sq_err"] / total_var
    shared = {"mse": sums["sq_err"] / n / d, "fvu": fvu, "explained_variance": 1.0 - fvu,
              "explained_variance_about_zero": 1.0 - sums["sq_err"] / sums["sq_norm"],
              "cossim": sums["cos"] / n, "l2_ratio": sums["ratio"] / n,
              "relative_reconstruction_bias": sums["xhat_sq"] / sums["x_dot"],
              "l0": sums["l0"] / n, "l1": sums["l1"] / n,
              "dead_fraction": float((fired == 0).double().mean()),
              "dense_fraction": float((fired / n > 0.1).double().mean()),
              "tokens": n}
    mean_act = mu.float()

    # Pass 2: full forwards per batch, hooks replacing the layer's output.
    def run(rows, fn=None) -> torch.Tensor:
        handle = None
        if fn is not None:
            handle = layer.register_forward_hook(lambda _m, _a, out: _replace(out, fn(_hidden(out))))
        try:
            logits = model(input_ids=ids_all[rows], attention_mask=attn_all[rows]).logits
        finally:
            if handle is not None:
                handle.remove()
        return torch.log_softmax(logits.float(), dim=-1)

    def where(mask, new, old):
        return torch.where(mask[..., None], new.to(old.dtype), old)

    kinds = ("zero", "mean") if mean_ablation else ("zero",)
    runs = ["spliced"] + [f"{kind}_{mode}" for mode in ablate_modes for kind in kinds]
    ce = {r: [] for r in ["clean", *runs]}
    kl = {r: [] for r in runs}
    peer_ce = {r: [] for r in ["clean", *runs]}
    peer_kl = {r: [] for r in runs}
    for b, rows in enumerate(batches):
        ids, keep = ids_all[rows], keep_all[rows]
        counted = torch.zeros_like(keep)
        counted[:, :-1] = keep[:, :-1] & keep[:, 1:]
        peer_ce_mask = keep[:, :-1]
        targets = ids[:, 1:]
        clean = run(rows)

        def record(name, lp):
            token_ce = -lp[:, :-1].gather(-1, targets[..., None]).squeeze(-1)
            ce[name].append(token_ce[counted[:, :-1]])
            peer_ce[name].append(token_ce[peer_ce_mask])
            if name != "clean":
                token_kl = (clean.exp() * (clean - lp)).sum(-1)
                kl[name].append(token_kl[counted])
                peer_kl[name].append(token_kl[keep])

        record("clean", clean)
        fns = {"spliced": lambda h: where(keep, sae.decode(sae.encode(h.float())), h)}
        for mode in ablate_modes:
            region = keep if mode == "kept" else torch.ones_like(keep)
            fns[f"zero_{mode}"] = lambda h, region=region: where(region, torch.zeros_like(h), h)
            fns[f"mean_{mode}"] = lambda h, region=region: where(region, mean_act.expand_as(h), h)
        for name in runs:
            record(name, run(rows, fns[name]))
        del clean
        say(f"spliced/ablated forwards batch {b + 1}/{len(batches)}")

    def mean(values) -> float:
        return float(torch.cat(values).double().mean())

    out = {}
    for mode in ablate_modes:
        m = dict(shared)
        c = {"clean": mean(ce["clean"]), "spliced": mean(ce["spliced"]), "zero": mean(ce[f"zero_{mode}"])}
        k = {"spliced": mean(kl["spliced"]), "zero": mean(kl[f"zero_{mode}"])}
        if mean_ablation:
            m["ce_mean"] = mean(ce[f"mean_{mode}"])
        m.update({"ce_clean": c["clean"], "ce_spliced": c["spliced"], "ce_zero": c["zero"],
                  "delta_ce": c["spliced"] - c["clean"],
                  "ce_loss_recovered": (c["zero"] - c["spliced"]) / (c["zero"] - c["clean"]),
                  "kl_spliced": k["spliced"], "kl_zero": k["zero"],
                  "kl_score": (k["zero"] - k["spliced"]) / k["zero"],
                  "predictions": int(torch.cat(ce["clean"]).numel())})
        pc = {"clean": mean(peer_ce["clean"]), "spliced": mean(peer_ce["spliced"]), "zero": mean(peer_ce[f"zero_{mode}"])}
        pk = {"spliced": mean(peer_kl["spliced"]), "zero": mean(peer_kl[f"zero_{mode}"])}
        m.update({"peer_ce_loss_recovered": (pc["zero"] - pc["spliced"]) / (pc["zero"] - pc["clean"]),
                  "peer_kl_spliced": pk["spliced"], "peer_kl_score": (pk["zero"] - pk["spliced"]) / pk["zero"]})
        out[mode] = m
    assert all(math.isfinite(v) for m in out.values() for v in m.values())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("sae_dir", help="the hookpoint folder with cfg.json and sae.safetensors")
    parser.add_argument("corpus", help="jsonl with a 'text' column")
    parser.add_argument("--hookpoint", default="layers.6")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--ablate", choices=["kept", "all", "both"], default="both")
    args = parser.parse_args(argv)
    modes = ("kept", "all") if args.ablate == "both" else (args.ablate,)
    result = reference_metrics(args.model_dir, args.sae_dir, args.corpus, hookpoint=args.hookpoint,
                               seq_len=args.seq_len, batch_size=args.batch_size, ablate_modes=modes)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
