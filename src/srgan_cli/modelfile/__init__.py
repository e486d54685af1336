"""Read foreign model files into a flat state dict (``{key: float32 array}``), numpy only.

``read_state`` picks a reader by file type (``READERS``, keyed by suffix; a file with another
suffix is sniffed by its first bytes), then unwraps the containers training code saves
(``params_ema`` is preferred to ``params``, Real-ESRGAN's convention, then Lightning's
``state_dict``, ``model_state_dict``, ``model``, ``net``, or a lone key) and strips
DataParallel's ``module.`` prefixes. What else a checkpoint holds (optimizer states,
hyper-parameter objects) is unpickled with it but not used: a Lightning file with Adam's
states takes about 3x its network's size in memory while it is read. Every failure is one
ModelFileError line naming the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from srgan_cli.archs import StateDict
from srgan_cli.errors import ModelFileError
from srgan_cli.modelfile import safetensor, torchpickle

# Keys under which training code nests the weights, most wanted first.
WRAPPERS = ("params_ema", "params-ema", "params", "state_dict", "model_state_dict", "model", "net")


def _read_torch(path: Path) -> Any:
    return torchpickle.load(path.read_bytes())


def _read_safetensors(path: Path) -> Any:
    return safetensor.load(path.read_bytes())


READERS: dict[str, Callable[[Path], Any]] = {
    ".pth": _read_torch,
    ".pt": _read_torch,
    ".ckpt": _read_torch,
    ".bin": _read_torch,
    ".safetensors": _read_safetensors,
}


def read_state(path: str | Path) -> StateDict:
    """The state dict stored in ``path`` (float tensors as float32)."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower()) or _sniff(path)
    try:
        obj = reader(path)
    except ModelFileError as err:
        raise ModelFileError(f"{path.name}: {err}") from None
    except OSError as err:
        raise ModelFileError(f"{path.name}: cannot read ({err.strerror or err})") from None
    except Exception as err:  # a damaged pickle/zip/header raises almost anything
        raise ModelFileError(f"{path.name}: damaged model file ({_one_line(err)})") from None
    return unwrap(obj, path.name)


def _sniff(path: Path) -> Callable[[Path], Any]:
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as err:
        raise ModelFileError(f"{path.name}: cannot read ({err.strerror or err})") from None
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        return _read_torch
    if len(head) == 8 and head[:8] != b"\0" * 8 and int.from_bytes(head, "little") < 1 << 27:
        return _read_safetensors
    known = ", ".join(sorted(READERS))
    raise ModelFileError(f"{path.name}: unknown model file type (known: {known})")


def unwrap(obj: Any, name: str = "model file") -> StateDict:
    """Descend into the usual wrappers to the dict of tensors; strip ``module.`` prefixes."""
    while isinstance(obj, Mapping) and not _has_tensors(obj):
        inner = next((obj[k] for k in WRAPPERS if isinstance(obj.get(k), Mapping)), None)
        if inner is None and len(obj) == 1:
            inner = next(iter(obj.values()))
        if inner is None:
            break
        obj = inner
    _refuse_foreign(obj, name)
    if not isinstance(obj, Mapping) or not _has_tensors(obj):
        keys = ", ".join(map(str, list(obj)[:5])) if isinstance(obj, Mapping) else ""
        found = f"a dict with keys {keys}" if keys else type(obj).__name__
        raise ModelFileError(f"{name}: no tensors found (it holds {found})")
    return {_strip(str(k)): v for k, v in obj.items() if isinstance(v, np.ndarray)}


def _refuse_foreign(obj: Any, name: str) -> None:
    """The weights (``obj``, or a value of it) are an object the reader never builds."""
    values = list(obj.values()) if isinstance(obj, Mapping) else [obj]
    for value in values:
        origin = torchpickle.foreign_name(value)
        if origin is not None:
            raise ModelFileError(f"{name}: refusing {origin}: a model file may hold only tensors")


def _has_tensors(obj: Mapping) -> bool:
    return any(isinstance(v, np.ndarray) for v in obj.values())


def _strip(key: str) -> str:
    while key.startswith("module."):
        key = key[len("module.") :]
    return key


def _one_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


__all__ = ["READERS", "WRAPPERS", "read_state", "unwrap"]
