"""The one SAE interface every checkpoint format loads into.

Tasks only ever see `SparseAutoencoder`: `preprocess` -> `encode` -> `decode` -> `postprocess`.
Loaders (in `sae_bench.checkpoints`) translate a format's tensors and config into this class; this
module must never know about file formats, and must never copy the weights it is given (a
memory-mapped or transposed view stays a view).

Semantics (x is one activation vector of size d_in, all in the preprocessed space):
    pre   = (x - b_dec if subtract_decoder_bias else x) @ W_enc.T + b_enc
    codes = act(pre)               relu: max(pre, 0); jumprelu: pre * (pre > threshold);
                                   topk: the k largest of relu(pre), the rest zero
    x_hat = codes @ W_dec + b_dec  (+ x @ W_skip.T when a skip connection exists)

A transcoder is the same object with `metadata.output_hookpoint` set: it encodes the activations
at `hookpoint` (an MLP's input) and x_hat predicts the activations at `output_hookpoint` (that MLP's
output), so x_hat is compared with, and spliced in place of, the output site's activations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor

ActivationKind = Literal["relu", "jumprelu", "topk"]
Normalisation = Literal["none", "l2"]
Standardisation = Literal["none", "batch", "fixed"]


@dataclass(frozen=True)
class ActivationSpec:
    """Which nonlinearity turns pre-activations into codes, and its parameter."""

    kind: ActivationKind = "relu"
    k: int | None = None  # topk only
    threshold: float | None = None  # jumprelu with one scalar threshold (per-latent ones live on the SAE)

    def __post_init__(self):
        if self.kind not in ("relu", "jumprelu", "topk"):
            raise ValueError(f"unknown activation kind {self.kind!r}")
        if self.kind == "topk" and (self.k is None or self.k < 1):
            raise ValueError("topk activation needs k >= 1")

    def describe(self) -> str:
        if self.kind == "topk":
            return f"topk(k={self.k})"
        if self.kind == "jumprelu":
            return "jumprelu" if self.threshold is None else f"jumprelu(threshold={self.threshold})"
        return "relu"


@dataclass(frozen=True)
class InputPreprocessing:
    """How raw activations become SAE inputs (the ErnOS SAE was trained on transformed inputs).

    normalise: "l2" divides each vector by its L2 norm.
    standardise: "batch" subtracts one scalar mean and divides by one scalar std computed over the
    whole batch (as ErnOS trained); "fixed" uses the given `mean`/`std` scalars.
    """

    normalise: Normalisation = "none"
    standardise: Standardisation = "none"
    mean: float | None = None
    std: float | None = None

    @property
    def is_identity(self) -> bool:
        return self.normalise == "none" and self.standardise == "none"


class TransformState(NamedTuple):
    """What `postprocess` needs to map a reconstruction back to the raw activation space."""

    norms: Tensor | None  # [N, 1] input norms when l2-normalised
    mean: Tensor | None  # scalar
    std: Tensor | None  # scalar


class Codes(NamedTuple):
    """SAE codes. `indices is None` means `values` is dense [N, d_sae]; otherwise both are
    [N, K] and `values[n, j]` is the activation of latent `indices[n, j]` (zeros allowed)."""

    values: Tensor
    indices: Tensor | None
    d_sae: int

    def to_dense(self) -> Tensor:
        if self.indices is None:
            return self.values
        dense = self.values.new_zeros(self.values.shape[0], self.d_sae)
        return dense.scatter_(1, self.indices, self.values)

    def _row_blocks(self) -> list[Tensor]:
        """`values` in row blocks of at most 2^24 entries. Per-row reductions of a dense [N, F] block
        go through these: CUDA upcasts a whole block before a widening sum (bool -> int64 is 8x its
        size, float32 -> float64 2x), which for a 131k-latent SAE would dwarf the codes themselves."""
        rows = max(1, (1 << 24) // max(self.values.shape[-1], 1))
        return list(self.values.split(rows))

    def active_count(self, dtype: torch.dtype = torch.float64) -> Tensor:
        """Number of nonzero latents per row (l0 per token), as `dtype` (float64 by default)."""
        parts = [(part != 0).sum(dim=-1) for part in self._row_blocks()]
        counts = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64, device=self.values.device)
        return counts.to(dtype)

    def abs_sum(self, dtype: torch.dtype = torch.float64) -> Tensor:
        """Sum of |codes| per row (l1 per token), summed in `dtype` (float64 by default; float32 on
        devices without float64)."""
        parts = [part.abs().to(dtype).sum(dim=-1) for part in self._row_blocks()]
        return torch.cat(parts) if parts else self.values.new_zeros(0, dtype=dtype)

    def fire_counts(self) -> Tensor:
        """How many rows each latent fired (was nonzero) on: int64 [d_sae]."""
        counts = torch.zeros(self.d_sae, dtype=torch.int64, device=self.values.device)
        if self.indices is None:
            for part in self._row_blocks():
                counts += (part != 0).sum(dim=0)
            return counts
        fired = self.indices[self.values != 0]
        return counts.index_add_(0, fired, torch.ones_like(fired))


@dataclass
class SaeMetadata:
    """Everything a result record needs to say which SAE was measured."""

    checkpoint_id: str  # a human/hub id or the folder path
    format: str  # "sparsify" | "ernos" | "saelens"
    d_in: int
    d_sae: int
    activation: ActivationSpec
    preprocessing: InputPreprocessing = field(default_factory=InputPreprocessing)
    hookpoint: str | None = None  # as named by the checkpoint (e.g. "language_model.layers.3")
    output_hookpoint: str | None = None  # transcoders only: the site x_hat predicts (e.g. "layers.3.mlp_out")
    source_model: str | None = None
    weights_sha256: str | None = None
    weights_path: str | None = None
    dtype: str = "float32"
    extras: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["activation"] = dataclasses.asdict(self.activation)
        out["preprocessing"] = dataclasses.asdict(self.preprocessing)
        return out


class SparseAutoencoder(torch.nn.Module):
    """A loaded SAE. Weights are stored latent-major: W_enc [F, D], W_dec [F, D]."""

    def __init__(
        self,
        W_enc: Tensor,
        b_enc: Tensor,
        W_dec: Tensor,
        b_dec: Tensor,
        metadata: SaeMetadata,
        *,
        subtract_decoder_bias: bool = True,
        threshold: Tensor | None = None,
        W_skip: Tensor | None = None,
        feature_map: Any = None,
    ):
        super().__init__()
        F, D = W_enc.shape
        expected = {"W_enc": (F, D), "b_enc": (F,), "W_dec": (F, D), "b_dec": (D,)}
        for name, tensor in (("W_enc", W_enc), ("b_enc", b_enc), ("W_dec", W_dec), ("b_dec", b_dec)):
            if tuple(tensor.shape) != expected[name]:
                raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected {expected[name]}")
        if metadata.activation.kind == "topk" and metadata.activation.k > F:
            raise ValueError(f"topk k={metadata.activation.k} exceeds the {F} latents")
        # Plain attributes, not Parameters: registering would not copy, but evaluation never
        # needs gradients and keeping views (e.g. a transposed mmap) is the point.
        self.W_enc, self.b_enc, self.W_dec, self.b_dec = W_enc, b_enc, W_dec, b_dec
        self.threshold = threshold
        self.W_skip = W_skip
        self.subtract_decoder_bias = subtract_decoder_bias
        self.metadata = metadata
        self.feature_map = feature_map  # sae_bench.checkpoints.feature_map.FeatureMap or None

    # ----------------------------------------------------------------- properties
    @property
    def d_in(self) -> int:
        return self.W_enc.shape[1]

    @property
    def d_sae(self) -> int:
        return self.W_enc.shape[0]

    @property
    def activation(self) -> ActivationSpec:
        return self.metadata.activation

    @property
    def is_transcoder(self) -> bool:
        """True when x_hat predicts another site's activations (metadata.output_hookpoint)."""
        return self.metadata.output_hookpoint is not None

    def to(self, *args, **kwargs) -> "SparseAutoencoder":  # type: ignore[override]
        for name in ("W_enc", "b_enc", "W_dec", "b_dec", "threshold", "W_skip"):
            tensor = getattr(self, name)
            if tensor is not None:
                setattr(self, name, tensor.to(*args, **kwargs))
        return self

    @property
    def device(self) -> torch.device:
        return self.W_enc.device

    @property
    def dtype(self) -> torch.dtype:
        return self.W_enc.dtype

    # ----------------------------------------------------------------- transforms
    def preprocess(self, x: Tensor) -> tuple[Tensor, TransformState]:
        """Map raw activations [N, D] to SAE inputs, remembering how to undo it."""
        prep = self.metadata.preprocessing
        norms = mean = std = None
        if prep.normalise == "l2":
            norms = x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            x = x / norms
        if prep.standardise == "batch":
            mean, std = x.mean(), x.std().clamp_min(1e-12)
        elif prep.standardise == "fixed":
            mean = torch.tensor(prep.mean, dtype=x.dtype, device=x.device)
            std = torch.tensor(prep.std, dtype=x.dtype, device=x.device)
        if mean is not None:
            x = (x - mean) / std
        return x, TransformState(norms, mean, std)

    def postprocess(self, x_hat: Tensor, state: TransformState) -> Tensor:
        """Inverse of `preprocess` for reconstructions (used when splicing into the model)."""
        if state.mean is not None:
            x_hat = x_hat * state.std + state.mean
        if state.norms is not None:
            x_hat = x_hat * state.norms
        return x_hat

    # ----------------------------------------------------------------- encode / decode
    ENCODE_BUDGET_BYTES = 256 << 20  # one encode's [rows, F] pre-activations at most

    def row_chunks(self, n_rows: int) -> list[slice]:
        """Row slices of an [n_rows, D] batch so that one encode's [rows, F] pre-activations stay
        within ENCODE_BUDGET_BYTES: memory stays bounded for 131k-latent SAEs whatever the batch,
        while preprocessing (batch standardisation) still sees the whole batch."""
        step = max(1, self.ENCODE_BUDGET_BYTES // (self.d_sae * self.W_enc.element_size()))
        return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]

    def pre_activations(self, x: Tensor) -> Tensor:
        x = x.to(self.W_enc.dtype)
        if self.subtract_decoder_bias:
            x = x - self.b_dec
        return torch.nn.functional.linear(x, self.W_enc, self.b_enc)

    @torch.no_grad()
    def encode(self, x: Tensor) -> Codes:
        """Codes for preprocessed inputs x [N, D]: sparse (values, indices) for topk, else dense."""
        pre = self.pre_activations(x)  # a fresh [N, F] tensor: the activation works in place on it
        spec = self.activation
        if spec.kind == "topk":
            values, indices = pre.relu_().topk(spec.k, dim=-1, sorted=False)
            return Codes(values, indices, self.d_sae)
        if spec.kind == "jumprelu":
            threshold = self.threshold if self.threshold is not None else spec.threshold
            if threshold is None:
                raise ValueError("jumprelu activation needs a threshold")
            return Codes(pre.mul_(pre > threshold), None, self.d_sae)
        return Codes(pre.relu_(), None, self.d_sae)

    @torch.no_grad()
    def decode(self, codes: Codes, x: Tensor | None = None) -> Tensor:
        """Reconstruction [N, D]. Sparse codes read only their decoder rows (no dense matmul, no [N, K, D] gather).
        `x` (the preprocessed input) is needed only by SAEs with a skip connection."""
        if codes.indices is None:
            out = codes.values.to(self.W_dec.dtype) @ self.W_dec
        else:  # Σ_j values[n, j] * W_dec[indices[n, j]] in one kernel, never materialising [N, K, D] rows
            out = torch.nn.functional.embedding_bag(codes.indices, self.W_dec, mode="sum",
                                                    per_sample_weights=codes.values.to(self.W_dec.dtype))
        out = out + self.b_dec
        if self.W_skip is not None:
            if x is None:
                raise ValueError("this SAE has a skip connection: decode needs the input x")
            out = out + x.to(self.W_skip.dtype) @ self.W_skip.T
        return out

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> tuple[Tensor, Codes]:
        """Preprocessed-space reconstruction and codes of raw activations x: (x_hat, codes)."""
        x_in, _ = self.preprocess(x)
        codes = self.encode(x_in)
        return self.decode(codes, x_in), codes

    @torch.no_grad()
    def splice(self, x: Tensor) -> Tensor:
        """Raw-space replacement for raw activations x [..., D]: what the model sees when spliced."""
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        x_in, state = self.preprocess(flat)
        x_hat = self.decode(self.encode(x_in), x_in)
        return self.postprocess(x_hat, state).reshape(shape).to(x.dtype)

    def __repr__(self) -> str:
        m = self.metadata
        target = f" -> {m.output_hookpoint}" if m.output_hookpoint else ""
        return (f"SparseAutoencoder({m.format}: {m.checkpoint_id}, d_in={self.d_in}, d_sae={self.d_sae}, "
                f"{m.activation.describe()}, hookpoint={m.hookpoint}{target})")
