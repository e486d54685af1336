"""The seed's own network: the SRGAN-tensorflow generator (also IBM's image-resolution-enhancer).

Its TF1 checkpoint names variables ``generator/generator_unit/<stage>/...`` in TF layouts
(conv kernels HWIO). The graph, from the seed's ``lib/model.py`` and ``lib/ops.py``:

  input_stage      9x9 conv (bias) -> PReLU                               = head
  resblock_N       3x3 conv (no bias) -> BN -> PReLU -> 3x3 conv -> BN, + input
  resblock_output  3x3 conv (no bias) -> BN, + head
  subpixelconv_stageK  3x3 conv to 4C (bias) -> pixel shuffle x2 -> PReLU  (two stages: x4)
  output_stage     9x9 conv (bias) to 3 channels, output in [-1, 1]

The LR input is fed in [0, 1] as is. BatchNorm (slim, inference mode, epsilon 0.001, no gamma
unless the checkpoint has one) is folded into the conv before it, the shuffle's channel order
(channel 4g + 2i + j -> phase (i, j) of output channel g, PyTorch's order) is permuted into
``depth_to_space``'s, so the backend's native op does the shuffle (``layers.DepthToSpace``),
and ``(y + 1) / 2`` is folded into the last conv, so the Keras twin is a plain conv/PReLU net
that takes and gives [0, 1] like every other model here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from srgan_cli.archs import Arch, ModelSpec, Tail
from srgan_cli.archs import _torch as T
from srgan_cli.errors import ModelFileError

if TYPE_CHECKING:
    import keras

NAME = "SeedSRGAN"
UNIT = "generator_unit/"
BN_EPSILON = 1e-3  # slim.batch_norm's default, which the seed keeps
_RESBLOCK = re.compile(r"resblock_(\d+)/")
_STAGE = re.compile(r"subpixelconv_stage(\d+)/")


def _unit(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The generator's variables keyed by their name below ``generator_unit/``."""
    return {key.split(UNIT, 1)[1]: value for key, value in state.items() if UNIT in key}


def matches(state: Mapping[str, np.ndarray]) -> bool:
    return any(UNIT + "input_stage/" in key for key in state)


def _conv(scope: str) -> str:
    return f"{scope}/Conv/weights"


def _numbers(unit: Mapping[str, np.ndarray], pattern: re.Pattern[str]) -> int:
    """How many consecutive scopes 1..N match ``pattern`` (a gap is a damaged file)."""
    found = sorted({int(m.group(1)) for key in unit if (m := pattern.match(key))})
    if found != list(range(1, len(found) + 1)):
        raise ModelFileError(f"{NAME}: scopes numbered {found}, expected 1..{len(found)}")
    return len(found)


def expected_shapes(blocks: int, channels: int, stages: int) -> dict[str, tuple[int, ...]]:
    """Every variable the generator needs (below ``generator_unit/``) and its shape."""
    c = channels
    shapes: dict[str, tuple[int, ...]] = {
        _conv("input_stage/conv"): (9, 9, 3, c),
        "input_stage/conv/Conv/biases": (c,),
        "input_stage/Prelu/alpha": (c,),
    }
    for i in range(1, blocks + 1):
        for conv, bn in (("conv_1", "BatchNorm"), ("conv_2", "BatchNorm_1")):
            shapes[_conv(f"resblock_{i}/{conv}")] = (3, 3, c, c)
            shapes.update(_bn_shapes(f"resblock_{i}/{bn}", c))
        shapes[f"resblock_{i}/Prelu/alpha"] = (c,)
    shapes[_conv("resblock_output/conv")] = (3, 3, c, c)
    shapes.update(_bn_shapes("resblock_output/BatchNorm", c))
    for k in range(1, stages + 1):
        shapes[_conv(f"subpixelconv_stage{k}/conv")] = (3, 3, c, 4 * c)
        shapes[f"subpixelconv_stage{k}/conv/Conv/biases"] = (4 * c,)
        shapes[f"subpixelconv_stage{k}/Prelu/alpha"] = (c,)
    shapes[_conv("output_stage/conv")] = (9, 9, c, 3)
    shapes["output_stage/conv/Conv/biases"] = (3,)
    return shapes


def _bn_shapes(scope: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{scope}/{leaf}": (c,) for leaf in ("beta", "moving_mean", "moving_variance")}


def spec(state: Mapping[str, np.ndarray]) -> ModelSpec:
    """Blocks, channels and scale (2 ** stages) from the names and shapes; check them all."""
    unit = _unit(state)
    head = unit.get(_conv("input_stage/conv"))
    if head is None or head.ndim != 4:
        raise ModelFileError(f"{NAME}: no 4-D {UNIT}{_conv('input_stage/conv')}")
    blocks, stages = _numbers(unit, _RESBLOCK), _numbers(unit, _STAGE)
    channels = int(head.shape[-1])
    for key, shape in expected_shapes(blocks, channels, stages).items():
        if key not in unit:
            raise ModelFileError(f"{NAME}: missing {UNIT}{key}")
        if tuple(unit[key].shape) != shape:
            got = tuple(unit[key].shape)
            raise ModelFileError(f"{NAME}: {UNIT}{key} has shape {got}, expected {shape}")
    params = {"num_block": blocks, "num_feat": channels, "num_stages": stages}
    return ModelSpec(NAME, params, scale=2**stages, num_params=_count(blocks, channels, stages))


def _count(blocks: int, c: int, stages: int) -> int:
    """Parameters of the Keras twin (BN folded into conv biases)."""
    head = 9 * 9 * 3 * c + c + c
    body = blocks * (2 * (9 * c * c + c) + c) + 9 * c * c + c
    up = stages * (9 * c * 4 * c + 4 * c + c)
    return head + body + up + 9 * 9 * c * 3 + 3


def build(model_spec: ModelSpec) -> keras.Model:
    """The folded generator: [0, 1] RGB in, [0, 1] RGB ``scale`` times larger out."""
    import keras
    from keras import layers

    from srgan_cli.archs.layers import DepthToSpace

    c = int(model_spec.params["num_feat"])

    def conv(filters: int, kernel: int, name: str, dtype: str | None = None) -> layers.Conv2D:
        return layers.Conv2D(filters, kernel, padding="same", name=name, dtype=dtype)

    def prelu(name: str) -> layers.PReLU:
        return layers.PReLU(shared_axes=[1, 2], name=name)

    inputs = keras.Input(shape=(None, None, 3), name="lr")
    head = prelu("head_prelu")(conv(c, 9, "head_conv", dtype="float32")(inputs))
    x = head
    for i in range(int(model_spec.params["num_block"])):
        y = prelu(f"res{i}_prelu")(conv(c, 3, f"res{i}_conv1")(x))
        x = layers.Add(name=f"res{i}_add")([x, conv(c, 3, f"res{i}_conv2")(y)])
    x = layers.Add(name="long_skip")([head, conv(c, 3, "body_conv")(x)])
    for k in range(int(model_spec.params["num_stages"])):
        x = conv(4 * c, 3, f"up{k}_conv")(x)
        x = prelu(f"up{k}_prelu")(DepthToSpace(2, name=f"up{k}_shuffle")(x))
    outputs = conv(3, 9, "tail_conv", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="seed_srgan")


def _fold_bn(kernel: np.ndarray, unit: Mapping[str, np.ndarray], scope: str):
    """conv (no bias) then inference BN == conv with kernel * s and bias beta - mean * s."""
    gamma = unit.get(f"{scope}/gamma", np.ones_like(unit[f"{scope}/beta"]))
    s = gamma / np.sqrt(unit[f"{scope}/moving_variance"] + BN_EPSILON)
    return kernel * s, unit[f"{scope}/beta"] - unit[f"{scope}/moving_mean"] * s


def _alpha(values: np.ndarray) -> np.ndarray:
    return values.reshape(1, 1, -1)


def folded_weights(
    model_spec: ModelSpec, state: Mapping[str, np.ndarray]
) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> weights, computed from the checkpoint's variables."""
    unit = _unit(state)
    c = int(model_spec.params["num_feat"])
    out: dict[str, list[np.ndarray]] = {
        "head_conv": [unit[_conv("input_stage/conv")], unit["input_stage/conv/Conv/biases"]],
        "head_prelu": [_alpha(unit["input_stage/Prelu/alpha"])],
    }
    for i in range(int(model_spec.params["num_block"])):
        scope = f"resblock_{i + 1}"
        out[f"res{i}_conv1"] = list(
            _fold_bn(unit[_conv(f"{scope}/conv_1")], unit, f"{scope}/BatchNorm")
        )
        out[f"res{i}_prelu"] = [_alpha(unit[f"{scope}/Prelu/alpha"])]
        out[f"res{i}_conv2"] = list(
            _fold_bn(unit[_conv(f"{scope}/conv_2")], unit, f"{scope}/BatchNorm_1")
        )
    out["body_conv"] = list(
        _fold_bn(unit[_conv("resblock_output/conv")], unit, "resblock_output/BatchNorm")
    )
    order = T.shuffle_order(c, 2)  # the seed's shuffle has PyTorch's channel order
    for k in range(int(model_spec.params["num_stages"])):
        scope = f"subpixelconv_stage{k + 1}"
        kernel, bias = unit[_conv(f"{scope}/conv")], unit[f"{scope}/conv/Conv/biases"]
        out[f"up{k}_conv"] = [kernel[..., order], bias[order]]
        out[f"up{k}_prelu"] = [_alpha(unit[f"{scope}/Prelu/alpha"])]
    # The seed's output is in [-1, 1]; (y + 1) / 2 maps it to ours.
    out["tail_conv"] = [
        unit[_conv("output_stage/conv")] * 0.5,
        (unit["output_stage/conv/Conv/biases"] + 1.0) * 0.5,
    ]
    return out


def tail(model: keras.Model, model_spec: ModelSpec) -> Tail | None:
    """Cut as our SRResNet is (``model.fast_tail_split``): same sub-pixel stages after
    ``long_skip``, ``for_inference`` applied by ``pipeline.inference_function``."""
    from srgan_cli.model import fast_tail_split

    return fast_tail_split(model, "seed_srgan")


ARCH = Arch(
    name=NAME,
    matches=matches,
    spec=spec,
    build=build,
    load=T.loader(folded_weights),
    tail=tail,
)
