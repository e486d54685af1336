"""Registry of foreign SR architectures: identify a PyTorch state dict, build its Keras twin.

A state dict is a flat ``{name: float32 array}`` with PyTorch key names and layouts (convs
OIHW). Each ``Arch`` recognises its key signature, infers the hyper-parameters from the
shapes (``ModelSpec``), builds a Keras 3 model with the same forward pass, and copies the
weights in (transposing convs to HWIO and permuting channels around pixel (un)shuffles, so
nothing is gathered at run time). This module stays numpy-only at import; Keras is imported
by ``build``/``load``, so reading and identifying a file is cheap.
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

    def describe(self) -> str:
        """One line for ``srgan info`` and the card, e.g. 'RRDBNet 23 blocks, 64 feat, x4, ...'."""
        parts = [f"{self.params[k]} {label}" for k, label in _LABELS if k in self.params]
        head = self.arch + (f" ({self.params['layout']} keys)" if "layout" in self.params else "")
        parts.append(f"x{self.scale}")
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
class Arch:
    """One architecture: key-signature test, shape inference, Keras build, weight copy."""

    name: str
    matches: Callable[[Mapping[str, np.ndarray]], bool]
    spec: Callable[[Mapping[str, np.ndarray]], ModelSpec]
    build: Callable[[ModelSpec], keras.Model]
    load: Callable[[keras.Model, ModelSpec, Mapping[str, np.ndarray]], None]


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


def identify(state: Mapping[str, np.ndarray]) -> tuple[Arch, ModelSpec]:
    """The first registered architecture whose key signature fits, and its inferred spec."""
    for arch in ARCHS:
        if arch.matches(state):
            return arch, arch.spec(state)
    first = ", ".join(list(state)[:5]) or "(none)"
    raise ModelFileError(f"unknown architecture: supported {_supported()}; first keys: {first}")


def convert(
    state: Mapping[str, np.ndarray], dtype_policy: str | None = None
) -> tuple[keras.Model, ModelSpec]:
    """Identify ``state``, build the Keras model (under ``dtype_policy``) and load it."""
    from srgan_cli.model import policy_scope

    arch, spec = identify(state)
    with policy_scope(dtype_policy):
        model = arch.build(spec)
    arch.load(model, spec, state)
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
