"""Progress for people: live bars in a terminal, one plain line per finished stage in a log.

`tqdm(...)` takes tqdm's arguments. When stderr is a terminal it is `tqdm.auto.tqdm` (live bars
that redraw in place). Otherwise (output redirected to a file, a CI log) a redrawing bar would
write carriage returns and cursor movements (`ESC[A`) into the file, hundreds of lines of them:
there the stage prints one line when it finishes (`sae-bench: activations @ layers.1: 4 batches
in 1.2 s`), and a bar that counts records (`per_step=True`) one line per record. `disable=True`
(`--quiet`) prints nothing either way. `SAE_BENCH_PROGRESS=live|plain` overrides the choice.
Must never: import torch, or write anything but stderr.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable

WIDTH = 100  # every plain line fits a 100-column log


def live() -> bool:
    """Whether progress redraws in place: stderr is a terminal (or SAE_BENCH_PROGRESS=live)."""
    forced = os.environ.get("SAE_BENCH_PROGRESS", "").lower()
    if forced in ("live", "plain"):
        return forced == "live"
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def fit(text: str, width: int = WIDTH, head: int = 0) -> str:
    """`text` cut to `width` columns: its first `head` characters, an ellipsis, and its end (where a
    stage's line names the checkpoint's file, the hookpoint and the task)."""
    if len(text) <= width:
        return text
    return text[:head] + "…" + text[len(text) - (width - head - 1):]


class PlainProgress:
    """tqdm's interface (iterate, update, set_description, close, a context manager) for logs: a
    line at the end of the stage, or with `per_step` a line per step."""

    def __init__(self, iterable: Iterable | None = None, desc: str | None = None, total: int | None = None,
                 unit: str = "it", disable: bool = False, per_step: bool = False, **_: Any):
        self.iterable, self.desc, self.unit, self.disable, self.per_step = iterable, desc or "", unit, disable, per_step
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.n, self.start, self.closed = total, 0, time.perf_counter(), False
        self.postfix = ""

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.n += 1
        self.close()

    def __len__(self) -> int:
        return self.total or 0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def set_postfix_str(self, postfix: str = "", refresh: bool = True) -> None:
        self.postfix = str(postfix)

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in {**(ordered_dict or {}), **kwargs}.items())

    def refresh(self) -> None:
        pass

    def update(self, n: int = 1) -> None:
        if n <= 0:
            return
        self.n += n
        if self.per_step:
            of = f"/{self.total}" if self.total else ""
            self._say(f"[{self.n}{of}] {self.desc}" + (f" ({self.postfix})" if self.postfix else ""))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.per_step and self.n:
            unit = self.unit if self.n == 1 else self.unit + ("es" if self.unit.endswith(("ch", "s", "x")) else "s")
            self._say(f"{self.desc}: {self.n} {unit} in {time.perf_counter() - self.start:.1f} s")

    def _say(self, text: str) -> None:
        if not self.disable:
            counter = text.split("] ", 1)[0] + "] " if text.startswith("[") else ""
            print(fit(f"sae-bench: {text}", head=len("sae-bench: ") + len(counter)), file=sys.stderr, flush=True)


def tqdm(iterable: Iterable | None = None, *args: Any, per_step: bool = False, **kwargs: Any):
    """A live `tqdm.auto.tqdm` on a terminal, else a `PlainProgress` (see the module docstring)."""
    if live():
        from tqdm.auto import tqdm as live_bar

        return live_bar(iterable, *args, **kwargs)
    return PlainProgress(iterable, *args, per_step=per_step, **kwargs)
