"""Registry of foreign SR architectures: identify a PyTorch state dict, build its Keras twin.

A state dict is a flat ``{name: float32 array}`` with PyTorch key names and layouts (convs
OIHW). Each ``Arch`` recognises its key signature, infers the hyper-parameters from the
shapes (``ModelSpec``), builds a Keras 3 model with the same forward pass, and copies the
weights in (transposing convs to HWIO and permuting channels around pixel (un)shuffles, so
nothing is gathered at run time). This module stays numpy-only at import; Keras is imported
by ``build``/``load``, so reading and identifying a file is cheap.

Every built model takes and gives RGB. A grayscale model (1 channel in, 1 out: ``in_nc`` and
``out_nc`` in the spec's params) sees the input's ITU-R BT.601 luma and its output is copied
to R, G and B, as chaiNNer runs one on a colour image (``layers.image_input/image_output``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from srgan_cli.errors import ModelFileError

if TYPE_CHECKING:
    import keras

StateDict = dict[str, np.ndarray]

# How ModelSpec.describe() names the hyper-parameters it shows, in this order.
_LABELS = (
    ("num_block", "blocks"),
    ("num_conv", "convs"),
    ("num_feat", "feat"),
    ("num_grow_ch", "growth"),
)


@dataclass(frozen=True)
class ModelSpec:
    """What a model file holds: architecture, inferred hyper-parameters, scale."""

    arch: str
    params: dict[str, Any] = field(default_factory=dict)
    scale: int = 4
    input_multiple: int = 1
    num_params: int = 0

    @property
    def in_nc(self) -> int:
        """Image channels the network reads: 3 (RGB) or 1 (luma)."""
        return int(self.params.get("in_nc", 3))

    @property
    def out_nc(self) -> int:
        """Image channels the network gives: 3 (RGB) or 1 (gray, copied to RGB)."""
        return int(self.params.get("out_nc", 3))

    def describe(self) -> str:
        """One line for ``srgan info`` and the card, e.g. 'RRDBNet 23 blocks, 64 feat, x4, ...'."""
        parts = [f"{self.params[k]} {label}" for k, label in _LABELS if k in self.params]
        head = self.arch + (f" ({self.params['layout']} keys)" if "layout" in self.params else "")
        parts.append(f"x{self.scale}")
        if (self.in_nc, self.out_nc) != (3, 3):
            same = self.in_nc == self.out_nc == 1
            parts.append("grayscale" if same else f"{self.in_nc} -> {self.out_nc} channels")
        if self.num_params >= 100_000:
            parts.append(f"{self.num_params / 1e6:.1f} M params")
        elif self.num_params:
            parts.append(f"{self.num_params / 1e3:.1f} k params")
        return f"{head} {', '.join(parts)}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        return cls(
            arch=str(data["arch"]),
            params=dict(data.get("params", {})),
            scale=int(data["scale"]),
            input_multiple=int(data.get("input_multiple", 1)),
            num_params=int(data.get("num_params", 0)),
        )


@dataclass(frozen=True)
class Tail:
    """A built model cut where it leaves its last low-resolution tensor, so that the costly
    high-resolution part can run in row strips (``split.SplitNetwork``).

    ``trunk`` maps the model's input to the LR features, ``upsampler`` those features to the
    model's output; both call the model's own layers (no second copy of the weights). Each
    feature row gives ``factor`` output rows, and an output row depends on at most
    ``margin`` feature rows above and below its own.
    """

    trunk: keras.Model
    upsampler: keras.Model
    factor: int
    margin: int


def no_tail(model: keras.Model, spec: ModelSpec) -> Tail | None:
    """``Arch.tail`` of an architecture that runs whole: its memory is spread evenly."""
    return None


@dataclass(frozen=True)
class Arch:
    """One architecture: key-signature test, shape inference, Keras build, weight copy, and
    optionally how to cut a built model into trunk and high-resolution tail (``Tail``)."""

    name: str
    matches: Callable[[Mapping[str, np.ndarray]], bool]
    spec: Callable[[Mapping[str, np.ndarray]], ModelSpec]
    build: Callable[[ModelSpec], keras.Model]
    load: Callable[[keras.Model, ModelSpec, Mapping[str, np.ndarray]], None]
    tail: Callable[[keras.Model, ModelSpec], Tail | None] = no_tail


ARCHS: list[Arch] = []


def register(arch: Arch) -> None:
    """Add (or replace, by name) an architecture; later registrations are tried last."""
    ARCHS[:] = [a for a in ARCHS if a.name != arch.name]
    ARCHS.append(arch)


def arch_named(name: str) -> Arch:
    for arch in ARCHS:
        if arch.name == name:
            return arch
    raise ModelFileError(f"unknown architecture {name!r}: supported {_supported()}")


def find(state: Mapping[str, np.ndarray]) -> tuple[Arch, StateDict]:
    """The architecture of ``state`` and the tensors it reads: all of them, or those below
    one prefix, the network's attribute in a wrapper such as a Lightning module (``model.``,
    ``net_g.``), beside losses or a discriminator. Of several networks, an EMA copy is taken,
    as ``params_ema`` is; any other choice is the user's."""
    found = _search(state, "")
    if len(found) > 1:
        ema = [prefix for prefix in found if "ema" in prefix.lower()]
        if len(ema) != 1:
            names = ", ".join(found)
            raise ModelFileError(f"model file holds several networks ({names}): keep one")
        found = {ema[0]: found[ema[0]]}
    if not found:
        first = ", ".join(list(state)[:5]) or "(none)"
        raise ModelFileError(f"unknown architecture: supported {_supported()}; first keys: {first}")
    return next(iter(found.values()))


def _search(state: Mapping[str, np.ndarray], prefix: str) -> dict[str, tuple[Arch, StateDict]]:
    """``{prefix: (arch, its tensors)}`` for ``state`` if an architecture fits it whole,
    else for each sub-tree of keys sharing a first dotted name that one fits."""
    for arch in ARCHS:
        if arch.matches(state):
            return {prefix: (arch, dict(state))}
    groups: dict[str, StateDict] = {}
    for key, value in state.items():
        head, dot, rest = key.partition(".")
        if dot:
            groups.setdefault(head, {})[rest] = value
    found: dict[str, tuple[Arch, StateDict]] = {}
    for head, sub in groups.items():
        found.update(_search(sub, f"{prefix}{head}."))
    return found


def identify(state: Mapping[str, np.ndarray]) -> tuple[Arch, ModelSpec]:
    """The first registered architecture whose key signature fits (``find``), and its spec."""
    arch, tensors = find(state)
    return arch, arch.spec(tensors)


def convert(
    state: Mapping[str, np.ndarray], dtype_policy: str | None = None
) -> tuple[keras.Model, ModelSpec]:
    """Identify ``state``, build the Keras model (under ``dtype_policy``) and load it."""
    from srgan_cli.model import policy_scope

    arch, tensors = find(state)
    spec = arch.spec(tensors)
    with policy_scope(dtype_policy):
        model = arch.build(spec)
    arch.load(model, spec, tensors)
    return model, spec


def _supported() -> str:
    return ", ".join(a.name for a in ARCHS)


def _register_builtins() -> None:
    import importlib

    for name in _BUILTINS:
        register(importlib.import_module(f"srgan_cli.archs.{name}").ARCH)


# Modules (numpy-only at import) that each define ``ARCH``; identification tries them in order.
_BUILTINS: tuple[str, ...] = ("rrdbnet", "srvgg", "msrresnet", "srresnet", "seed_srgan")


_register_builtins()
