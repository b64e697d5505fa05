"""What `sae-bench run` prints: the results table (headline metrics, plugin tasks too) and, with
--quiet, nothing on stderr (no progress bars or chatter from transformers or lm-eval)."""

from __future__ import annotations

from record_factories import make_record_data
from sae_bench.cli import main
from sae_bench.fixtures import EVAL_CORPUS_PATH, SAES_DIR, TINY_MODEL_DIR
from sae_bench.records.provenance import portable
from sae_bench.records.results import validate
from sae_bench.analysis.summary import format_table


def test_quiet_run_prints_only_the_table(tmp_path, capsys):
    argv = ["run", "--quiet", "--model", str(TINY_MODEL_DIR), "--corpus", str(EVAL_CORPUS_PATH),
            "--checkpoint", f"{SAES_DIR / 'sparsify/tiny-gemma4-8x'}@layers.2", "--max-documents", "8",
            "--seq-len", "32", "--tasks", "reconstruction,downstream_lm_eval",
            "--task-option", "downstream_lm_eval.limit=8", "--results", str(tmp_path / "r"), "--no-cache"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert err == "", err
    lines = out.splitlines()
    assert lines[0] == f"checkpoints under {portable(SAES_DIR / 'sparsify')}/"  # records hold no absolute path
    header = lines[1].split()
    assert header[:4] == ["checkpoint", "hookpoint", "fvu", "cossim"] and "acc_delta" in header
    assert max(len(line) for line in lines[1:4]) <= 100  # header, rule, the row (paths below may be longer)
    assert f"2 records in {tmp_path / 'r'} (0 reused); tidy table: {tmp_path / 'r' / 'results.parquet'}" in out
    assert (tmp_path / "r" / "results.parquet").exists()
    assert out.rstrip().splitlines()[-3] == "next:"  # then the leaderboard and pandas (one checkpoint: no compare)
    assert f"sae-bench leaderboard build --results {tmp_path / 'r'} --out leaderboard" in out


def test_table_shows_a_plugin_task_by_its_first_metric():
    records = [validate(make_record_data("sae-a", "reconstruction", {"fvu": (0.25, 0.01)})),
               validate(make_record_data("sae-a", "my_plugin", {"zeta": (3.0, 0.5), "alpha": (1.5, 0.1)}))]
    lines = format_table(records).splitlines()
    assert lines[0].split() == ["checkpoint", "hookpoint", "fvu", "my_plugin/alpha"]
    assert lines[2].split() == ["sae-a", "layers.2", "0.25±0.01", "1.5±0.1"]


def test_quiet_leaves_the_process_as_it_was(tmp_path):
    import logging

    import huggingface_hub.utils as hub_utils
    from datasets.utils import logging as ds_logging
    from transformers.utils import logging as hf_logging

    def state():
        return (hf_logging.is_progress_bar_enabled(), ds_logging.is_progress_bar_enabled(),
                hub_utils.are_progress_bars_disabled(), logging.getLogger("lm_eval").level,
                logging.getLogger("transformers").level)

    before = state()
    assert main(["run", "--quiet", "--tasks", "nope", "--results", str(tmp_path)]) == 2
    assert state() == before


def test_narrow_table_leads_with_the_ranking_metric_and_fits_100_columns():
    records = []
    for name in ("fixtures/saes/sparsify/a-rather-long-checkpoint-name-of-a-release", "fixtures/saes/saelens/b"):
        records += [validate(make_record_data(name, "reconstruction", {"fvu": (0.25, 0.01), "cossim": (0.9, 0.001)})),
                    validate(make_record_data(name, "sparsity", {"l0": (8.0, 0.0), "dead_fraction": (0.01, 0.001)})),
                    validate(make_record_data(name, "spliced_loss", {"ce_loss_recovered": (1.004, 0.0008),
                                                                     "kl_score": (0.98, 0.001)}))]
    lines = format_table(records).splitlines()
    assert lines[0] == "checkpoints under fixtures/saes/"
    assert lines[1].split()[:3] == ["checkpoint", "hookpoint", "ce_loss_recovered"]  # what the board ranks by
    assert "1.004±0.0008" in lines[3]  # not rounded to "1"
    assert max(map(len, lines)) <= 100 and "more metrics with --wide" in " ".join(lines)
    wide = format_table(records, wide=True).splitlines()
    assert {"l0", "kl_score", "dead_fraction"} <= set(wide[0].split())
