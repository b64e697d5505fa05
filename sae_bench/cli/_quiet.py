"""`--quiet`: silence the libraries we drive while one command runs, and restore them afterwards."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def silenced_libraries(quiet: bool):
    """`--quiet`: no progress bars or chatter from the libraries we drive (transformers' weight-loading
    bar, datasets' and the hub's bars, library warnings) while the command runs; errors still print.
    lm-eval's own output is always swallowed by `downstream.evaluate_tasks`. Everything is
    restored afterwards, since main() is also called in-process. (TQDM_DISABLE would not do: tqdm
    reads it once, at import.)"""
    if not quiet:
        yield
        return
    import logging
    import warnings

    import huggingface_hub.utils as hub_utils
    from datasets.utils import logging as ds_logging
    from transformers.utils import logging as hf_logging

    loggers = [logging.getLogger(n) for n in ("lm_eval", "transformers", "datasets", "accelerate")]
    levels = [lg.level for lg in loggers]
    bars = [(hf_logging.is_progress_bar_enabled(), hf_logging.enable_progress_bar, hf_logging.disable_progress_bar),
            (ds_logging.is_progress_bar_enabled(), ds_logging.enable_progress_bar, ds_logging.disable_progress_bar),
            (not hub_utils.are_progress_bars_disabled(), hub_utils.enable_progress_bars,
             hub_utils.disable_progress_bars)]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    for _, _, disable in bars:
        disable()
    try:
        with warnings.catch_warnings():  # libraries' deprecation chatter (ours is fixed at the cause)
            warnings.simplefilter("ignore")
            yield
    finally:
        for was_enabled, enable, _ in bars:
            if was_enabled:
                enable()
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
