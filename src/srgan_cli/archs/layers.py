"""Keras layers shared by the imported architectures (imported only when a model is built).

PyTorch's pixel_shuffle / pixel_unshuffle become ``depth_to_space`` / ``space_to_depth``: the
weights around them are permuted at load time (``_torch.shuffle_order``), so the run-time op
is the backend's native one, with no gather.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
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


def bilinear_kernel(factor: int, channels: int = 3) -> np.ndarray:
    """3x3 conv kernel (HWIO) whose ``factor``**2 output phases per channel, through
    ``depth_to_space``, are an align_corners=False bilinear upsampling of an edge-padded input.

    Output pixel ``factor * i + k`` samples the input at ``i + d_k``, ``d_k = (2k + 1 -
    factor) / (2 factor)``: between rows ``i - 1`` and ``i`` when ``d_k < 0``, else between
    ``i`` and ``i + 1``, with weights fixed by ``k`` alone. PyTorch clamps samples beyond the
    edge to the edge pixel, which edge padding by 1 reproduces.
    """
    taps = np.zeros((factor, 3), np.float64)  # phase k -> weights of rows i-1, i, i+1
    for k in range(factor):
        d = (2 * k + 1 - factor) / (2 * factor)
        taps[k, 1] = 1.0 - abs(d)
        taps[k, 0 if d < 0 else 2] = abs(d)
    kernel = np.zeros((3, 3, channels, factor * factor * channels), np.float32)
    for ky in range(factor):
        for kx in range(factor):
            for c in range(channels):
                out = (ky * factor + kx) * channels + c  # depth_to_space's channel order
                kernel[:, :, c, out] = np.outer(taps[ky], taps[kx])
    return kernel


@keras.saving.register_keras_serializable(package="srgan_cli.archs")
class BilinearUpsample(layers.Layer):
    """Integer-factor bilinear upsampling, align_corners=False (PyTorch's ``F.interpolate``).

    Keras' ``UpSampling2D(interpolation="bilinear")`` resizes to a size computed from the
    static shape, which fails in ``predict_on_batch`` when H and W are unknown. With a fixed
    factor the weights are fixed too: edge padding, one 3x3 conv with a constant kernel
    (``bilinear_kernel``) and ``depth_to_space``, all shape-agnostic, any backend.
    """

    def __init__(self, factor: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        kernel = ops.convert_to_tensor(bilinear_kernel(self.factor, x.shape[-1]), x.dtype)
        padded = ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="symmetric")  # = edge, by 1
        return ops.depth_to_space(ops.conv(padded, kernel, padding="valid"), self.factor)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, *(None if n is None else n * self.factor for n in (h, w)), c)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="srgan_cli.archs")
class MaxPReLU(layers.PReLU):
    """PReLU as ``max(x, alpha * x)``: 2 elementwise passes instead of Keras' 5.

    Equal to PReLU for every channel whose slope is <= 1. ``prelu_signs`` turns a file's
    slopes > 1 into that case at load time (on a 128x128x64 tensor, 2 cores: 0.76 vs 1.16 ms
    in fp32, 0.87 vs 2.26 ms in bf16; SRVGGNetCompact has 33 of them).
    """

    def call(self, inputs):
        return ops.maximum(inputs, inputs * self.alpha)


def prelu_signs(alpha: np.ndarray) -> np.ndarray:
    """+1 per channel where ``max(x, a x)`` is PReLU (a <= 1), -1 where it is not (a > 1).

    For a > 1, PReLU(y) = min(y, a y) = -max(-y, -a y): negating the channel's conv output
    (kernel and bias) and the next conv's input weights gives the same function, exactly.
    """
    return np.where(alpha > 1.0, -1.0, 1.0).astype(np.float32)


def conv3(filters: int, name: str, dtype: str | None = None) -> layers.Conv2D:
    """3x3 stride-1 conv; 'same' pads 1 on each side, as PyTorch's padding=1.

    ``dtype="float32"`` keeps a first or last conv in float32 under ``mixed_bfloat16``, as
    the SRResNet generator does: the input's and the output's colour precision.
    """
    return layers.Conv2D(filters, 3, padding="same", name=name, dtype=dtype)


def leaky(slope: float, name: str) -> layers.LeakyReLU:
    return layers.LeakyReLU(negative_slope=slope, name=name)


LUMA = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights of R, G, B: Pillow's convert("L"), OpenCV's (chaiNNer's) gray."""


@keras.saving.register_keras_serializable(package="srgan_cli.archs")
class Luma(layers.Layer):
    """RGB -> one luma channel, what a grayscale model reads of a colour image."""

    def call(self, x):
        weights = ops.convert_to_tensor(np.array(LUMA, np.float32), x.dtype)
        return ops.sum(x * weights, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)


@keras.saving.register_keras_serializable(package="srgan_cli.archs")
class GrayToRGB(layers.Layer):
    """One channel -> R = G = B, so a grayscale model's output is written like any other."""

    def call(self, x):
        return ops.concatenate([x, x, x], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)


def image_input(spec: Any) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """The model's RGB input, and what its network reads: the input, or its luma when the
    network takes one channel (``spec.in_nc``). Float32 under ``mixed_bfloat16``."""
    inputs = keras.Input(shape=(None, None, 3), name="lr")
    if spec.in_nc == 1:
        return inputs, Luma(name="luma", dtype="float32")(inputs)
    return inputs, inputs


def image_output(x: keras.KerasTensor, spec: Any) -> keras.KerasTensor:
    """The network's output as RGB: a one-channel one (``spec.out_nc``) copied to all three."""
    return GrayToRGB(name="gray_to_rgb", dtype="float32")(x) if spec.out_nc == 1 else x
