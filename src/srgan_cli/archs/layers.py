"""Keras layers shared by the imported architectures (imported only when a model is built).

PyTorch's pixel_shuffle / pixel_unshuffle become ``depth_to_space`` / ``space_to_depth``: the
weights around them are permuted at load time (``_torch.shuffle_order``), so the run-time op
is the backend's native one, with no gather.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops


class _Rearrange(layers.Layer):
    """Moves pixels between space and depth by ``factor``; subclasses give the direction."""

    grow = 1  # spatial factor exponent: +1 depth -> space, -1 space -> depth

    def __init__(self, factor: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = factor

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        f = float(self.factor) ** self.grow
        return (b, *(None if n is None else int(n * f) for n in (h, w)), int(c / (f * f)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="srgan_cli.archs")
class DepthToSpace(_Rearrange):
    """(H, W, C*r*r) -> (H*r, W*r, C), channel order of ``tf.nn.depth_to_space``."""

    def call(self, x):
        return ops.depth_to_space(x, self.factor)


@keras.saving.register_keras_serializable(package="srgan_cli.archs")
class SpaceToDepth(_Rearrange):
    """(H*r, W*r, C) -> (H, W, C*r*r); H and W must be multiples of r (the pipeline pads)."""

    grow = -1

    def call(self, x):
        return ops.space_to_depth(x, self.factor)


def conv3(filters: int, name: str) -> layers.Conv2D:
    """3x3 stride-1 conv; 'same' pads 1 on each side, as PyTorch's padding=1."""
    return layers.Conv2D(filters, 3, padding="same", name=name)


def leaky(slope: float, name: str) -> layers.LeakyReLU:
    return layers.LeakyReLU(negative_slope=slope, name=name)


def rgb_input() -> keras.KerasTensor:
    return keras.Input(shape=(None, None, 3), name="lr")
