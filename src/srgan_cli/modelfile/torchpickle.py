"""PyTorch ``torch.save`` files (.pth/.pt/.ckpt) read with numpy only, never trusting the pickle.

Both formats torch writes:
- zip (torch >= 1.6): ``<name>/data.pkl`` plus one ``<name>/data/<key>`` file per storage;
- legacy: pickles of a magic number, protocol version and sys info, then the object pickle,
  then the sorted storage keys, then each storage's element count (int64) and raw bytes.

The unpickler resolves only an allow-list of globals (dicts and torch's tensor rebuilders,
re-implemented here over numpy). A second, named list covers the metadata a training
checkpoint keeps beside its weights (Lightning's and omegaconf's hyper-parameter containers,
paths, numpy scalars, ``argparse.Namespace``): those globals are never imported either; each
becomes an inert ``Foreign`` stand-in that only records its name, so building it runs
nothing, and where a reader needs weights and finds one, ``foreign_name`` gives the name it
refuses. Any other global -- ``os.system``, ``builtins.eval``, a class from the training
code -- is refused by name wherever it appears, before anything is called.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import math
import pickle
import struct
import types
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from srgan_cli.errors import ModelFileError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch storage class -> numpy dtype of its bytes ("bfloat16" is decoded by hand).
_STORAGES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return _STORAGES[self.name]


class _Storage:
    """A storage whose bytes may arrive after the pickle (legacy format)."""

    def __init__(self, kind: _StorageType, numel: int) -> None:
        self.kind = kind
        self.numel = numel
        self.data: np.ndarray | None = None

    def fill(self, raw: bytes) -> None:
        need = self.numel * self.kind.dtype.itemsize
        if len(raw) < need:
            raise ModelFileError(f"storage holds {len(raw)} bytes, expected {need} (truncated?)")
        self.data = np.frombuffer(raw, dtype=self.kind.dtype, count=self.numel)


@dataclass
class _Tensor:
    """What ``torch._utils._rebuild_tensor_v2`` would build; made an array once bytes are in."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise ModelFileError("a tensor's storage is missing from the file")
        size, stride, offset = self.size, self.stride, self.offset
        ok = len(size) == len(stride) and offset >= 0 and all(n >= 0 for n in size)
        if not ok or any(s < 0 for s in stride):
            raise ModelFileError(f"bad tensor layout: size {size}, stride {stride}")
        if 0 in size:
            return _decode(np.zeros(size, data.dtype), self.storage.kind.name)
        end = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) + 1
        # stride-0 views could claim any size from a tiny storage: cap at the storage
        if end > data.size or math.prod(size) > data.size:
            raise ModelFileError(f"tensor of size {size} overruns its storage ({data.size})")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[offset:], shape=size, strides=[s * item for s in stride], writeable=False
        )
        return _decode(np.array(view), self.storage.kind.name)


def _decode(values: np.ndarray, storage: str) -> np.ndarray:
    """bf16 bits -> float32, fp16/fp64 -> float32; integer tensors stay as they are."""
    if storage == "BFloat16Storage":
        return (values.astype(np.uint32) << 16).view(np.float32)
    if values.dtype.kind == "f":
        return values.astype(np.float32)
    return values


def _rebuild_tensor(storage, offset, size, stride, *_ignored) -> _Tensor:
    if not isinstance(storage, _Storage):
        raise ModelFileError("a tensor in the file is not backed by a storage")
    return _Tensor(storage, int(offset), tuple(map(int, size)), tuple(map(int, stride)))


def _rebuild_parameter(data, *_ignored):
    return data


_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


METADATA_PACKAGES = frozenset(
    {
        "pytorch_lightning",
        "lightning",
        "lightning_fabric",
        "omegaconf",
        "argparse",
        "pathlib",
        "typing",
        "enum",
        "datetime",
        "collections",
        "numpy",
        "_codecs",
    }
)
"""Top-level packages whose globals may appear as inert stand-ins: what Lightning, omegaconf
and training scripts pickle as a checkpoint's hyper-parameters, callbacks' and loops' state."""

METADATA_BUILTINS = frozenset(
    {"set", "frozenset", "slice", "complex", "bytearray"}
    | {"dict", "list", "tuple", "int", "float", "str", "bool", "bytes"}
)
"""The plain containers and numbers among ``builtins``, and the plain types as values (an
omegaconf config records ``object_type=dict``); ``eval``, ``getattr``, ``__import__`` and the
rest of that module stay refused."""


def is_checkpoint_metadata(module: str, name: str) -> bool:
    """Whether ``module.name`` is on the named list of checkpoint metadata (never imported)."""
    if module == "builtins":
        return name in METADATA_BUILTINS
    return module.partition(".")[0] in METADATA_PACKAGES


class Foreign:
    """What a checkpoint-metadata global unpickles to: a subclass per global, named by it.

    Every way a pickle can use a global ends here and does nothing: REDUCE calls the class,
    NEWOBJ its ``__new__``, BUILD ``__setstate__``, SETITEMS/APPENDS the item methods; an
    instance called as a function gives another inert instance.
    """

    origin = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Foreign:
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> Foreign:
        return type(self)()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


def _foreign(module: str, name: str) -> type[Foreign]:
    """A new stand-in class for one global (the unpickler keeps one per name per file)."""
    return type("Foreign", (Foreign,), {"origin": f"{module}.{name}"})


def _private_copy(allowed: Callable[..., Any]) -> Callable[..., Any]:
    """A copy of an allow-listed Python function for one file: a pickle's BUILD can set
    attributes (``__defaults__``...) on any object it holds, and a shared module-level function
    or stand-in class changed by one file would read the next file differently in the same
    long-lived process (serve, worker). Classes implemented in C (``OrderedDict``) cannot be
    changed that way and are handed out as they are."""
    if not isinstance(allowed, types.FunctionType):
        return allowed
    copy = types.FunctionType(
        allowed.__code__, allowed.__globals__, allowed.__name__, allowed.__defaults__
    )
    copy.__kwdefaults__ = dict(allowed.__kwdefaults__ or {}) or None
    return copy


def foreign_name(obj: Any) -> str | None:
    """``module.name`` of the global ``obj`` stands in for (class or instance), else None."""
    is_foreign = isinstance(obj, Foreign) or (isinstance(obj, type) and issubclass(obj, Foreign))
    return obj.origin if is_foreign else None


def python3_name(module: str, name: str) -> tuple[str, str]:
    """``module.name`` as Python 3 spells it. Protocol 2, ``torch.save``'s default, writes
    builtins as ``__builtin__.set`` (and a few renamed modules by their Python 2 names);
    the default ``find_class`` maps them back (``_compat_pickle``), and so must ours."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class _SafeUnpickler(pickle.Unpickler):
    """Resolves ``_GLOBALS`` and torch storage types, checkpoint metadata to ``Foreign``
    stand-ins, and refuses any other global. Storages come from ``fetch``."""

    def __init__(self, file: IO[bytes], fetch: Callable[[tuple], _Storage]) -> None:
        super().__init__(file)
        self._fetch = fetch
        self._stand_ins: dict[tuple[str, str], type[Foreign]] = {}

    def find_class(self, module: str, name: str) -> Any:
        module, name = python3_name(module, name)
        if (module, name) in _GLOBALS:
            return _private_copy(_GLOBALS[(module, name)])
        if module == "torch" and name in _STORAGES:
            return _StorageType(name)
        if is_checkpoint_metadata(module, name):
            if (module, name) not in self._stand_ins:
                self._stand_ins[(module, name)] = _foreign(module, name)
            return self._stand_ins[(module, name)]
        raise ModelFileError(f"refusing {module}.{name}: a model file may hold only tensors")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            what = pid[0] if isinstance(pid, tuple) and pid else type(pid).__name__
            raise ModelFileError(f"refusing persistent object {what!r}: not a tensor storage")
        if len(pid) < 5 or not isinstance(pid[1], _StorageType):
            raise ModelFileError(f"bad storage record {pid[:3]!r}")
        return self._fetch(pid)


def load_zip(raw: bytes) -> Any:
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        names = archive.namelist()
        pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise ModelFileError("zip has no single <name>/data.pkl: not a torch.save file")
        root = pkl[0].split("/")[0]
        if f"{root}/constants.pkl" in names or any(n.startswith(f"{root}/code/") for n in names):
            raise ModelFileError(
                "a TorchScript archive (torch.jit.save) holds code, not just weights: save "
                "its state_dict() with torch.save instead"
            )
        if f"{root}/byteorder" in names and archive.read(f"{root}/byteorder") != b"little":
            raise ModelFileError("big-endian torch files are not supported")
        storages: dict[str, _Storage] = {}

        def fetch(pid: tuple) -> _Storage:
            _, kind, key, _location, numel = pid[:5]
            if key not in storages:
                storage = _Storage(kind, int(numel))
                storage.fill(archive.read(f"{root}/data/{key}"))
                storages[key] = storage
            return storages[key]

        return _materialize(_SafeUnpickler(io.BytesIO(archive.read(pkl[0])), fetch).load())


def load_legacy(raw: bytes) -> Any:
    stream = io.BytesIO(raw)
    header = _SafeUnpickler(stream, _no_storage)
    if header.load() != LEGACY_MAGIC:
        raise ModelFileError("not a torch.save file (bad magic number)")
    if _SafeUnpickler(stream, _no_storage).load() != LEGACY_PROTOCOL:
        raise ModelFileError("unsupported legacy torch protocol version")
    info = _SafeUnpickler(stream, _no_storage).load()
    if not (isinstance(info, dict) and info.get("little_endian", True)):
        raise ModelFileError("big-endian torch files are not supported")
    storages: dict[str, _Storage] = {}

    def fetch(pid: tuple) -> _Storage:
        _, kind, key, _location, numel = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise ModelFileError("storage views (torch < 1.0 files) are not supported")
        return storages.setdefault(key, _Storage(kind, int(numel)))

    obj = _SafeUnpickler(stream, fetch).load()
    keys = _SafeUnpickler(stream, _no_storage).load()
    for key in keys:
        if key not in storages:
            raise ModelFileError(f"storage {key!r} is listed but never used")
        storage = storages[key]
        (numel,) = struct.unpack("<q", _read(stream, 8))
        if numel != storage.numel:
            want = storage.numel
            raise ModelFileError(f"storage {key!r} holds {numel} elements, expected {want}")
        storage.fill(_read(stream, numel * storage.kind.dtype.itemsize))
    return _materialize(obj)


def _no_storage(pid: tuple) -> _Storage:
    raise ModelFileError("unexpected tensor storage in a legacy header")


def _read(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ModelFileError(f"file ends early: wanted {n} bytes, found {len(data)}")
    return data


def _materialize(obj: Any, done: dict[int, Any] | None = None) -> Any:
    """Replace every lazy tensor in dicts, lists and tuples with its numpy array.

    Each container or tensor is converted once (``done``, by id), keeping what the pickle
    shared shared: its memo lets a few hundred bytes refer to one list from many places
    (60 nested pairs are 2**60 paths), which a walk per path would never finish.
    """
    done = {} if done is None else done
    if id(obj) in done:
        return done[id(obj)]
    if isinstance(obj, _Tensor):
        new: Any = obj.array()
    elif isinstance(obj, dict):
        new = type(obj)((k, _materialize(v, done)) for k, v in obj.items())
    elif isinstance(obj, list | tuple):
        new = type(obj)(_materialize(v, done) for v in obj)
    else:
        return obj
    done[id(obj)] = new
    return new


def load(raw: bytes) -> Any:
    """The object a ``torch.save`` file holds, tensors as numpy arrays."""
    if raw[:4] == b"PK\x03\x04":
        return load_zip(raw)
    return load_legacy(raw)
