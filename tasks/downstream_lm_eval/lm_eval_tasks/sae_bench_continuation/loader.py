"""Dataset loader of the `sae_bench_continuation` lm-eval task: the jsonl beside this file.

lm-eval imports this file by path (`!function loader.load`); it is not a sae_bench module and the
task registry never imports it. It only reads; it never downloads.
"""

from pathlib import Path

DATA_FILE = Path(__file__).resolve().parent / "continuation.jsonl"


def load(**_metadata):
    import datasets

    return datasets.load_dataset("json", data_files={"test": str(DATA_FILE)})
