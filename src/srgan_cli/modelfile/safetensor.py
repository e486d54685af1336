"""``.safetensors`` files: an 8-byte header length, a JSON header, then raw tensor bytes.

Most files go through ``safetensors.numpy``. Its numpy has no bfloat16, so a file with BF16
tensors is decoded here from the header (bf16 bits shifted into the top of a float32).
"""

from __future__ import annotations

import json
import struct

import numpy as np

from srgan_cli.errors import ModelFileError

_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}


def header(raw: bytes) -> dict:
    """The JSON header (tensor name -> dtype, shape, data_offsets), checked for sanity."""
    if len(raw) < 8:
        raise ModelFileError("file ends before the safetensors header")
    (size,) = struct.unpack("<Q", raw[:8])
    if size > len(raw) - 8:
        raise ModelFileError(f"safetensors header of {size} bytes overruns the file (truncated?)")
    try:
        meta = json.loads(raw[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"safetensors header is not JSON ({err})") from None
    if not isinstance(meta, dict):
        raise ModelFileError("safetensors header is not a JSON object")
    meta.pop("__metadata__", None)
    return meta


def load(raw: bytes) -> dict[str, np.ndarray]:
    meta = header(raw)
    if any(isinstance(v, dict) and v.get("dtype") == "BF16" for v in meta.values()):
        return _load_by_hand(raw, meta)
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    try:
        tensors = st_load(raw)
    except (SafetensorError, ValueError, TypeError) as err:
        raise ModelFileError(f"damaged safetensors file ({_first_line(err)})") from None
    return {k: _float32(v) for k, v in tensors.items()}


def _load_by_hand(raw: bytes, meta: dict) -> dict[str, np.ndarray]:
    (size,) = struct.unpack("<Q", raw[:8])
    body = memoryview(raw)[8 + size :]
    out = {}
    for name, info in meta.items():
        try:
            dtype = np.dtype(_DTYPES[info["dtype"]])
            shape = tuple(int(n) for n in info["shape"])
            start, end = (int(n) for n in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(f"safetensors entry {name} is malformed: {info!r}"[:200]) from None
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= start <= end <= len(body) or end - start != count * dtype.itemsize:
            raise ModelFileError(f"safetensors tensor {name} overruns the file (truncated?)")
        values = np.frombuffer(body[start:end], dtype=dtype).reshape(shape)
        if info["dtype"] == "BF16":
            values = (values.astype(np.uint32) << 16).view(np.float32)
        out[name] = _float32(values)
    return out


def _float32(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32) if values.dtype.kind == "f" else np.array(values)


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__
