"""`--quiet`: silence the libraries we drive while one command runs, and restore them afterwards."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def silenced_libraries(quiet: bool, bars: bool = True):
    """`--quiet`: no progress bars or chatter from the libraries we drive (transformers' weight-loading
    bar, datasets' and the hub's bars, library warnings) while the command runs; errors still print.
    lm-eval's own output is always swallowed by `downstream.evaluate_tasks`. Everything is
    restored afterwards, since main() is also called in-process. (TQDM_DISABLE would not do: tqdm
    reads it once, at import.) `bars=False` (stderr is not a terminal, `sae_bench.core.progress`): only
    the libraries' progress bars are turned off, since in a log they are lines of redraws."""
    if not quiet:
        with _library_bars(bars):
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


_BAR_SWITCHES = {"HF_HUB_DISABLE_PROGRESS_BARS": "huggingface_hub", "HF_DATASETS_DISABLE_PROGRESS_BARS": "datasets"}


@contextlib.contextmanager
def _library_bars(bars: bool):
    """With `bars` False, the hub's, datasets' and transformers' bars are off while the command runs:
    by their environment switches (read when those libraries are imported, so a listing command
    imports nothing) and, for a library already imported in this process, by its own switch."""
    import os
    import sys

    if bars:
        yield
        return
    saved = {name: os.environ.get(name) for name in _BAR_SWITCHES}
    os.environ.update({name: "1" for name in _BAR_SWITCHES})
    restore = []
    if "huggingface_hub" in sys.modules:
        import huggingface_hub.utils as hub_utils

        if not hub_utils.are_progress_bars_disabled():
            hub_utils.disable_progress_bars()
            restore.append(hub_utils.enable_progress_bars)
    if "datasets" in sys.modules:
        from datasets.utils import logging as ds_logging

        if ds_logging.is_progress_bar_enabled():
            ds_logging.disable_progress_bar()
            restore.append(ds_logging.enable_progress_bar)
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        if hf_logging.is_progress_bar_enabled():
            hf_logging.disable_progress_bar()
            restore.append(hf_logging.enable_progress_bar)
    try:
        yield
    finally:
        for enable in restore:
            enable()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
