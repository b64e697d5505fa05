"""Open safetensors checkpoint files safely: validate, memory-map, hash.

For: every loader in `sae_bench.checkpoints` reads weights only through `open_safetensors`.
It checks the header before the safetensors library sees the file (so a truncated or corrupt
file gives one line naming it), refuses pickle-based files without unpickling them, and returns
memory-mapped tensors (file-backed pages, no copy). `check_tensor` verifies dtype, shape and
finiteness in row chunks, so a 131072 x 2816 fp32 matrix is never duplicated.

Must never: call torch.load, pickle or numpy.load; copy a whole weight matrix; read a tensor the
header says lies beyond the end of the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from sae_bench.core.errors import CheckpointError

# Suffixes of formats that need unpickling to open (torch.save, pickle, Lightning, numpy object arrays).
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz", ".tar")
MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit

ITEMSIZE = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
    "C64": 8,
}
FLOAT_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the header declares it."""

    name: str
    dtype: str  # safetensors spelling: "F32", "BF16", "I64" ...
    shape: tuple[int, ...]


def _looks_like_pickle(head: bytes) -> str | None:
    if head[:4] == b"PK\x03\x04":
        return "a zip archive (torch.save format)"
    if len(head) >= 2 and head[0] == 0x80 and 1 <= head[1] <= 5:
        return "a pickle"
    return None


def refuse_unsafe_suffix(path: Path) -> None:
    """Refuse files whose name says they need unpickling, before reading a byte of them."""
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise CheckpointError(path, f"{suffix} checkpoints are pickle-based and are never opened (unpickling can run "
                                    "arbitrary code); convert the weights to .safetensors")


def read_header(path: str | os.PathLike) -> dict[str, TensorInfo]:
    """Parse and check a safetensors header: {tensor name: TensorInfo}. Raises CheckpointError naming
    the file for pickle/zip content, truncation, bad JSON and inconsistent offsets/shapes/dtypes."""
    path = Path(path)
    refuse_unsafe_suffix(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(path, f"not a safetensors file: only {size} bytes, shorter than the 8-byte header length")
            (n,) = struct.unpack("<Q", head)
            plausible = 2 <= n <= MAX_HEADER_BYTES and 8 + n <= size
            first = f.read(1) if plausible else b""
            if not plausible or first != b"{":
                kind = _looks_like_pickle(head)
                if kind:
                    raise CheckpointError(path, f"is {kind}, not safetensors; refusing to unpickle it (convert the "
                                                "weights to .safetensors)")
                if n > MAX_HEADER_BYTES:
                    raise CheckpointError(path, f"not a safetensors file: header length {n} exceeds {MAX_HEADER_BYTES}")
                if 8 + n > size:
                    raise CheckpointError(path, f"truncated or not safetensors: header claims {n} bytes but the file "
                                                f"has {size - 8} after the length field")
                raise CheckpointError(path, "not a safetensors file: the header is not a JSON object")
            raw = first + f.read(n - 1)
    except OSError as e:
        raise CheckpointError(path, f"cannot read: {e.strerror or e}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError(path, "corrupt safetensors header: not valid UTF-8 JSON") from None
    if not isinstance(header, dict):
        raise CheckpointError(path, "corrupt safetensors header: not a JSON object")
    data_size = size - 8 - n
    meta = header.pop("__metadata__", None)
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise CheckpointError(path, "corrupt safetensors header: __metadata__ must map strings to strings")
    infos: dict[str, TensorInfo] = {}
    spans = []
    for name, entry in header.items():
        where = f"corrupt safetensors header: tensor {name!r}"
        if not isinstance(entry, dict):
            raise CheckpointError(path, f"{where} is not an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in ITEMSIZE:
            raise CheckpointError(path, f"{where} has unknown dtype {dtype!r}")
        if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
            raise CheckpointError(path, f"{where} has an invalid shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise CheckpointError(path, f"{where} has invalid data_offsets {offsets!r}")
        if offsets[1] > data_size:
            raise CheckpointError(path, f"truncated: tensor {name!r} ends at byte {offsets[1]} of the data but the "
                                        f"file holds only {data_size} data bytes")
        nbytes = math.prod(shape) * ITEMSIZE[dtype]
        if offsets[1] - offsets[0] != nbytes:
            raise CheckpointError(path, f"{where}: shape {tuple(shape)} of {dtype} needs {nbytes} bytes but "
                                        f"data_offsets span {offsets[1] - offsets[0]}")
        infos[name] = TensorInfo(name, dtype, tuple(shape))
        spans.append((offsets[0], offsets[1], name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise CheckpointError(path, f"corrupt safetensors header: tensor {name!r} starts at byte {begin}, expected "
                                        f"{position} (overlapping or gapped data)")
        position = end
    if position != data_size:
        raise CheckpointError(path, f"corrupt safetensors file: tensors cover {position} data bytes but the file "
                                    f"holds {data_size}")
    return infos


def open_safetensors(path: str | os.PathLike, names: list[str] | None = None) -> dict[str, Tensor]:
    """Memory-mapped CPU tensors of a checked safetensors file (all of them, or `names`)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    infos = read_header(path)
    wanted = list(infos) if names is None else names
    for name in wanted:
        if name not in infos:
            raise CheckpointError(path, f"has no tensor {name!r} (it holds: {', '.join(sorted(infos)) or 'none'})")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {name: f.get_tensor(name) for name in wanted}
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as e:
        raise CheckpointError(path, f"cannot open as safetensors: {' '.join(str(e).split())}") from None


def torch_dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def check_tensor(path: str | os.PathLike, name: str, tensor: Tensor, shape: tuple[int, ...] | None = None,
                 *, rows_per_chunk: int | None = None) -> Tensor:
    """Check that `tensor` (named `name` in file `path`) is floating point, has `shape` and holds no
    NaN/Inf. Finiteness is checked over row chunks (about 4M elements each) so no full-size
    temporary is made. Returns the tensor unchanged."""
    if not tensor.is_floating_point():
        raise CheckpointError(path, f"tensor {name!r} has dtype {torch_dtype_name(tensor.dtype)}; SAE weights must be "
                                    "floating point (float32, float16, bfloat16 or float64)")
    if tensor.dtype not in FLOAT_DTYPES.values():
        raise CheckpointError(path, f"tensor {name!r} has unsupported dtype {torch_dtype_name(tensor.dtype)}")
    if shape is not None and tuple(tensor.shape) != tuple(shape):
        raise CheckpointError(path, f"tensor {name!r} has shape {tuple(tensor.shape)}, expected {tuple(shape)}")
    rows = tensor.reshape(-1) if tensor.dim() <= 1 else tensor
    n_rows = rows.shape[0]
    per_row = max(1, rows[0].numel()) if rows.dim() > 1 and n_rows else 1
    step = rows_per_chunk or max(1, (1 << 22) // per_row)
    for start in range(0, n_rows, step):
        chunk = rows[start:start + step]
        # A sum is finite if the chunk is (an overflow to Inf only sends it to the exact check below).
        # Summed in the tensor's own dtype: sum(dtype=float64) materialises a float64 copy of the
        # chunk on CPU, and the allocator keeps those pages (measured: +1.0x the file's size in RSS).
        if math.isfinite(float(chunk.sum())):
            continue
        bad = chunk[~torch.isfinite(chunk)]
        if bad.numel():
            what = "NaN" if bool(torch.isnan(bad).any()) else "Inf"
            raise CheckpointError(path, f"tensor {name!r} contains {what} values")
    return tensor


def load_exact_tensors(path: str | os.PathLike, expected: dict[str, tuple[int, ...]],
                       layout: str) -> dict[str, Tensor]:
    """The tensors `expected` names (name -> shape), checked; the file must hold exactly those.

    `layout` says what fixed the expected set (e.g. "for architecture 'jumprelu'"), for the error."""
    present = read_header(path)
    missing = [n for n in expected if n not in present]
    if missing:
        raise CheckpointError(path, f"missing tensor(s) {', '.join(missing)} (holds: {', '.join(sorted(present))})")
    surplus = sorted(set(present) - set(expected))
    if surplus:
        raise CheckpointError(path, f"unexpected tensor(s) {', '.join(surplus)} {layout}")
    tensors = open_safetensors(path, list(expected))
    for name, shape in expected.items():
        check_tensor(path, name, tensors[name], shape)
    return tensors


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 22) -> str:
    """Hex sha256 of a file, streamed in 4 MiB chunks (never read whole)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def single_safetensors(folder: Path) -> Path | None:
    """The folder's only top-level .safetensors file, if it has exactly one."""
    files = sorted(p for p in folder.glob("*.safetensors") if p.is_file())
    return files[0] if len(files) == 1 else None
