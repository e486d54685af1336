"""MSRResNet, BasicSR's modified SRResNet (no batch norm), x2 / x3 / x4.

Forward pass (BasicSR ``srresnet_arch.py``): conv_first, LeakyReLU 0.1 -> num_block residual
blocks (conv, ReLU, conv, plus identity) -> upconv1 (+ upconv2 for x4), each followed by
pixel shuffle and LeakyReLU 0.1 -> conv_hr, LeakyReLU 0.1 -> conv_last, plus the input
upsampled bilinearly (align_corners=False, i.e. half-pixel centres: ``BilinearUpsample``, a
fixed-weight conv that works with unknown H and W, unlike Keras' ``UpSampling2D``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from srgan_cli.archs import Arch, ModelSpec
from srgan_cli.archs import _torch as T
from srgan_cli.errors import ModelFileError

if TYPE_CHECKING:
    import keras

NAME = "MSRResNet"


def matches(state: Mapping[str, np.ndarray]) -> bool:
    return all(
        f"{key}.weight" in state for key in ("conv_first", "body.0.conv1", "upconv1", "conv_hr")
    )


def _stages(scale: int) -> list[int]:
    """Pixel-shuffle factor of each up stage: x4 is two x2 stages."""
    return [2, 2] if scale == 4 else [scale]


def spec(state: Mapping[str, np.ndarray]) -> ModelSpec:
    num_feat = T.first_dim(state, "conv_first.weight")
    if "upconv2.weight" in state:
        scale = 4
    else:
        ratio = T.first_dim(state, "upconv1.weight") // max(num_feat, 1)
        scale = math.isqrt(ratio)
        if scale not in (2, 3) or scale * scale * num_feat != T.first_dim(state, "upconv1.weight"):
            raise ModelFileError(
                f"model file key upconv1.weight has {T.first_dim(state, 'upconv1.weight')} "
                f"outputs; MSRResNet needs {4 * num_feat} or {9 * num_feat}"
            )
    out_nc = T.check_out(T.first_dim(state, "conv_last.weight"), "conv_last.weight")
    in_nc = T.check_in(T.conv_in(state, "conv_first.weight"), "conv_first.weight")
    num_block = T.count_from_zero(state, r"body\.(\d+)\.conv1\.weight", "residual blocks")
    params = {"num_block": num_block, "num_feat": num_feat, **T.channel_params(in_nc, out_nc, NAME)}
    return ModelSpec(NAME, params, scale, 1, T.total_size(state))


def build(spec: ModelSpec) -> keras.Model:
    """Under ``mixed_bfloat16`` the first and last convs and the residual stay float32."""
    import keras
    from keras import layers

    from srgan_cli.archs.layers import (
        BilinearUpsample,
        DepthToSpace,
        conv3,
        image_input,
        image_output,
        leaky,
    )

    nf = spec.params["num_feat"]
    inputs, image = image_input(spec)
    x = leaky(0.1, "conv_first_act")(conv3(nf, "conv_first", "float32")(image))
    for b in range(spec.params["num_block"]):
        y = layers.ReLU(name=f"body_{b}_act")(conv3(nf, f"body_{b}_conv1")(x))
        x = layers.Add(name=f"body_{b}_add")([x, conv3(nf, f"body_{b}_conv2")(y)])
    for i, factor in enumerate(_stages(spec.scale), start=1):
        x = conv3(nf * factor * factor, f"upconv{i}")(x)
        x = leaky(0.1, f"upconv{i}_act")(DepthToSpace(factor, name=f"shuffle{i}")(x))
    x = leaky(0.1, "conv_hr_act")(conv3(nf, "conv_hr")(x))
    x = conv3(spec.out_nc, "conv_last", "float32")(x)
    base = BilinearUpsample(spec.scale, name="base", dtype="float32")
    outputs = layers.Add(name="residual", dtype="float32")([x, base(image)])
    return keras.Model(inputs, image_output(outputs, spec), name="msrresnet")


def weights(spec: ModelSpec, state: Mapping[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    nf = spec.params["num_feat"]
    reader = T.Reader(state, NAME)
    out = {"conv_first": reader.conv("conv_first", nf, spec.in_nc)}
    for b in range(spec.params["num_block"]):
        for c in (1, 2):
            out[f"body_{b}_conv{c}"] = reader.conv(f"body.{b}.conv{c}", nf, nf)
    for i, factor in enumerate(_stages(spec.scale), start=1):
        up = reader.conv(f"upconv{i}", nf * factor * factor, nf)
        out[f"upconv{i}"] = T.shuffled_conv(up, factor)
    out["conv_hr"] = reader.conv("conv_hr", nf, nf)
    out["conv_last"] = reader.conv("conv_last", spec.out_nc, nf)
    reader.finish()
    return out


ARCH = Arch(NAME, matches, spec, build, T.loader(weights))
