"""SRVGGNetCompact (Real-ESRGAN's realesr-general-x4v3, realesr-animevideov3).

Forward pass (Real-ESRGAN ``srvgg_arch.py``): ``body`` is a list alternating 3x3 convs and
per-channel PReLUs (conv, act, num_conv x (conv, act), last conv); the last conv gives
3 * scale^2 channels -> pixel shuffle, plus the nearest-upsampled input. Only the PReLU
variant has weights that identify it (ReLU/LeakyReLU files carry no activation tensors).
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

NAME = "SRVGGNetCompact"


def matches(state: Mapping[str, np.ndarray]) -> bool:
    act = state.get("body.1.weight")
    return "body.0.weight" in state and act is not None and np.ndim(act) == 1


def spec(state: Mapping[str, np.ndarray]) -> ModelSpec:
    n = T.count_from_zero(state, r"body\.(\d+)\.weight", "body layers")
    if n < 3 or n % 2 == 0:
        raise ModelFileError(f"model file has {n} body layers; SRVGGNetCompact has an odd number")
    last = f"body.{n - 1}.weight"
    nc = T.check_in(T.conv_in(state, "body.0.weight"), "body.0.weight")
    out = T.first_dim(state, last)
    scale = math.isqrt(out // nc)
    if scale < 1 or out != nc * scale * scale:
        raise ModelFileError(
            f"model file key {last} gives {out} channels, not {nc} x scale^2 (the input's "
            "channels: its input skip needs as many out)"
        )
    params = {"num_feat": T.first_dim(state, "body.0.weight"), "num_conv": (n - 3) // 2}
    return ModelSpec(NAME, params | T.channel_params(nc, nc), scale, 1, T.total_size(state))


def build(spec: ModelSpec) -> keras.Model:
    """Under ``mixed_bfloat16`` the first and last convs and the residual stay float32."""
    import keras
    from keras import layers

    from srgan_cli.archs.layers import DepthToSpace, MaxPReLU, conv3, image_input, image_output

    nf, scale, num_conv = spec.params["num_feat"], spec.scale, spec.params["num_conv"]
    inputs, image = image_input(spec)
    x = image
    for i in range(num_conv + 1):
        x = conv3(nf, f"body_{2 * i}", "float32" if i == 0 else None)(x)
        x = MaxPReLU(shared_axes=[1, 2], name=f"body_{2 * i + 1}")(x)
    x = conv3(spec.out_nc * scale * scale, f"body_{2 * num_conv + 2}", "float32")(x)
    base = image
    if scale > 1:
        x = DepthToSpace(scale, name="shuffle", dtype="float32")(x)
        base = layers.UpSampling2D(scale, name="base", dtype="float32")(image)
    outputs = layers.Add(name="residual", dtype="float32")([x, base])
    return keras.Model(inputs, image_output(outputs, spec), name="srvggnet_compact")


def weights(spec: ModelSpec, state: Mapping[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> weights; channels whose PReLU slope is > 1 are negated around it
    (``layers.prelu_signs``), so ``MaxPReLU`` computes the file's PReLU."""
    from srgan_cli.archs.layers import prelu_signs

    nf, num_conv, scale = spec.params["num_feat"], spec.params["num_conv"], spec.scale
    reader = T.Reader(state, NAME)
    out: dict[str, list[np.ndarray]] = {}
    signs = np.ones(spec.in_nc, np.float32)  # of the previous layer's output channels
    for i in range(num_conv + 1):
        kernel, bias = reader.conv(f"body.{2 * i}", nf, spec.in_nc if i == 0 else nf)
        alpha = reader.take(f"body.{2 * i + 1}.weight", (nf,))
        new = prelu_signs(alpha)
        out[f"body_{2 * i}"] = [kernel * signs[:, None] * new, bias * new]
        out[f"body_{2 * i + 1}"] = [alpha.reshape(1, 1, nf)]
        signs = new
    last = 2 * num_conv + 2
    kernel, bias = reader.conv(f"body.{last}", spec.out_nc * scale**2, nf)
    out[f"body_{last}"] = T.shuffled_conv([kernel * signs[:, None], bias], scale)
    reader.finish()
    return out


ARCH = Arch(NAME, matches, spec, build, T.loader(weights))
