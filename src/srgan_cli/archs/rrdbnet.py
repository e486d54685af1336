"""RRDBNet (ESRGAN, Real-ESRGAN, BSRGAN) in its three PyTorch key layouts.

Forward pass (BasicSR ``rrdbnet_arch.py``): [pixel_unshuffle for x2 / x1] -> conv_first ->
num_block RRDBs (3 residual dense blocks each: 5 convs over the concatenated features,
LeakyReLU 0.2, residual x0.2) -> conv_body, plus conv_first's output -> per x2 stage: nearest
x2, conv, LeakyReLU 0.2 -> conv_hr, LeakyReLU 0.2 -> conv_last. The Keras layers carry the
BasicSR names whatever the file's layout; ``_Layout`` maps them to the file's keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from srgan_cli.archs import Arch, ModelSpec, Tail
from srgan_cli.archs import _torch as T
from srgan_cli.errors import ModelFileError

if TYPE_CHECKING:
    import keras

NAME = "RRDBNet"
_DENSE_SCALE = np.float32(0.2)  # residual scaling of a dense block, folded into its conv5


@dataclass(frozen=True)
class _Layout:
    """Key names of one layout; ``{b}`` block, ``{r}`` dense block 1-3, ``{c}`` conv 1-5."""

    name: str
    first: str
    dense: str
    trunk: str  # may use {nb}, the number of blocks
    up: str  # {i} from 1; may use {u} = 3 * i (old ESRGAN Sequential index)
    hr: str  # may use {hr} = its old ESRGAN Sequential index
    last: str  # may use {last}
    block_pattern: str  # regex capturing the block index of a dense conv weight

    def up_key(self, i: int) -> str:
        return self.up.format(i=i, u=3 * i)

    def tail_keys(self, n_up: int) -> tuple[str, str]:
        """conv_hr and conv_last; old ESRGAN: conv, shortcut, 3 per up stage, hr, act, last."""
        index = {"hr": 3 * n_up + 2, "last": 3 * n_up + 4}
        return self.hr.format(**index), self.last.format(**index)


LAYOUTS = (
    _Layout(
        "BasicSR",
        "conv_first",
        "body.{b}.rdb{r}.conv{c}",
        "conv_body",
        "conv_up{i}",
        "conv_hr",
        "conv_last",
        r"body\.(\d+)\.rdb1\.conv1\.weight",
    ),
    _Layout(
        "BSRGAN",
        "conv_first",
        "RRDB_trunk.{b}.RDB{r}.conv{c}",
        "trunk_conv",
        "upconv{i}",
        "HRconv",
        "conv_last",
        r"RRDB_trunk\.(\d+)\.RDB1\.conv1\.weight",
    ),
    _Layout(
        "ESRGAN",
        "model.0",
        "model.1.sub.{b}.RDB{r}.conv{c}.0",
        "model.1.sub.{nb}",
        "model.{u}",
        "model.{hr}",
        "model.{last}",
        r"model\.1\.sub\.(\d+)\.RDB1\.conv1\.0\.weight",
    ),
)
_BY_NAME = {layout.name: layout for layout in LAYOUTS}


def _layout_of(state: Mapping[str, np.ndarray]) -> _Layout | None:
    for layout in LAYOUTS:
        first = layout.dense.format(b=0, r=1, c=1)
        if f"{layout.first}.weight" in state and f"{first}.weight" in state:
            return layout
    return None


def matches(state: Mapping[str, np.ndarray]) -> bool:
    return _layout_of(state) is not None


def _count_up(state: Mapping[str, np.ndarray], layout: _Layout) -> int:
    n = 0
    while f"{layout.up_key(n + 1)}.weight" in state:
        n += 1
    return n


def spec(state: Mapping[str, np.ndarray]) -> ModelSpec:
    layout = _layout_of(state)
    if layout is None:
        raise ModelFileError("model file is not an RRDBNet")
    num_block = T.count_from_zero(state, layout.block_pattern, "RRDB blocks")
    first = f"{layout.first}.weight"
    num_feat = T.first_dim(state, first)
    growth = T.first_dim(state, layout.dense.format(b=0, r=1, c=1) + ".weight")
    n_up = _count_up(state, layout)
    last = layout.tail_keys(n_up)[1] + ".weight"
    if last not in state:
        raise ModelFileError(f"model file lacks {last} (the last conv of RRDBNet)")
    out_nc = T.check_out(T.first_dim(state, last), last)
    unshuffle, in_nc = _unshuffle(T.conv_in(state, first), out_nc, first)
    if 2**n_up % unshuffle:
        raise ModelFileError(f"RRDBNet with {n_up} up stages cannot undo unshuffle x{unshuffle}")
    params = {
        "layout": layout.name,
        "num_block": num_block,
        "num_feat": num_feat,
        "num_grow_ch": growth,
        "num_up": n_up,
        "unshuffle": unshuffle,
        **T.channel_params(in_nc, out_nc),
    }
    return ModelSpec(NAME, params, 2**n_up // unshuffle, unshuffle, T.total_size(state))


def _unshuffle(in_ch: int, out_nc: int, key: str) -> tuple[int, int]:
    """(pixel-unshuffle factor, image channels) of conv_first's ``in_ch`` inputs: as spandrel
    decides, unshuffled when ``in_ch`` is the output's channels x4 or x16 (Real-ESRGAN x2, x1)."""
    for factor in (2, 4):
        if in_ch == out_nc * factor * factor:
            return factor, out_nc
    if in_ch in (1, 3):
        return 1, in_ch
    raise ModelFileError(
        f"model file key {key} takes {in_ch} channels; need 1 or 3 (gray or RGB), or the "
        "output's channels x4 or x16 (pixel unshuffle)"
    )


def build(spec: ModelSpec) -> keras.Model:
    """Under ``mixed_bfloat16`` the first and last convs stay float32."""
    import keras
    from keras import layers

    from srgan_cli.archs.layers import SpaceToDepth, conv3, image_input, image_output, leaky

    p = spec.params
    nf, gc = p["num_feat"], p["num_grow_ch"]
    inputs, x = image_input(spec)
    if p["unshuffle"] > 1:
        x = SpaceToDepth(p["unshuffle"], name="unshuffle")(x)
    feat = conv3(nf, "conv_first", "float32")(x)
    x = feat
    for b in range(p["num_block"]):
        x = _rrdb(x, f"body_{b}", nf, gc)
    x = layers.Add(name="trunk_add")([feat, conv3(nf, "conv_body")(x)])
    for i in range(1, p["num_up"] + 1):
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"up{i}")(x)
        x = leaky(0.2, f"conv_up{i}_act")(conv3(nf, f"conv_up{i}")(x))
    x = leaky(0.2, "conv_hr_act")(conv3(nf, "conv_hr")(x))
    outputs = image_output(conv3(spec.out_nc, "conv_last", "float32")(x), spec)
    return keras.Model(inputs, outputs, name="rrdbnet")


def _tail_layers(spec: ModelSpec) -> list[str]:
    """Names of the layers after ``trunk_add``, in order: the up stages, conv_hr, conv_last."""
    names = []
    for i in range(1, spec.params["num_up"] + 1):
        names += [f"up{i}", f"conv_up{i}", f"conv_up{i}_act"]
    names += ["conv_hr", "conv_hr_act", "conv_last"]
    return names + (["gray_to_rgb"] if spec.out_nc == 1 else [])


# Feature rows of context an upsampler strip needs on each side. An output row reaches one
# row further per 3x3 conv at that conv's resolution: conv_up{i} at 2**i, conv_hr and
# conv_last at 2**n, so (1 - 2**-n) + 2 * 2**-n = 1 + 2**-n <= 2 feature rows in all, and
# the nearest-x2 upsamples reach no further than the rows they copy (tests/test_split.py).
TAIL_MARGIN = 2


def tail(model: keras.Model, spec: ModelSpec) -> Tail:
    """``model`` cut at ``trunk_add`` (the residual add on the LR grid): the upsampler after
    it holds ~85% of the peak memory for ~8% of the FLOPs (tiling.py, split.py).

    The upsampler calls the model's own layers on a float32 input of the trunk's width: under
    ``mixed_bfloat16`` its first layer casts to bfloat16 again, exactly what the trunk gave.
    """
    import keras

    trunk = keras.Model(model.inputs, model.get_layer("trunk_add").output, name="rrdbnet_trunk")
    features = keras.Input(shape=(None, None, spec.params["num_feat"]), name="features")
    x = features
    for name in _tail_layers(spec):
        x = model.get_layer(name)(x)
    upsampler = keras.Model(features, x, name="rrdbnet_upsampler")
    return Tail(trunk, upsampler, 2 ** spec.params["num_up"], TAIL_MARGIN)


def _rrdb(x, name: str, nf: int, gc: int):
    from keras import layers

    y = x
    for r in range(1, 4):
        y = _dense_block(y, f"{name}_rdb{r}", nf, gc)
    return layers.Add(name=f"{name}_add")([x, layers.Rescaling(0.2, name=f"{name}_x02")(y)])


def _dense_block(x, name: str, nf: int, gc: int):
    """Five 3x3 convs, each over the concatenation of the input and all earlier outputs.

    The residual's x0.2 is folded into conv5's weights at load time (``_DENSE_SCALE``).
    """
    from keras import layers

    from srgan_cli.archs.layers import conv3, leaky

    feats = [x]
    for c in range(1, 5):
        inp = feats[0] if c == 1 else layers.Concatenate(name=f"{name}_cat{c}")(feats)
        feats.append(leaky(0.2, f"{name}_act{c}")(conv3(gc, f"{name}_conv{c}")(inp)))
    y = conv3(nf, f"{name}_conv5")(layers.Concatenate(name=f"{name}_cat5")(feats))
    return layers.Add(name=f"{name}_add")([x, y])


def weights(spec: ModelSpec, state: Mapping[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> [kernel, bias], read from the file's layout with checked shapes."""
    p = spec.params
    layout = _BY_NAME[p["layout"]]
    nf, gc, nb, n_up = p["num_feat"], p["num_grow_ch"], p["num_block"], p["num_up"]
    reader = T.Reader(state, NAME)
    first = reader.conv(layout.first, nf, spec.in_nc * p["unshuffle"] ** 2)
    out = {"conv_first": T.unshuffled_conv(first, p["unshuffle"])}
    for b in range(nb):
        for r in range(1, 4):
            for c in range(1, 6):
                key = layout.dense.format(b=b, r=r, c=c)
                kernel, bias = reader.conv(key, nf if c == 5 else gc, nf + (c - 1) * gc)
                scale = _DENSE_SCALE if c == 5 else 1.0
                out[f"body_{b}_rdb{r}_conv{c}"] = [kernel * scale, bias * scale]
    out["conv_body"] = reader.conv(layout.trunk.format(nb=nb), nf, nf)
    for i in range(1, n_up + 1):
        out[f"conv_up{i}"] = reader.conv(layout.up_key(i), nf, nf)
    hr, last = layout.tail_keys(n_up)
    out["conv_hr"] = reader.conv(hr, nf, nf)
    out["conv_last"] = reader.conv(last, spec.out_nc, nf)
    reader.finish()
    return out


ARCH = Arch(NAME, matches, spec, build, T.loader(weights), tail)
