"""The one model adapter: a loaded causal LM plus hookpoint-level reads, splices and partial forwards.

Everything a task needs from the language model goes through `ModelAdapter`:
residual streams at a hookpoint (`residual`, forward stopped right after the hooked module), the
pooled final-norm embedding, `capture`/`splice` context managers, the final normed hidden state
(`final_hidden`, honouring active splices), suffix-only forwards (`final_hidden_from`) and float32
logits for chunks of hidden states (`logits_from_hidden`, with Gemma's final logit softcapping).

Plain forwards only (`use_cache=False`, no `logits_to_keep`): Gemma 4's KV-shared layers see only
the last positions otherwise. Outputs are in the model's dtype unless stated; callers upcast.
This module never trains, never changes weights, and never leaves a hook behind.
"""

from __future__ import annotations

import contextlib

import os
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import Tensor, nn

from sae_bench.core.errors import InputError
from sae_bench.models import hooks as _hooks
from sae_bench.models import suffix as _suffix
from sae_bench.models.hookpoints import Hookpoint, build_aliases, resolve
from sae_bench.models.pooled import pool_normed
from sae_bench.models.structure import execution_device, find_parts, first_device


class ModelAdapter:
    """A causal LM (Gemma4ForCausalLM, Gemma4ForConditionalGeneration or any AutoModelForCausalLM)."""

    def __init__(self, model: nn.Module, tokenizer, *, model_id: str, revision: str | None = None):
        try:
            self.parts = find_parts(model)
        except ValueError as exc:
            raise InputError(model_id, f"unsupported model: {exc}") from exc
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = str(model_id)
        self.revision = revision
        self.dtype = next(model.parameters()).dtype
        self.device = first_device(model)
        config = self.parts.text_config
        self.d_model = int(getattr(config, "hidden_size", 0) or getattr(config, "n_embd"))
        self.n_layers = self.parts.n_layers
        self.vocab_size = int(config.vocab_size)
        bos = getattr(tokenizer, "bos_token_id", None) if tokenizer is not None else None
        self.bos_token_id = bos if bos is not None else getattr(config, "bos_token_id", None)
        self.softcap = getattr(config, "final_logit_softcapping", None)
        self._modules = dict(model.named_modules())
        self._aliases, self._canonical = build_aliases(model, self.parts)
        self._text = self._modules[self.parts.text_path]
        self._norm = self._modules[self.parts.norm_path]
        self._gemma4 = _suffix.is_gemma4_text(self._text)
        self._gemma3 = _suffix.is_gemma3_text(self._text)
        self._kv_sharing = self._gemma4 and int(getattr(self._text.config, "num_kv_shared_layers", 0) or 0) > 0
        self._clean_kv = _suffix.CleanKV()
        self._active_splices = 0

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, ref: str | os.PathLike, *, revision: str | None = None, gguf_file: str | None = None,
             device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
             trust_remote_code: bool = False) -> "ModelAdapter":
        from sae_bench.models.loading import load_model_and_tokenizer

        model, tokenizer = load_model_and_tokenizer(ref, revision=revision, gguf_file=gguf_file, device=device,
                                                    dtype=dtype, trust_remote_code=trust_remote_code)
        model_id = str(ref) if gguf_file is None else f"{ref}/{gguf_file}"
        return cls(model, tokenizer, model_id=model_id, revision=revision)

    @classmethod
    def from_pretrained_model(cls, hf_model: nn.Module, tokenizer, *, model_id: str,
                              revision: str | None = None) -> "ModelAdapter":
        hf_model.eval()
        hf_model.requires_grad_(False)
        return cls(hf_model, tokenizer, model_id=model_id, revision=revision)

    # ------------------------------------------------------------------ hookpoints
    def resolve_hookpoint(self, name: str | Hookpoint) -> Hookpoint:
        if isinstance(name, Hookpoint):
            return name
        return resolve(str(name), self._aliases, self._canonical, type(self.model).__name__)

    def module(self, hookpoint: str | Hookpoint) -> nn.Module:
        return self._modules[self.resolve_hookpoint(hookpoint).module_path]

    # ------------------------------------------------------------------ hooks
    @contextmanager
    def capture(self, hookpoint: str | Hookpoint) -> Iterator[_hooks.Capture]:
        """Record the hookpoint's output of every forward inside the block (`.value`: the last one)."""
        with _hooks.capture(self.module(hookpoint)) as box:
            yield box

    @contextmanager
    def splice(self, hookpoint: str | Hookpoint, fn: Callable[[Tensor], Tensor]) -> Iterator[None]:
        """Replace the hookpoint's output by fn(output) [B, T, d] in every forward inside the block."""
        module = self.module(hookpoint)
        self._active_splices += 1
        try:
            with _hooks.splice(module, fn):
                yield
        finally:
            self._active_splices -= 1

    # ------------------------------------------------------------------ forwards
    def _forward(self, input_ids: Tensor, attention_mask: Tensor) -> bool:
        """One plain forward; True if it ran to the end. Clean runs keep Gemma 4's shared K/V."""
        ids, mask = input_ids.to(self.device), attention_mask.to(self.device)
        kwargs = {}
        sink = None
        if self._kv_sharing and self._active_splices == 0:
            sink = self._clean_kv.new_sink()
            kwargs["shared_kv_states"] = sink
        try:
            return _hooks.run_until(lambda: self.model(input_ids=ids, attention_mask=mask, use_cache=False, **kwargs))
        finally:
            if sink is not None:
                self._clean_kv.keep(ids, mask, sink)

    def _output_of(self, module: nn.Module, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        with _hooks.capture(module) as box, _hooks.stop_after(module):
            self._forward(input_ids, attention_mask)
        if box.value is None:
            raise RuntimeError("the hooked module did not run in the forward")
        return box.value

    def residual(self, hookpoint: str | Hookpoint, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """[B, T, d] output of the hookpoint's module (model dtype); the forward stops right after it."""
        return self._output_of(self.module(hookpoint), input_ids, attention_mask)

    def residuals(self, hookpoints: list[str], input_ids: Tensor, attention_mask: Tensor, *,
                  final: bool = False) -> tuple[dict[str, Tensor], Tensor | None]:
        """One forward for several sites: ({hookpoint: [B, T, d] output}, final-norm output or None).

        The forward stops after the final norm with `final`, else after the last decoder layer any
        hookpoint lies in (never the lm_head); same values as `residual` / `final_hidden` one by one."""
        hooks = {name: self.resolve_hookpoint(name) for name in hookpoints}
        if final or any(h.layer is None for h in hooks.values()):
            last = self._norm
        else:
            last = self._modules[self.parts.layer_path(max(h.layer for h in hooks.values()))]
        with contextlib.ExitStack() as stack:
            boxes = {name: stack.enter_context(_hooks.capture(self._modules[h.module_path]))
                     for name, h in hooks.items()}
            norm_box = stack.enter_context(_hooks.capture(self._norm)) if final else None
            stack.enter_context(_hooks.stop_after(last))
            self._forward(input_ids, attention_mask)
        missing = [name for name, box in boxes.items() if box.value is None]
        if missing or (final and norm_box.value is None):
            raise RuntimeError(f"the hooked modules did not run in the forward: {missing or ['final norm']}")
        return {name: box.value for name, box in boxes.items()}, (norm_box.value if final else None)

    def final_hidden(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """[B, T, d] output of the final norm (what the lm_head reads); honours active splices."""
        return self._output_of(self._norm, input_ids, attention_mask)

    def pooled_final_norm(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """[B, d] float32: mean of the final-norm output over attended tokens (BOS included), L2-normalised."""
        return pool_normed(self.final_hidden(input_ids, attention_mask), attention_mask)

    def logits_from_hidden(self, hidden: Tensor, out: Tensor | None = None) -> Tensor:
        """float32 logits for final hidden states [..., d]: lm_head in model dtype, then softcap c*tanh(z/c).

        `out`: a float32 buffer [n, V] on the head's device to write into (hidden must then be
        [n, d]); same numbers, but no fresh full-vocabulary allocation (and its page faults) per call."""
        head = self.model.get_output_embeddings()
        with torch.no_grad():
            hidden = hidden.to(device=execution_device(head), dtype=head.weight.dtype)
            # The direct product reads head.weight itself: only where no accelerate hook owns the weight
            # (an offloaded head's weight is a placeholder that only its hook fills in).
            direct = getattr(head, "_hf_hook", None) is None and getattr(head, "bias", None) is None
            if out is not None and direct and head.weight.dtype == torch.float32:
                logits = torch.mm(hidden, head.weight.t(), out=out[:hidden.shape[0]])
            else:
                logits = head(hidden).float()
                if out is not None:
                    logits = out[:hidden.shape[0]].copy_(logits)
            if self.softcap:
                if out is not None:
                    logits.div_(self.softcap).tanh_().mul_(self.softcap)
                else:
                    logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    def logits(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """[B, T, V] float32 (small models and tests; tasks chunk `logits_from_hidden` instead)."""
        return self.logits_from_hidden(self.final_hidden(input_ids, attention_mask))

    def _suffix_applies(self, hook: Hookpoint) -> bool:
        is_layer = hook.layer is not None and hook.name == f"layers.{hook.layer}"
        return (self._gemma4 or self._gemma3) and is_layer and self._active_splices == 0

    def clean_kv(self, hookpoint: str | Hookpoint, input_ids: Tensor, attention_mask: Tensor) -> dict:
        """The clean K/V a suffix forward from `hookpoint` reads for these tokens ({} if none).

        Taken from the clean forwards kept so far, else computed by a clean prefix forward that
        stops after the last store layer needed. Callers evaluating many residuals for the same
        tokens (one per checkpoint) can keep this and pass it to `final_hidden_from(clean_kv=...)`,
        so no prefix forward is ever repeated; it depends only on the tokens, never on a residual."""
        hook = self.resolve_hookpoint(hookpoint)
        if not (self._kv_sharing and self._suffix_applies(hook)):
            return {}
        needed = _suffix.needed_clean_kv(self._text.config, hook.layer)
        if not needed:
            return {}
        ids, mask = input_ids.to(self.device), attention_mask.to(self.device)
        clean_kv = self._clean_kv.get(ids, mask, needed)
        if clean_kv is None:
            last = self._modules[self.parts.layer_path(max(needed.values()))]
            with _hooks.stop_after(last):
                self._forward(ids, mask)
            clean_kv = self._clean_kv.get(ids, mask, needed)
            if clean_kv is None:
                raise RuntimeError("clean K/V of the shared layers were not recorded")
        return clean_kv

    def final_hidden_from(self, hookpoint: str | Hookpoint, resid: Tensor, input_ids: Tensor,
                          attention_mask: Tensor, *, clean_kv: dict | None = None) -> Tensor:
        """Final normed hidden state [B, T, d] when the hookpoint's output is replaced by `resid`.

        Gemma 4 and Gemma 3 decoder-layer hookpoints run only the layers after the hookpoint (see
        `sae_bench.models.suffix`); any other case runs the full forward with `resid` spliced in.
        `clean_kv`: what `clean_kv(hookpoint, input_ids, attention_mask)` returned for these same
        tokens (moved to the model's device); None looks it up (or computes it) here.
        """
        hook = self.resolve_hookpoint(hookpoint)
        ids, mask = input_ids.to(self.device), attention_mask.to(self.device)
        expected = (*ids.shape, self.d_model)
        if tuple(resid.shape) != expected:
            raise ValueError(f"resid has shape {tuple(resid.shape)}, expected {expected}")
        if not self._suffix_applies(hook):
            with self.splice(hook, lambda _h: resid):
                return self.final_hidden(ids, mask)
        layer_module = self._modules[hook.module_path]
        resid = resid.to(dtype=self.dtype, device=execution_device(layer_module))
        if self._gemma3:
            with torch.no_grad():
                return _suffix.gemma3_suffix(self._text, hook.layer, resid, mask)
        if clean_kv is None:
            clean_kv = self.clean_kv(hook, ids, mask)
        with torch.no_grad():
            return _suffix.gemma4_suffix(self.model, self._text, hook.layer, resid, ids, mask, clean_kv)

    def clear_cache(self) -> None:
        """Forget the clean K/V kept for suffix forwards."""
        self._clean_kv.clear()

    def __repr__(self) -> str:
        return (f"ModelAdapter({self.model_id!r}, {type(self.model).__name__}, layers={self.n_layers}, "
                f"d_model={self.d_model}, dtype={self.dtype}, device={self.device})")
