"""Forward hooks that read or replace one module's output, always removed afterwards.

`capture` records the output, `splice` replaces it with fn(output), `stop_after` ends a forward
early once a module has run (the hook raises a private exception that `run_until` catches), so
extracting layer L does not pay for the layers after it or for the lm_head.

A decoder layer may return a tensor (Gemma 4, Llama in transformers 5) or a tuple whose first
element is the hidden state (older/other blocks); both are handled. Hooks are removed in `finally`
blocks, also when the forward raises. This module never changes weights.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import Tensor, nn


class _StopForward(Exception):
    """Raised from a hook to end a forward early; never escapes `run_until`."""


def hidden_of(output) -> Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


def with_hidden(output, hidden: Tensor):
    if isinstance(output, tuple):
        return (hidden, *output[1:])
    if isinstance(output, list):
        return [hidden, *output[1:]]
    return hidden


class Capture:
    """What a `capture` context recorded: `.value` is the last output seen (None before)."""

    def __init__(self) -> None:
        self.value: Tensor | None = None


@contextmanager
def capture(module: nn.Module) -> Iterator[Capture]:
    box = Capture()

    def hook(_mod, _args, output):
        box.value = hidden_of(output)

    handle = module.register_forward_hook(hook)
    try:
        yield box
    finally:
        handle.remove()


@contextmanager
def splice(module: nn.Module, fn: Callable[[Tensor], Tensor]) -> Iterator[None]:
    """Replace the module's (hidden) output by fn(output), cast to the output's dtype and device."""

    def hook(_mod, _args, output):
        hidden = hidden_of(output)
        new = fn(hidden)
        if not isinstance(new, Tensor) or new.shape != hidden.shape:
            raise ValueError(f"splice fn must return a tensor of shape {tuple(hidden.shape)}, "
                             f"got {getattr(new, 'shape', type(new))}")
        if new is not hidden:
            new = new.to(dtype=hidden.dtype, device=hidden.device)
        return with_hidden(output, new)

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def stop_after(module: nn.Module) -> Iterator[None]:
    """End the forward right after `module` ran (other hooks on it registered earlier still run)."""

    def hook(_mod, _args, _output):
        raise _StopForward

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def run_until(forward: Callable[[], object]) -> bool:
    """Call forward(); True if it completed, False if a `stop_after` hook ended it early."""
    try:
        with torch.no_grad():
            forward()
    except _StopForward:
        return False
    return True
