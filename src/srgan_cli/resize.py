"""Output scales other than the model's own (``--outscale``), and alpha's resize.

A model knows one scale (ours 4x; imported ones x1, x2, x4...). For 2x or 3x output from
4x (Real-ESRGAN's ``--outscale``) we run the model and then resize its output with Lanczos
to ``outscale`` times the input size: the model
invents the detail, Lanczos only removes what the smaller size cannot show, so 2x keeps more
texture than a bicubic 2x of the input. Alpha never goes through the model (see
``resize_alpha``). Arrays in, arrays out; Pillow is the only dependency.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from srgan_cli import SCALE
from srgan_cli.errors import UsageError

MAX_OUTSCALE: float = float(SCALE)
"""Largest output scale of our own (x4) models: more than the model's scale only interpolates."""


def check_outscale(value: float, limit: float = MAX_OUTSCALE) -> float:
    """``value`` as a float when 0 < value <= ``limit`` (the model's scale); UsageError
    (exit 2 / HTTP 400) otherwise."""
    scale = float(value)
    if not (0.0 < scale <= limit):  # also refuses NaN
        raise UsageError(
            f"outscale must be > 0 and <= {limit:g} (the model's scale), got {value!r}"
        )
    return scale


def output_size(width: int, height: int, outscale: float = MAX_OUTSCALE) -> tuple[int, int]:
    """(width, height) of the output: ``outscale`` times the input, rounded half up, >= 1."""
    scale = float(outscale)
    if not (scale > 0.0 and math.isfinite(scale)):
        raise UsageError(f"outscale must be > 0, got {outscale!r}")
    return _scaled(width, scale), _scaled(height, scale)


def _scaled(length: int, scale: float) -> int:
    return max(1, math.floor(length * scale + 0.5))


def resize_pixels(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """HxWx3 uint8/uint16 RGB -> ``size`` (width, height), Lanczos, same dtype.

    uint8 goes through Pillow's RGB resize. Pillow has no 16-bit RGB mode, so uint16 is
    resized a channel at a time as float32 ("F") and rounded back, keeping all 16 bits.
    Returns ``pixels`` itself when the size is already right (outscale 4).
    """
    if (pixels.shape[1], pixels.shape[0]) == tuple(size):
        return pixels
    if pixels.dtype == np.uint8:
        image = Image.fromarray(np.ascontiguousarray(pixels))
        return np.asarray(image.resize(size, Image.Resampling.LANCZOS))
    channels = [_resize_plane(pixels[..., c], size, Image.Resampling.LANCZOS) for c in range(3)]
    return np.dstack(channels)


def resize_alpha(alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """HxW alpha (uint8/uint16) -> ``size`` (width, height), Pillow BICUBIC, same dtype.

    Why not the model: the generator is trained to invent photographic texture, which on a
    mask becomes speckle and halos. Bicubic keeps flat regions exactly flat (fully opaque
    stays opaque) and edges smooth. Going straight to the final size, rather than 4x and
    then down, gives the mask the same geometry as the colour with one resampling.
    """
    return _resize_plane(alpha, size, Image.Resampling.BICUBIC)


def _resize_plane(plane: np.ndarray, size: tuple[int, int], method: Image.Resampling) -> np.ndarray:
    """One HxW uint8/uint16 plane resized in float32, clipped and rounded to its dtype."""
    peak = float(np.iinfo(plane.dtype).max)
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))  # mode "F"
    resized = np.asarray(image.resize(size, method))
    return np.rint(np.clip(resized, 0.0, peak)).astype(plane.dtype)
