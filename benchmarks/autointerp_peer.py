"""SAEBench 0.6.0's autointerp code and ours on the same SAE, latents and contexts, one judge.

Our side (this venv): the real Gemma 3 270M and TopK SAE of `real_setup.py`, the autointerp task's
contexts for a seeded sample of latents, scored with our protocol through the OpenAI-compatible
judge; the judge is llama.cpp's server on the Gemma 3 270M GGUF, under the alias gpt-4o-mini
(SAEBench's model name is fixed in its code). SAEBench's side (its own venv, created with the
recipe below if missing; its import name clashes with ours): its `AutoInterp.run_single_feature`
— its prompts, its OpenAI call (pointed at the same server by OPENAI_BASE_URL), its parsing and
its `score_predictions` — on our explanation contexts and our SAEBench-protocol scoring contexts in
our shown order. Their data gathering needs TransformerLens weights for the model; it is not run.
Differences that remain: SAEBench sets no temperature (the server samples at its default), and
its demo answer in the scoring prompt comes from Python's global `random`, so its scoring prompt
can differ from ours in those numbers.

    python benchmarks/autointerp_peer.py --latents 5 --out benchmarks/results/autointerp_peer.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER_VENV = Path(os.environ.get("SAE_BENCH_PEER_VENV", Path.home() / ".cache/sae-bench-peers/saebench"))


def ensure_peer_venv() -> Path:
    """SAEBench 0.6.0 in its own venv (torch pinned by our constraints, torchvision removed)."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-c", str(HERE.parent / "constraints.txt"),
                        "sae-bench==0.6.0"], check=True)
        subprocess.run([str(python), "-m", "pip", "uninstall", "-y", "-q", "torchvision"], check=True)
    return python


# ---------------------------------------------------------------------------------------- our side
def ours(n_latents: int, seed: int, url: str) -> dict:
    import _importable

    _importable.ensure()
    import real_setup
    from sae_bench import load_checkpoint
    from sae_bench.activations import ActivationSource
    from sae_bench.core.context import EvalContext
    from sae_bench.inputs.corpus import load_corpus
    from sae_bench.models import ModelAdapter
    from sae_bench.tasks.autointerp import AutointerpTask
    from sae_bench.tasks.autointerp.cache import CachingJudge, ResponseCache, default_folder
    from sae_bench.tasks.autointerp.judges import OpenAIJudge
    from sae_bench.tasks.autointerp.scorers import latent_rng, run_protocol, saebench_items

    setup = real_setup.real_setup(quiet=True)
    model = ModelAdapter.load(setup.model_dir)
    folder, _, hookpoint = setup.checkpoint.partition("@")
    sae = load_checkpoint(folder, hookpoint=hookpoint)
    corpus = load_corpus(setup.corpus, model.tokenizer, seq_len=setup.seq_len)
    ctx = EvalContext(model=model, hookpoint=model.resolve_hookpoint(hookpoint).name, corpus=corpus,
                      activations=ActivationSource(model, model.resolve_hookpoint(hookpoint).name, corpus,
                                                   show_progress=False), seed=seed, show_progress=False)
    task = AutointerpTask(judge="openai", base_url=url, judge_model="gpt-4o-mini", n_latents=n_latents,
                          max_concurrency=1)
    _, _, examples, _ = task.gather(sae, ctx)
    judge = CachingJudge(OpenAIJudge(url, "gpt-4o-mini", max_concurrency=1, seed=seed), ResponseCache(default_folder()))
    results = run_protocol(examples, judge, seed=seed, examples_per_prompt=5, n_correct=4)
    latents = []
    for ex, res in zip(examples, results):
        items = saebench_items(ex, latent_rng(seed, ex.latent))
        latents.append({"latent": ex.latent, "threshold": ex.threshold, "ours": res.to_json(),
                        "explain": [{"tokens": list(c.tokens), "acts": list(c.acts)} for c in ex.explain],
                        "score": [{"tokens": list(c.tokens), "acts": list(c.acts) if c.kind != "random" else None}
                                  for c, _ in items]})
    return {"latents": latents, "usage": judge.usage.to_json(), "judge": judge.identity}


# ----------------------------------------------------------------------------------- SAEBench side
def saebench_side(data_path: str, out_path: str) -> None:
    """Runs inside SAEBench's venv: `sae_bench` here is SAEBench."""
    import asyncio
    import random
    from concurrent.futures import ThreadPoolExecutor

    import torch
    from sae_bench.evals.autointerp.eval_config import AutoInterpEvalConfig
    from sae_bench.evals.autointerp.main import AutoInterp, Example, Examples

    data = json.loads(Path(data_path).read_text())
    random.seed(42)

    class Tokens:  # stands in for HookedTransformer.to_str_tokens: ids index a table of our token strings
        table: list[str] = []

        def to_str_tokens(self, ids):
            return [self.table[int(i)] for i in ids.tolist()]

    strings = Tokens()

    def example(ctx, threshold):
        start = len(strings.table)
        strings.table.extend(ctx["tokens"])
        acts = ctx["acts"] if ctx["acts"] is not None else [0.0] * len(ctx["tokens"])
        return Example(list(range(start, start + len(ctx["tokens"]))), acts, threshold, strings)

    cfg = AutoInterpEvalConfig(model_name="gemma-3-270m", n_latents=None,
                               override_latents=[row["latent"] for row in data["latents"]])
    interp = AutoInterp.__new__(AutoInterp)
    interp.cfg, interp.api_key = cfg, os.environ.get("OPENAI_API_KEY", "not-needed")
    out = {}

    async def run_all():
        with ThreadPoolExecutor(max_workers=1) as pool:
            for row in data["latents"]:
                gen = Examples([example(c, row["threshold"]) for c in row["explain"]])
                scoring = Examples([example(c, row["threshold"]) for c in row["score"]], shuffle=False)
                scoring.examples = [example(c, row["threshold"]) for c in row["score"]]  # our shown order
                try:
                    result = await interp.run_single_feature(pool, row["latent"], gen, scoring)
                except Exception as exc:  # report, do not stop the comparison
                    result = {"error": f"{type(exc).__name__}: {exc}"[:200]}
                out[str(row["latent"])] = None if result is None else {
                    k: result.get(k) for k in ("explanation", "predictions", "correct seqs", "score", "error")}

    torch.set_grad_enabled(False)
    asyncio.run(run_all())
    Path(out_path).write_text(json.dumps(out, indent=1))


# ------------------------------------------------------------------------- rule judge over HTTP
def rule_answer(messages: list[dict]) -> str:
    """A deterministic judge that reads the prompt text, for checking the protocols and metrics
    against each other: the explanation is the most often marked `<<token>>`; an example "has" the
    latent when that token occurs in its text (fuzzing: when every marked span is that token)."""
    import re
    from collections import Counter

    user = messages[-1]["content"]
    if user.startswith("The activating documents"):
        marked = Counter(m.strip() for m in re.findall(r"<<(.*?)>>", user, flags=re.S))
        best = sorted(marked.items(), key=lambda kv: (-kv[1], kv[0]))
        return f"This neuron activates on the token {best[0][0] if best else ''}"
    if user.startswith("Here is the explanation"):
        word = user.split("the token", 1)[-1].split(".\n\n", 1)[0].strip()
        lines = re.findall(r"^(\d+)\. (.*)$", user.split("Here are the examples:", 1)[-1], flags=re.M)
        chosen = [n for n, text in lines if word and word in text]
        return ", ".join(chosen) or "None"
    word = user.split("the token", 1)[-1].split("\n", 1)[0].strip()
    lines = re.findall(r"^Example \d+: (.*)$", user, flags=re.M)
    if "marked between << and >>" in messages[0]["content"]:
        return json.dumps([int(bool(word) and all(m.strip() == word for m in re.findall(r"<<(.*?)>>", t))
                               and "<<" in t) for t in lines])
    return json.dumps([int(bool(word) and word in t) for t in lines])


def rule_server():
    """An OpenAI-compatible server on 127.0.0.1 answering with `rule_answer` (context manager)."""
    import contextlib
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            text = rule_answer(body["messages"])
            data = json.dumps({"id": "rule", "object": "chat.completion", "created": 0, "model": body["model"],
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": text}}],
                               "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    @contextlib.contextmanager
    def serving():
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        finally:
            httpd.shutdown()
            httpd.server_close()

    return serving()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latents", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--judge", choices=("llama", "rule"), default="llama",
                        help="llama: llama.cpp's server on the Gemma 3 270M GGUF; rule: a deterministic prompt-reading judge")
    parser.add_argument("--saebench", nargs=2, metavar=("DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.saebench:
        saebench_side(*args.saebench)
        return 0
    import llama_server

    python = ensure_peer_venv()
    server = (llama_server.serve(log=str(Path(tempfile.gettempdir()) / "autointerp_peer_llama.log"))
              if args.judge == "llama" else rule_server())
    with server as url:
        data = ours(args.latents, args.seed, url)
        with tempfile.TemporaryDirectory() as tmp:
            data_path, out_path = Path(tmp) / "data.json", Path(tmp) / "saebench.json"
            data_path.write_text(json.dumps(data))
            env = {**os.environ, "OPENAI_BASE_URL": url, "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "not-needed"),
                   "PYTHONPATH": ""}
            subprocess.run([str(python), str(Path(__file__).resolve()), "--saebench", str(data_path), str(out_path)],
                           check=True, env=env, cwd=tmp)
            theirs = json.loads(out_path.read_text())
    rows = []
    for row in data["latents"]:
        mine, peer = row["ours"], theirs.get(str(row["latent"])) or {}
        rows.append({"latent": row["latent"], "ours_explanation": mine["explanation"],
                     "ours_autointerp_score": mine["scores"].get("autointerp_score"),
                     "ours_detection_bacc": mine["scores"].get("detection_balanced_accuracy"),
                     "ours_fuzzing_bacc": mine["scores"].get("fuzzing_balanced_accuracy"),
                     "ours_failures": mine["failures"],
                     "saebench_explanation": peer.get("explanation"), "saebench_score": peer.get("score"),
                     "saebench_error": peer.get("error"), "saebench_dropped": not peer})
    mean = lambda xs: (sum(xs) / len(xs)) if xs else None  # noqa: E731
    both = [r for r in rows if r["ours_autointerp_score"] is not None and r["saebench_score"] is not None]
    summary = {"latents": len(rows), "judge": data["judge"], "judge_kind": args.judge,
               "max_abs_difference_per_latent": max((abs(r["ours_autointerp_score"] - r["saebench_score"]) for r in both),
                                                    default=None),
               "same_explanation": sum(r["ours_explanation"] == r["saebench_explanation"] for r in rows), "usage_ours": data["usage"],
               "ours_autointerp_score_mean": mean([r["ours_autointerp_score"] for r in rows if r["ours_autointerp_score"] is not None]),
               "saebench_score_mean": mean([r["saebench_score"] for r in rows if r["saebench_score"] is not None]),
               "ours_scored": sum(r["ours_autointerp_score"] is not None for r in rows),
               "saebench_scored": sum(r["saebench_score"] is not None for r in rows), "rows": rows}
    text = json.dumps(summary, indent=1, ensure_ascii=False)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
