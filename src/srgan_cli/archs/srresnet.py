"""Our own SRResNet generator (``srgan_cli.model``), registered so it can be described and built.

Its weights are native Keras ``.weights.h5`` files that load through ``srgan_cli.weights``;
no PyTorch state dict is ours, so ``matches`` never claims one and ``load`` refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from srgan_cli.archs import Arch, ModelSpec, Tail
from srgan_cli.errors import ModelFileError

if TYPE_CHECKING:
    import keras

    from srgan_cli.model import GeneratorConfig

NAME = "SRResNet"


def spec_for(cfg: GeneratorConfig) -> ModelSpec:
    """The spec of a native generator with this config (always x4, any input size)."""
    c = cfg.channels
    bn = 4 * c if cfg.batch_norm else 0  # gamma, beta, moving mean and variance
    conv3 = 9 * c * c + c
    total = (
        (81 * 3 * c + c) + c  # head conv, PReLU
        + cfg.blocks * (2 * (conv3 + bn) + c)  # conv, BN, PReLU, conv, BN
        + (conv3 + bn)  # body conv, BN
        + 2 * (4 * conv3 + c)  # per x2 stage: conv to 4c channels, shuffle, PReLU of c
        + (81 * c * 3 + 3)  # tail conv
    )  # fmt: skip
    params = {"num_block": cfg.blocks, "num_feat": c, "batch_norm": cfg.batch_norm}
    return ModelSpec(NAME, params, 4, 1, total)


def matches(state: Mapping[str, np.ndarray]) -> bool:
    return False


def spec(state: Mapping[str, np.ndarray]) -> ModelSpec:
    raise ModelFileError("SRResNet weights are native .weights.h5 files, not state dicts")


def build(spec: ModelSpec) -> keras.Model:
    from srgan_cli.model import build_generator

    p = spec.params
    return build_generator(p["num_block"], p["num_feat"], bool(p.get("batch_norm", False)))


def load(model: keras.Model, spec: ModelSpec, state: Mapping[str, np.ndarray]) -> None:
    raise ModelFileError("SRResNet weights load from .weights.h5 files (srgan_cli.weights)")


def tail(model: keras.Model, spec: ModelSpec) -> Tail | None:
    """The ``for_inference`` model cut at ``long_skip``: the x2 stages hold most of the peak
    memory (64 channels at 4 times a tile's area), so they run in row strips (split.py)."""
    from srgan_cli.model import fast_tail_split

    return fast_tail_split(model, "srresnet")


ARCH = Arch(NAME, matches, spec, build, load, tail)
