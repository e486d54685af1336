"""The SRGAN generator (SRResNet topology), written with Keras 3 layers and ``keras.ops`` only.

Only backend-neutral Keras APIs are used so the same definition trains on JAX or PyTorch
(a GPU, when one is lent) and runs on TensorFlow/oneDNN on the user's CPU.

Input: RGB float32 in [0, 1], NHWC, any height and width. Output: RGB at 4x the size, nominally
in [0, 1]; the last convolution is linear, so values slightly outside are possible and are
clipped when converted to an image (see ``pipeline``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import layers, ops

from srgan_cli import SCALE

if TYPE_CHECKING:
    from srgan_cli.archs import Tail


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture knobs; stored in each weight card so loading can check them."""

    blocks: int = 16
    channels: int = 64
    batch_norm: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        return cls(**{k: data[k] for k in ("blocks", "channels", "batch_norm") if k in data})


@keras.saving.register_keras_serializable(package="srgan_cli")
class PixelShuffle(layers.Layer):
    """Sub-pixel rearrangement (depth-to-space), channel order as ``tf.nn.depth_to_space``."""

    def __init__(self, factor: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        f = self.factor
        shape = ops.shape(x)
        b, h, w, c = shape[0], shape[1], shape[2], shape[3]
        out_c = c // (f * f)
        x = ops.reshape(x, (b, h, w, f, f, out_c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        return ops.reshape(x, (b, h * f, w * f, out_c))

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        f = self.factor
        return (
            b,
            None if h is None else h * f,
            None if w is None else w * f,
            c // (f * f),
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor}


def _prelu(name: str) -> layers.PReLU:
    # One slope per channel, shared over space, starting at 0.25 as in the SRGAN paper.
    return layers.PReLU(
        alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2], name=name
    )


def _conv(
    filters: int, kernel: int, name: str, scale: float = 1.0, dtype: str | None = None
) -> layers.Conv2D:
    init = keras.initializers.VarianceScaling(scale=2.0 * scale, mode="fan_in")
    return layers.Conv2D(
        filters, kernel, padding="same", kernel_initializer=init, name=name, dtype=dtype
    )


def _residual_block(x, cfg: GeneratorConfig, i: int):
    """conv-[BN]-PReLU-conv-[BN] plus identity; the 2nd conv starts small so deep nets train."""
    y = _conv(cfg.channels, 3, f"res{i}_conv1")(x)
    if cfg.batch_norm:
        y = layers.BatchNormalization(momentum=0.9, name=f"res{i}_bn1")(y)
    y = _prelu(f"res{i}_prelu")(y)
    y = _conv(cfg.channels, 3, f"res{i}_conv2", scale=0.1)(y)
    if cfg.batch_norm:
        y = layers.BatchNormalization(momentum=0.9, name=f"res{i}_bn2")(y)
    return layers.Add(name=f"res{i}_add")([x, y])


def build_generator(
    blocks: int = 16,
    channels: int = 64,
    batch_norm: bool = False,
    name: str = "generator",
    dtype_policy: str | None = None,
) -> keras.Model:
    """Build the x4 SRResNet/SRGAN generator for inputs of any size (NHWC, RGB in [0, 1]).

    ``dtype_policy`` (e.g. ``"mixed_bfloat16"``) applies to this model only; the first
    and last convolutions stay float32 (they carry the colour precision and cost ~1%).
    """
    with policy_scope(dtype_policy):
        return _build(GeneratorConfig(blocks, channels, batch_norm), name)


@contextlib.contextmanager
def policy_scope(dtype_policy: str | None) -> Iterator[None]:
    """Build layers under ``dtype_policy`` (None = unchanged), restoring the global after."""
    previous = keras.config.dtype_policy()
    if dtype_policy is not None:
        keras.config.set_dtype_policy(dtype_policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def to_uint8(images) -> np.ndarray:
    """Model output (float, nominally [0, 1]) -> uint8 images: clipped, rounded to nearest."""
    return np.rint(np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def _build(cfg: GeneratorConfig, name: str) -> keras.Model:
    blocks, channels, batch_norm = cfg.blocks, cfg.channels, cfg.batch_norm
    inputs = keras.Input(shape=(None, None, 3), name="lr")
    x = layers.Rescaling(2.0, offset=-1.0, name="to_pm1", dtype="float32")(inputs)
    head_conv = _conv(channels, 9, "head_conv", dtype="float32")
    head = _prelu("head_prelu")(head_conv(x))
    x = head
    for i in range(blocks):
        x = _residual_block(x, cfg, i)
    x = _conv(channels, 3, "body_conv")(x)
    if batch_norm:
        x = layers.BatchNormalization(momentum=0.9, name="body_bn")(x)
    x = layers.Add(name="long_skip")([head, x])
    for stage in range(2):  # two x2 sub-pixel stages = x4
        x = _conv(channels * 4, 3, f"up{stage}_conv")(x)
        x = PixelShuffle(2, name=f"up{stage}_shuffle")(x)
        x = _prelu(f"up{stage}_prelu")(x)
    x = layers.Conv2D(3, 9, padding="same", name="tail_conv", dtype="float32")(x)
    outputs = layers.Rescaling(0.5, offset=0.5, name="to_unit", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def generator_flops_per_input_pixel(cfg: GeneratorConfig) -> float:
    """Multiply-adds x2 per LR input pixel; used by ``srgan bench`` to report GFLOP/s."""
    c = cfg.channels
    lr = 9 * 9 * 3 * c + cfg.blocks * 2 * 9 * c * c + 9 * c * c
    up = 9 * c * 4 * c * (1 + 4)  # first stage at 1x, second at 2x (4x the pixels)
    tail = 9 * 9 * c * 3 * SCALE * SCALE
    return 2.0 * (lr + up + tail)


@keras.saving.register_keras_serializable(package="srgan_cli")
class SubpixelTail(layers.Layer):
    """``up1_shuffle -> up1_prelu -> tail_conv`` computed on the un-shuffled tensor.

    A 9x9 convolution with 3 output channels runs at a fifth of the CPU's matmul rate (the
    GEMM is 3 wide). On the 2x2-phase layout before the last pixel shuffle the same linear
    map is a 5x5 convolution with 256 inputs and 12 outputs, followed by one shuffle of a
    3-channel image: identical results (borders included), ~2.5x faster, and the 64-channel
    full-resolution shuffle disappears. Built from a trained generator by ``for_inference``.
    """

    def __init__(self, channels: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.channels = channels

    def build(self, input_shape) -> None:
        c = self.channels
        self.alpha = self.add_weight(shape=(1, 1, 4 * c), initializer="zeros", name="alpha")
        self.kernel = self.add_weight(shape=(5, 5, 4 * c, 12), initializer="zeros", name="kernel")
        self.bias = self.add_weight(shape=(12,), initializer="zeros", name="bias")

    def call(self, x):
        alpha = ops.cast(self.alpha, x.dtype)
        x = ops.maximum(x, 0) + alpha * ops.minimum(x, 0)
        y = ops.conv(x, ops.cast(self.kernel, x.dtype), padding="same")
        return ops.depth_to_space(y + ops.cast(self.bias, y.dtype), 2)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, 3)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "channels": self.channels}


def subpixel_tail_weights(alpha, kernel, bias):
    """Rearrange ``up1_prelu`` alpha (1,1,C) and ``tail_conv`` (9,9,C,3)+(3,) for SubpixelTail.

    Input channel (qy*2+qx)*C + c of the un-shuffled tensor is pixel (2p+qy, 2r+qx); output
    channel (a*2+b)*3 + o is output pixel (2i+a, 2j+b). Tap (sy, sx) of the 5x5 kernel reads
    full-resolution offset (2*sy + qy - a, 2*sx + qx - b), which must lie in the 9x9 window.
    """
    c = kernel.shape[2]
    out = np.zeros((5, 5, 4 * c, 12), dtype=np.float32)
    for a, b, qy, qx in np.ndindex(2, 2, 2, 2):
        for sy, sx in np.ndindex(5, 5):
            dy, dx = 2 * (sy - 2) + qy - a + 4, 2 * (sx - 2) + qx - b + 4
            if 0 <= dy < 9 and 0 <= dx < 9:
                q, o = (qy * 2 + qx) * c, (a * 2 + b) * 3
                out[sy, sx, q : q + c, o : o + 3] = kernel[dy, dx]
    return np.tile(alpha, (1, 1, 4)), out, np.tile(bias, 4)


def _last_stage(generator: keras.Model) -> str | None:
    """``upK`` of the last sub-pixel stage when ``generator`` ends conv -> shuffle -> PReLU ->
    9x9 ``tail_conv`` to 3 channels (ours, and the seed's SRGAN-tensorflow twin), else None."""
    names = {layer.name for layer in generator.layers}
    stages = [int(n[2:-5]) for n in names if n.startswith("up") and n.endswith("_conv")]
    if not stages or "tail_conv" not in names:
        return None
    last = f"up{max(stages)}"
    tail = generator.get_layer("tail_conv")
    fits = {f"{last}_shuffle", f"{last}_prelu"} <= names and tail.kernel.shape[:2] == (9, 9)
    return last if fits and tail.kernel.shape[-1] == 3 else None


def has_subpixel_tail(generator: keras.Model) -> bool:
    """Whether ``for_inference`` can speed ``generator`` up (see ``_last_stage``)."""
    return _last_stage(generator) is not None


def for_inference(generator: keras.Model) -> keras.Model:
    """A faster model computing exactly what ``generator`` computes (see SubpixelTail).

    Shares every layer up to the last stage's conv; keeps the generator's dtype policy for them
    and runs the tail in float32 (it carries the output's colour precision). Our generator's
    [-1, 1] output keeps its rescaling; the seed's twin has it folded into ``tail_conv``.
    """
    last = _last_stage(generator)
    if last is None:
        raise ValueError(f"{generator.name} does not end in a 9x9 sub-pixel tail")
    up = generator.get_layer(f"{last}_conv").output
    tail = SubpixelTail(up.shape[-1] // 4, name="subpixel_tail", dtype="float32")
    out = tail(up)
    alpha = generator.get_layer(f"{last}_prelu").get_weights()[0]
    kernel, bias = generator.get_layer("tail_conv").get_weights()
    tail.set_weights(list(subpixel_tail_weights(alpha, kernel, bias)))
    if "to_unit" in {layer.name for layer in generator.layers}:
        out = layers.Rescaling(0.5, offset=0.5, name="to_unit_fast", dtype="float32")(out)
    return keras.Model(generator.input, out, name=f"{generator.name}_inference")


def fast_tail_margin(stages: int) -> int:
    """Feature rows of context an upsampler strip of a ``for_inference`` model needs per side.

    An output row reaches one row further per 3x3 conv at that conv's resolution: ``upK_conv``
    at ``2**K`` (1, then 0.5, ... feature rows), and SubpixelTail's 5x5 conv two rows at the
    last stage's input resolution ``2**(stages - 1)``; shuffles and PReLUs reach no further.
    x4: 1 + 0.5 + 1 = 2.5, x2: 1 + 2 = 3, so 3 rows (tests/test_split.py: 2 is not enough).
    """
    reach = sum(2.0**-k for k in range(stages)) + 2 * 2.0 ** -(stages - 1)
    return math.ceil(reach)


def fast_tail_split(model: keras.Model, name: str) -> Tail | None:
    """A ``for_inference`` model cut at ``long_skip`` (the last LR tensor), or None if it has
    no fast tail (a generator as trained: it then runs whole).

    The upsampler re-calls the model's own layers (no weight copies) on a float32 input of the
    trunk's width: under ``mixed_bfloat16`` ``up0_conv`` casts it to bfloat16 again, exactly
    what the trunk gave, and SubpixelTail (float32) gives the output.
    """
    from srgan_cli.archs import Tail

    names = [layer.name for layer in model.layers]
    if "long_skip" not in names or "subpixel_tail" not in names:
        return None
    stages = sum(1 for n in names if n.startswith("up") and n.endswith("_conv"))
    order = [f"up{k}_{part}" for k in range(stages - 1) for part in ("conv", "shuffle", "prelu")]
    order += [f"up{stages - 1}_conv", "subpixel_tail"]
    order += ["to_unit_fast"] if "to_unit_fast" in names else []
    skip = model.get_layer("long_skip").output
    trunk = keras.Model(model.inputs, skip, name=f"{name}_trunk")
    features = keras.Input(shape=(None, None, skip.shape[-1]), name="features")
    x = features
    for layer in order:
        x = model.get_layer(layer)(x)
    upsampler = keras.Model(features, x, name=f"{name}_upsampler")
    return Tail(trunk, upsampler, 2**stages, fast_tail_margin(stages))
