"""Numpy helpers shared by the architectures: read PyTorch tensors, check shapes, convert layouts.

Every tensor is fetched through ``take`` with the shape the inferred spec demands, so a file
whose tensors do not fit gets one ModelFileError naming the key and both shapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from srgan_cli.errors import ModelFileError

if TYPE_CHECKING:
    import keras


class Reader:
    """Fetches tensors in PyTorch layout with the shapes a spec demands, remembering which.

    ``finish`` refuses a file holding tensors the architecture never read: such a file is a
    variant (ESRGAN+, batch norm, ...) whose forward pass we would silently get wrong.
    """

    def __init__(self, state: Mapping[str, np.ndarray], arch: str) -> None:
        self.state = state
        self.arch = arch
        self.used: set[str] = set()

    def take(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        """``state[key]`` as float32, or ModelFileError if it is missing or shaped differently."""
        if key not in self.state:
            raise ModelFileError(f"model file lacks {key} (expected shape {tuple(shape)})")
        value = np.asarray(self.state[key])
        if value.shape != tuple(shape):
            raise ModelFileError(
                f"model file key {key} has shape {tuple(value.shape)}, expected {tuple(shape)}"
            )
        self.used.add(key)
        return value.astype(np.float32, copy=False)

    def conv(self, prefix: str, out_ch: int, in_ch: int, k: int = 3) -> list[np.ndarray]:
        """Conv2d ``prefix.weight`` (OIHW) + ``prefix.bias`` as Keras [HWIO kernel, bias]."""
        kernel = self.take(f"{prefix}.weight", (out_ch, in_ch, k, k))
        bias = self.take(f"{prefix}.bias", (out_ch,))
        return [np.ascontiguousarray(kernel.transpose(2, 3, 1, 0)), bias]

    def finish(self) -> None:
        extra = [k for k in self.state if k not in self.used]
        if extra:
            shown = ", ".join(extra[:4]) + (f" (+{len(extra) - 4} more)" if len(extra) > 4 else "")
            raise ModelFileError(f"model file has tensors {self.arch} does not use: {shown}")


def shuffle_order(channels: int, factor: int) -> np.ndarray:
    """PyTorch channel index for each depth_to_space (or space_to_depth) channel.

    pixel_shuffle reads channel ``c * r * r + i * r + j`` for sub-pixel (i, j) of output
    channel c; depth_to_space reads ``(i * r + j) * C + c``. Indexing the conv's output (or,
    for pixel_unshuffle, the next conv's input) channels with this order makes them agree.
    """
    r2 = factor * factor
    tf_index = np.arange(channels * r2)
    sub, c = np.divmod(tf_index, channels)
    return c * r2 + sub


def shuffled_conv(weights: list[np.ndarray], factor: int) -> list[np.ndarray]:
    """A conv that feeds pixel_shuffle(factor), re-ordered to feed depth_to_space(factor)."""
    kernel, bias = weights
    order = shuffle_order(kernel.shape[-1] // (factor * factor), factor)
    return [np.ascontiguousarray(kernel[..., order]), bias[order]]


def unshuffled_conv(weights: list[np.ndarray], factor: int) -> list[np.ndarray]:
    """A conv fed by pixel_unshuffle(factor), re-ordered to be fed by space_to_depth(factor)."""
    kernel, bias = weights
    order = shuffle_order(kernel.shape[2] // (factor * factor), factor)
    return [np.ascontiguousarray(kernel[:, :, order, :]), bias]


def indices(state: Iterable[str], pattern: str) -> list[int]:
    """Sorted distinct integers captured by ``pattern`` (one group) over the keys."""
    regex = re.compile(pattern)
    found = {int(m.group(1)) for key in state if (m := regex.fullmatch(key))}
    return sorted(found)


def count_from_zero(state: Iterable[str], pattern: str, what: str) -> int:
    """How many consecutive indices 0..n-1 the keys hold; a gap means a damaged file."""
    found = indices(state, pattern)
    if found != list(range(len(found))):
        raise ModelFileError(f"model file {what} are not numbered 0..{len(found) - 1}: {found}")
    return len(found)


def check_in(channels: int, key: str) -> int:
    """``channels`` if a network may read that many image channels (gray or RGB)."""
    if channels not in (1, 3):
        raise ModelFileError(
            f"model file key {key} takes {channels} channels; need 1 or 3 (gray or RGB)"
        )
    return channels


def check_out(channels: int, key: str) -> int:
    """``channels`` if a network may give that many image channels (gray or RGB)."""
    if channels not in (1, 3):
        raise ModelFileError(
            f"model file key {key} gives {channels} output channels; need 1 (gray) or 3 (RGB)"
        )
    return channels


def channel_params(in_nc: int, out_nc: int, skip: str | None = None) -> dict[str, int]:
    """A spec's image-channel params: none for RGB to RGB (as every card before gray models
    had), else ``in_nc`` and ``out_nc``. ``skip``: the architecture's name if it adds its
    upsampled input to its output, which needs as many channels out as in."""
    if skip is not None and in_nc != out_nc:
        raise ModelFileError(
            f"{skip} with {in_nc} input and {out_nc} output channels: its input skip needs "
            "them equal"
        )
    return {} if in_nc == out_nc == 3 else {"in_nc": in_nc, "out_nc": out_nc}


def _shape(state: Mapping[str, np.ndarray], key: str) -> tuple[int, ...]:
    if key not in state:
        raise ModelFileError(f"model file lacks {key}")
    return tuple(np.shape(state[key]))


def first_dim(state: Mapping[str, np.ndarray], key: str) -> int:
    """Leading dimension of ``state[key]`` (a conv's output channels), for shape inference."""
    shape = _shape(state, key)
    if not shape:
        raise ModelFileError(f"model file key {key} is a scalar, expected a tensor")
    return int(shape[0])


def conv_in(state: Mapping[str, np.ndarray], key: str) -> int:
    """Input channels of the 4-D conv weight ``state[key]``."""
    shape = _shape(state, key)
    if len(shape) != 4:
        raise ModelFileError(f"model file key {key} has shape {shape}, expected a 4-D conv")
    return int(shape[1])


def total_size(state: Mapping[str, np.ndarray]) -> int:
    return int(sum(np.asarray(v).size for v in state.values()))


WeightsFn = Callable[[Any, Mapping[str, np.ndarray]], dict[str, list[np.ndarray]]]


def loader(weights: WeightsFn) -> Callable[[keras.Model, Any, Mapping[str, np.ndarray]], None]:
    """An ``Arch.load`` that sets each Keras layer named by ``weights(spec, state)``."""

    def load(model: keras.Model, spec: Any, state: Mapping[str, np.ndarray]) -> None:
        for name, values in weights(spec, state).items():
            model.get_layer(name).set_weights(values)

    return load
