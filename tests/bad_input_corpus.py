"""A corpus of bad inputs for the end-to-end CLI contract (issue 6, item 1).

Each case is a factory that writes ONE bad input into a temporary folder (copied from the fixture
checkpoints and then corrupted) and returns the `sae-bench` command line that offers it, the name
the error line must mention, the words that say what is wrong, and the folders that must hold no
result afterwards. tests/test_bad_inputs_cli.py runs every case; a new bad input is one more
factory here.

Never: write outside the given folder, touch the fixtures themselves, or download anything.
"""

from __future__ import annotations

import json
import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

from sae_bench.fixtures import EVAL_CORPUS_PATH, EVAL_TOKENS_PATH, MAXACT_DIR, SAES_DIR, TINY_MODEL_DIR

SPARSIFY_RUN = SAES_DIR / "sparsify/tiny-gemma4-8x"
ERNOS_DIR = SAES_DIR / "ernos"
SAELENS_TOPK = SAES_DIR / "saelens/topk-layers.2"
GOOD_CHECKPOINT = f"{SPARSIFY_RUN}@layers.2"  # evaluated first in every run case: nothing may be written for it
MAXACT_PARQUET = MAXACT_DIR / "tiny-gemma4-8x_layers.2.parquet"


@dataclass
class Invocation:
    argv: list[str]
    names: str  # the bad input as the error line must name it (a file name or an id)
    problem: tuple[str, ...]  # words (case-insensitive) saying what is wrong
    no_results_in: list[Path] = field(default_factory=list)  # folders that must hold no *.json / *.tmp


@dataclass(frozen=True)
class BadInput:
    id: str
    make: Callable[[Path], Invocation]


def run_argv(tmp: Path, *checkpoints: str, extra: tuple[str, ...] = (), tasks: str = "reconstruction") -> list[str]:
    """`sae-bench run` on the fixture model with a good checkpoint first, then `checkpoints`."""
    argv = ["run", "--model", str(TINY_MODEL_DIR), "--corpus", str(EVAL_CORPUS_PATH), "--seq-len", "32",
            "--max-documents", "8", "--tasks", tasks, "--results", str(tmp / "results"), "--no-cache", "--quiet",
            "-c", GOOD_CHECKPOINT]
    for ref in checkpoints:
        argv += ["-c", ref]
    return argv + list(extra)


def _run(tmp: Path, ref: str, names: str, *problem: str, **kw) -> Invocation:
    return Invocation(run_argv(tmp, ref, **kw), names, problem, [tmp / "results"])


# ------------------------------------------------------------------------------ copies
def sparsify_copy(tmp: Path, layer: int = 2) -> Path:
    """tmp/run/layers.N: a copy of one fixture sparsify hookpoint folder; returns the run folder."""
    run = tmp / "run"
    shutil.copytree(SPARSIFY_RUN / f"layers.{layer}", run / f"layers.{layer}")
    return run


def ernos_copy(tmp: Path) -> Path:
    """tmp/ernos/: a copy of the fixture ErnOS folder (weights, sidecar, feature map); returns the weights."""
    folder = tmp / "ernos"
    folder.mkdir()
    for name in ("tiny_sae.safetensors", "sae_config.json", "feature_map.json"):
        shutil.copyfile(ERNOS_DIR / name, folder / name)
    return folder / "tiny_sae.safetensors"


def rewrite_tensors(path: Path, edit: Callable[[dict], None]) -> None:
    tensors = load_file(str(path))
    edit(tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))


# ------------------------------------------------------------------------------ checkpoint files
def truncated_safetensors(tmp):
    run = sparsify_copy(tmp)
    weights = run / "layers.2/sae.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    return _run(tmp, f"{run}@layers.2", str(weights), "truncated")


def truncated_ernos(tmp):
    weights = ernos_copy(tmp)
    weights.write_bytes(weights.read_bytes()[:200])
    return _run(tmp, str(weights), str(weights), "truncated")


def corrupt_header(tmp):
    run = sparsify_copy(tmp)
    weights = run / "layers.2/sae.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:20] = b"{not-json!!!"  # the first bytes of the JSON header
    weights.write_bytes(bytes(data))
    return _run(tmp, f"{run}@layers.2", str(weights), "header")


def wrong_shapes(tmp):
    run = sparsify_copy(tmp)
    weights = run / "layers.2/sae.safetensors"
    rewrite_tensors(weights, lambda t: t.__setitem__("W_dec", t["W_dec"][:, :-1]))  # W_dec [F, D-1]
    return _run(tmp, f"{run}@layers.2", str(weights), "W_dec", "shape")


def d_in_mismatch(tmp):
    """An ErnOS SAE of d_in 32 on the d=64 fixture model."""
    g = torch.Generator().manual_seed(0)
    F, D = 128, 32
    weights = tmp / "narrow_sae.safetensors"
    save_file({"W_enc": torch.randn(F, D, generator=g), "b_enc": torch.zeros(F),
               "W_dec": torch.randn(D, F, generator=g), "b_dec": torch.zeros(D)}, str(weights))
    return _run(tmp, str(weights), "narrow_sae.safetensors", "d_in=32", "64")


def _poisoned(value: float, word: str):
    def make(tmp):
        run = sparsify_copy(tmp)
        weights = run / "layers.2/sae.safetensors"

        def edit(t):
            t["encoder.weight"][3, 5] = value

        rewrite_tensors(weights, edit)
        return _run(tmp, f"{run}@layers.2", str(weights), "encoder.weight", word)

    return make


def k_too_large_sparsify(tmp):
    run = sparsify_copy(tmp)
    cfg_path = run / "layers.2/cfg.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["k"] = 100_000
    cfg_path.write_text(json.dumps(cfg))
    return _run(tmp, f"{run}@layers.2", "cfg.json", "k", "100000")


def k_too_large_ernos_sidecar(tmp):
    weights = ernos_copy(tmp)
    sidecar = weights.parent / "sae_config.json"
    cfg = json.loads(sidecar.read_text())
    cfg.update(activation="topk", k=100_000)
    sidecar.write_text(json.dumps(cfg))
    return _run(tmp, str(weights), str(weights.parent), "k=100000", "exceeds")


def feature_map_out_of_range(tmp):
    weights = ernos_copy(tmp)
    fmap = weights.parent / "feature_map.json"
    data = json.loads(fmap.read_text())
    data["mappings"]["9999"] = {"sae_index": 9999, "dict_index": 9999, "label": "beyond", "category": "meta",
                                "confidence": 0.5}
    data["mapped_count"] = len(data["mappings"])
    fmap.write_text(json.dumps(data))
    return _run(tmp, str(weights), "feature_map.json", "9999", "out of range")


def feature_map_malformed(tmp):
    weights = ernos_copy(tmp)
    (weights.parent / "feature_map.json").write_text('{"version": 1, "mappings": {')
    return _run(tmp, str(weights), "feature_map.json", "malformed JSON")


def sidecar_malformed(tmp):
    weights = ernos_copy(tmp)
    (weights.parent / "sae_config.json").write_text("{activation: relu}")
    return _run(tmp, str(weights), "sae_config.json", "malformed JSON")


def cfg_malformed(tmp):
    run = sparsify_copy(tmp)
    (run / "layers.2/cfg.json").write_text('{"activation": "topk", "k": 8,')
    return _run(tmp, f"{run}@layers.2", "cfg.json", "malformed JSON")


def saelens_cfg_malformed(tmp):
    folder = tmp / "saelens-topk"
    shutil.copytree(SAELENS_TOPK, folder)
    (folder / "cfg.json").write_text("[1, 2")
    return _run(tmp, str(folder), "cfg.json", "JSON")


# ------------------------------------------------------------------------------ pickles
def _pickle_as(name: str):
    def make(tmp):
        path = tmp / name
        path.write_bytes(pickle.dumps({"W_enc": [[0.0]]}, protocol=4))
        return _run(tmp, str(path), name, "pickle")

    return make


def pickle_folder(tmp):
    """A folder holding only a pytorch_model.bin: format detection lists it and refuses to open it."""
    folder = tmp / "pickled-sae"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"W_enc": [[0.0]]}))
    return _run(tmp, str(folder), "pytorch_model.bin", "pickle")


# ------------------------------------------------------------------------------ hookpoints and hub ids
def unknown_hookpoint_saelens(tmp):
    folder = tmp / "saelens-topk"
    shutil.copytree(SAELENS_TOPK, folder)
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg["hook_name"] = "layers.22"
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return _run(tmp, str(folder), "layers.22", "layers.2")


def unknown_hookpoint_ernos(tmp):
    weights = ernos_copy(tmp)
    return _run(tmp, f"{weights}@layers.22", "layers.22", "layers.2")


def hub_traversal(ref: str):
    def make(tmp):
        return _run(tmp, ref, ref, "..")

    return make


def hub_hookpoint_traversal(tmp):
    return _run(tmp, "someone/sae-release@../../etc", "../../etc", "traversal")


# ------------------------------------------------------------------------------ data files
def suite_malformed(tmp):
    suite = tmp / "bad_suite.json"
    suite.write_text('{"model": "tiny-gemma4", "checkpoints": [')
    return Invocation(["run", "--suite", str(suite), "--results", str(tmp / "results"), "--quiet"],
                      "bad_suite.json", ("malformed JSON",), [tmp / "results"])


def suite_wrong_shape(tmp):
    suite = tmp / "bad_suite.json"
    suite.write_text(json.dumps({"model": "m", "checkpoints": {"path": "x"}}))
    return Invocation(["run", "--suite", str(suite), "--results", str(tmp / "results"), "--quiet"],
                      "bad_suite.json", ("checkpoints",), [tmp / "results"])


def corpus_malformed(tmp):
    corpus = tmp / "broken.jsonl"
    lines = EVAL_CORPUS_PATH.read_text().splitlines()[:4]
    corpus.write_text("\n".join(lines[:2] + ['{"text": "unterminated', *lines[2:]]) + "\n")
    argv = run_argv(tmp)
    argv[argv.index("--corpus") + 1] = str(corpus)
    return Invocation(argv, "broken.jsonl", ("cannot load corpus", "JSON parse error", "row"), [tmp / "results"])


def _bad_token_ids(row: object, *problem: str, packing: str = "document"):
    """The fixture pre-tokenized corpus with its third row replaced by `row`."""
    def make(tmp):
        corpus = tmp / "bad_tokens.jsonl"
        lines = EVAL_TOKENS_PATH.read_text().splitlines()[:6]
        lines[2] = json.dumps({"input_ids": row})
        corpus.write_text("\n".join(lines) + "\n")
        argv = run_argv(tmp, extra=("--corpus-column", "input_ids", "--corpus-packing", packing))
        argv[argv.index("--corpus") + 1] = str(corpus)
        return Invocation(argv, "bad_tokens.jsonl", ("row 2", *problem), [tmp / "results"])

    return make


def _bad_parquet(tmp: Path, kind: str) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(MAXACT_PARQUET)
    if kind == "missing":
        table = table.drop_columns(["context_tokens"])
    else:  # wrong type: activation as strings
        i = table.schema.get_field_index("activation")
        table = table.set_column(i, pa.field("activation", pa.string()), table.column("activation").cast(pa.string()))
    path = tmp / f"maxact_{kind}.parquet"
    pq.write_table(table, path)
    return path


def _maxact_cli(kind: str):
    def make(tmp):
        path = _bad_parquet(tmp, kind)
        argv = ["maxact", "repro", "--model", str(TINY_MODEL_DIR), "--checkpoint", GOOD_CHECKPOINT,
                "--parquet", str(path), "--quiet"]
        word = "context_tokens" if kind == "missing" else "activation"
        return Invocation(argv, path.name, (word,), [tmp])

    return make


def _maxact_task(kind: str):
    def make(tmp):
        path = _bad_parquet(tmp, kind)
        word = "context_tokens" if kind == "missing" else "activation"
        # reconstruction runs first: its record must not be written either
        return _run(tmp, f"{SPARSIFY_RUN}@layers.3", path.name, word, tasks="reconstruction,maxact_repro",
                    extra=("--task-option", f"maxact_repro.parquet={path}"))

    return make


def probe_set_malformed(tmp):
    path = tmp / "probes.jsonl"
    from sae_bench.tasks.probing.probe_set import default_probe_set_path

    first = default_probe_set_path().read_text(encoding="utf-8").splitlines()[0]
    path.write_text(first + '\n{"text": "broken\n')
    return _run(tmp, f"{SPARSIFY_RUN}@layers.3", "probes.jsonl:2", "not valid JSON", tasks="reconstruction,probing",
                extra=("--task-option", f"probing.probe_set={path}"))


# ------------------------------------------------------------------------------ options
def _option(extra: tuple[str, ...], names: str, *problem: str, tasks: str = "reconstruction,sparsity"):
    def make(tmp):
        return Invocation(run_argv(tmp, tasks=tasks, extra=extra), names, problem, [tmp / "results"])

    return make


# ------------------------------------------------------------------------------ issue 14 layouts
GEMMA_SCOPE_SAE = SAES_DIR / "gemma-scope-2-tiny/resid_post/layer_2_width_256_l0_small"
GEMMA_SCOPE_TRANSCODER = SAES_DIR / "gemma-scope-2-tiny/transcoder/layer_2_width_256_l0_small"
DECODERESEARCH = SAES_DIR / "decoderesearch-gemma-4-saes/tiny-gemma4/btk-mat-layer-2-k-8"
IT_CONTINUATION = SAES_DIR / "gemma-4-it-saes/tiny-gemma4-it/btk-mat-layer-2-k-8"


def _gemma_scope_copy(tmp: Path, folder_name: str, source: Path = GEMMA_SCOPE_SAE, site: str = "resid_post") -> Path:
    folder = tmp / site / folder_name
    shutil.copytree(source, folder)
    return folder


def gemma_scope_no_layer(tmp):
    folder = _gemma_scope_copy(tmp, "width_256_l0_small")
    return _run(tmp, str(folder), "width_256_l0_small", "layer", "layer=")


def gemma_scope_width_disagrees(tmp):
    folder = _gemma_scope_copy(tmp, "layer_2_width_16k_l0_small")
    return _run(tmp, str(folder), "params.safetensors", "width 16384", "256 latents")


def gemma_scope_missing_threshold(tmp):
    folder = _gemma_scope_copy(tmp, "layer_2_width_256_l0_small")
    rewrite_tensors(folder / "params.safetensors", lambda t: t.pop("threshold"))
    return _run(tmp, str(folder), "params.safetensors", "missing", "threshold")


def gemma_scope_skip_on_an_sae(tmp):
    """An affine_skip_connection in a resid_post (SAE) folder: only transcoders carry one."""
    folder = _gemma_scope_copy(tmp, "layer_2_width_256_l0_small")
    rewrite_tensors(folder / "params.safetensors",
                    lambda t: t.__setitem__("affine_skip_connection", torch.eye(t["w_enc"].shape[0])))
    return _run(tmp, str(folder), "params.safetensors", "unexpected", "affine_skip_connection")


def gemma_scope_transcoder_layer_out_of_range(tmp):
    folder = _gemma_scope_copy(tmp, "layer_9_width_256_l0_small", GEMMA_SCOPE_TRANSCODER, "transcoder")
    return _run(tmp, str(folder), "layers.9.mlp_in", "no such module", "layers.0 ... layers.3")


def saelens_unmappable_hook_name(tmp):
    folder = tmp / "btk-mat-layer-2-k-8"
    shutil.copytree(DECODERESEARCH, folder)
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg["metadata"]["hook_name"] = "blocks.2.attn.hook_z"
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return _run(tmp, str(folder), "blocks.2.attn.hook_z", "TransformerLens", "hookpoints")


def it_continuation_on_the_base_model(tmp):
    return _run(tmp, str(IT_CONTINUATION), IT_CONTINUATION.name, "tiny-gemma4-it", "--allow-model-mismatch")


def sparsify_transcoder_not_at_an_mlp(tmp):
    run = tmp / "run"
    shutil.copytree(SAES_DIR / "sparsify/tiny-gemma4-transcoder/layers.2.mlp", run / "layers.2")
    return _run(tmp, f"{run}@layers.2", "cfg.json", "transcode=true", "MLP hookpoints")


def unknown_release(tmp):
    return Invocation(run_argv(tmp, extra=("--release", "gemma-nope")), "--release gemma-nope",
                      ("unknown release",), [tmp / "results"])


def release_layer_not_published(tmp):
    return Invocation(run_argv(tmp, "decoderesearch-gemma-4-e2b:5"), "decoderesearch-gemma-4-e2b:5",
                      ("publishes layers",), [tmp / "results"])


# ------------------------------------------------------------------------------ result records
def _bad_records(tmp: Path) -> Path:
    results = tmp / "results"
    folder = results / "some-sae" / "layers.2"
    folder.mkdir(parents=True)
    (folder / "reconstruction.json").write_text('{"schema_version": 1, "task": ')
    return results


def leaderboard_bad_record(tmp):
    results = _bad_records(tmp)
    out = tmp / "board"
    return Invocation(["leaderboard", "build", "--results", str(results), "--out", str(out)],
                      "reconstruction.json", ("JSON",), [out])


def gate_bad_record(tmp):
    results = _bad_records(tmp)
    return Invocation(["gate", "--baseline", str(results), "--candidate", str(results)],
                      "reconstruction.json", ("JSON",), [])


CASES: list[BadInput] = [
    BadInput("truncated-safetensors", truncated_safetensors),
    BadInput("truncated-ernos", truncated_ernos),
    BadInput("corrupt-header", corrupt_header),
    BadInput("wrong-shapes", wrong_shapes),
    BadInput("d_in-mismatch", d_in_mismatch),
    BadInput("nan-weights", _poisoned(float("nan"), "NaN")),
    BadInput("inf-weights", _poisoned(float("inf"), "Inf")),
    BadInput("k-too-large-sparsify", k_too_large_sparsify),
    BadInput("k-too-large-ernos-sidecar", k_too_large_ernos_sidecar),
    BadInput("feature-map-out-of-range", feature_map_out_of_range),
    BadInput("feature-map-malformed", feature_map_malformed),
    BadInput("sidecar-malformed", sidecar_malformed),
    BadInput("cfg-malformed", cfg_malformed),
    BadInput("saelens-cfg-malformed", saelens_cfg_malformed),
    BadInput("pickle-pt", _pickle_as("sae.pt")),
    BadInput("pickle-bin", _pickle_as("sae.bin")),
    BadInput("pickle-ckpt", _pickle_as("sae.ckpt")),
    BadInput("pickle-renamed-safetensors", _pickle_as("sae.safetensors")),
    BadInput("pickle-folder", pickle_folder),
    BadInput("unknown-hookpoint-saelens", unknown_hookpoint_saelens),
    BadInput("unknown-hookpoint-ernos", unknown_hookpoint_ernos),
    BadInput("hub-traversal-dotdot", hub_traversal("../x")),
    BadInput("hub-traversal-nested", hub_traversal("a/../../b")),
    BadInput("hub-hookpoint-traversal", hub_hookpoint_traversal),
    BadInput("suite-malformed", suite_malformed),
    BadInput("suite-wrong-shape", suite_wrong_shape),
    BadInput("corpus-malformed", corpus_malformed),
    BadInput("token-ids-out-of-vocab", _bad_token_ids([5, 512, 6], "token id 512", "vocabulary of 512")),
    BadInput("token-ids-negative", _bad_token_ids([5, -1], "negative token id -1", packing="pack")),
    BadInput("token-ids-not-a-list", _bad_token_ids("5 6 7", "not a list of token ids")),
    BadInput("token-ids-not-ints", _bad_token_ids([5, 6.5], "not a list of ints")),
    BadInput("token-ids-empty", _bad_token_ids([], "empty list of token ids", packing="pack")),
    BadInput("maxact-cli-missing-columns", _maxact_cli("missing")),
    BadInput("maxact-cli-wrong-types", _maxact_cli("wrong_type")),
    BadInput("maxact-task-missing-columns", _maxact_task("missing")),
    BadInput("maxact-task-wrong-types", _maxact_task("wrong_type")),
    BadInput("probe-set-malformed", probe_set_malformed),
    BadInput("task-option-wrong-type-int", _option(("--task-option", "reconstruction.batch_tokens=abc"),
                                                   "reconstruction.batch_tokens", "expected int", "got str")),
    BadInput("task-option-wrong-type-float", _option(("--task-option", "sparsity.dense_threshold=[1]"),
                                                     "sparsity.dense_threshold", "expected float", "got list")),
    BadInput("task-option-unknown", _option(("--task-option", "sparsity.no_such_option=1"),
                                            "sparsity.no_such_option", "unknown option")),
    BadInput("task-option-zero-size", _option(("--task-option", "sparsity.batch_tokens=0"),
                                              "--task-option sparsity", "batch_tokens=0 must be > 0")),
    BadInput("task-option-out-of-range", _option(("--task-option", "probing.alpha=1.5"),
                                                 "--task-option probing", "alpha=1.5 must be in [0, 1]",
                                                 tasks="reconstruction,probing")),
    BadInput("batch-size-zero", _option(("--batch-size", "0"), "--batch-size 0", "positive integer")),
    BadInput("corpus-packing-unknown", _option(("--corpus-packing", "concat"), "--corpus-packing concat",
                                               "expected one of", "document, pack")),
    BadInput("corpus-prepend-bos-on-texts", _option(("--corpus-prepend-bos",), "eval.jsonl", "pre-tokenized")),
    BadInput("leaderboard-bad-record", leaderboard_bad_record),
    BadInput("gate-bad-record", gate_bad_record),
    BadInput("gemma-scope-no-layer", gemma_scope_no_layer),
    BadInput("gemma-scope-width-disagrees", gemma_scope_width_disagrees),
    BadInput("gemma-scope-missing-threshold", gemma_scope_missing_threshold),
    BadInput("gemma-scope-skip-on-an-sae", gemma_scope_skip_on_an_sae),
    BadInput("gemma-scope-transcoder-layer-out-of-range", gemma_scope_transcoder_layer_out_of_range),
    BadInput("saelens-unmappable-hook-name", saelens_unmappable_hook_name),
    BadInput("it-continuation-on-the-base-model", it_continuation_on_the_base_model),
    BadInput("sparsify-transcoder-not-at-an-mlp", sparsify_transcoder_not_at_an_mlp),
    BadInput("unknown-release", unknown_release),
    BadInput("release-layer-not-published", release_layer_not_published),
]


# ------------------------------------------------------------------------------ issue 22: nothing silently wrong
def _corpus_case(write: Callable[[Path], None], *problem: str):
    """A corpus path that `write` creates in tmp (an empty file, a link loop, a pipe)."""
    def make(tmp):
        corpus = tmp / "corpus.jsonl"
        write(corpus)
        argv = run_argv(tmp)
        argv[argv.index("--corpus") + 1] = str(corpus)
        return Invocation(argv, "corpus.jsonl", problem, [tmp / "results"])

    return make


def _link_loop(path: Path) -> None:
    path.symlink_to(path.with_name("other.jsonl"))
    path.with_name("other.jsonl").symlink_to(path)


def gemma_scope_config_disagrees(tmp):
    folder = _gemma_scope_copy(tmp, GEMMA_SCOPE_SAE.name)
    (folder / "config.json").write_text(json.dumps({"architecture": "jump_relu",
                                                    "hf_hook_point_in": "model.layers.5.output"}))
    return _run(tmp, str(folder), "config.json", "says layer 5", "folder name")


def unknown_release_short_ref(tmp):
    return _run(tmp, "gemma-scope-2-1b-typo:7", "gemma-scope-2-1b-typo:7", "unknown release",
                "did you mean gemma-scope-2-1b-pt")


CASES += [
    BadInput("task-option-misspelt-task", _option(("--task-option", "splicedloss.ablate_positions=all"),
                                                  "splicedloss.ablate_positions", "unknown task",
                                                  "did you mean spliced_loss")),
    BadInput("task-option-unknown-task", _option(("--task-option", "nosuch.opt=1"), "nosuch.opt", "unknown task")),
    BadInput("task-option-misspelt-option", _option(("--task-option", "spliced_loss.ablate_position=all"),
                                                    "spliced_loss.ablate_position", "did you mean ablate_positions")),
    BadInput("task-name-misspelt", _option(("--tasks", "sparsty"), "sparsty", "did you mean sparsity")),
    BadInput("token-ids-string-among-ints", _bad_token_ids(["5", 6, 7], "item 0 is '5'", "JSON integers")),
    BadInput("corpus-empty-file", _corpus_case(lambda p: p.write_text(""), "empty", "no documents")),
    BadInput("corpus-link-loop", _corpus_case(_link_loop, "symbolic link loop")),
    BadInput("corpus-fifo", _corpus_case(lambda p: __import__("os").mkfifo(p), "named pipe")),
    BadInput("gemma-scope-config-disagrees", gemma_scope_config_disagrees),
    BadInput("unknown-release-short-ref", unknown_release_short_ref),
]
