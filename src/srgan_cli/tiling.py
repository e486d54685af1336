"""Seamless tiling: upscale an image tile by tile so memory is bounded by the tile size.

Each tile is run with ``pad`` extra input pixels of context on every side (clamped at the
image edge) and only its core is kept, so a convolutional network whose receptive field fits
in the pad produces the same pixels as on the whole image. numpy only: the model is passed in
as an ``infer`` callable, which keeps this module testable without Keras.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from srgan_cli import SCALE

# Input (LR) pixels of context on each side of a tile. The generator's receptive field radius
# is ~40 LR px (9x9 head, 34 3x3 convs at LR scale, one at 2x, 9x9 tail at 4x), but distant
# pixels matter little. Measured on the 16-block, 64-channel generator (random init, a Set5
# crop cut on one side): worst output difference 2.2 grey levels with 16 px of context, 0.1
# with 20, float round-off (0.008) from 24 on. 32 leaves a margin for trained weights, which
# use more of the receptive field; tests/test_tiling.py checks it with the real model.
DEFAULT_TILE_PAD = 32

# Peak working set of a network per LR pixel of a tile, in bytes, measured per architecture
# at a reference width (``num_feat``/``channels``) and x4; it grows about linearly with the
# width, and a smaller scale needs less (the measured x4 value is then a safe bound).
# SRResNet (16 blocks/64 ch, ours) and SeedSRGAN (16/64) run split too, cut at long_skip
# after ``model.for_inference`` (``model.fast_tail_split``). benchmarks/split_memory.py (as
# below, random weights, 4 strips), KB per input px, bf16/fp32:
#   SRResNet   whole 128: 17.1/17.0, 192: 17.9/18.1; trunk 1.0/1.6 at any size;
#              split 128: 10.3/10.7 (2 strips), 192: 6.9/7.0 (3), 256: 5.5/5.9, 320: 5.2/5.2
#   SeedSRGAN  whole 128: 16.9/16.9, 192: 17.3/17.0; split 128: 9.9/9.8, 192: 6.8/6.8,
#              256: 5.5
# Budget: 1.4x the largest split figure from 192 px up (7.0 and 6.8 KB): the padded tiles
# this gives are >= 288 rows (768 MiB at 9.7 KB), 4 strips; a tile with fewer rows (an image
# under 256 rows) holds less than it is budgeted for (its width is the planned square's).
# Whole, SRResNet had 72 x 64 x 4 B (18.4 KB; 18.2 measured at 200x200 and 400x400: the x2
# stages hold 4x-area, 4x-channel tensors and oneDNN keeps reordered copies): 121 tiles of
# 182 px on a 2000x2000 input; split, 64 tiles of 275 px (BENCHMARKS.md).
# Imported archs (peak RSS growth of one whole-image predict_on_batch after a warm-up, random
# weights, fp32, x4, 2 cores): SRVGGNetCompact 32 convs/64 feat 1.45 KB (96x96) and 1.26 KB
# (160x160); SeedSRGAN whole 16.7 and 16.8 KB. MSRResNet (its bilinear skip failed
# in predict_on_batch before ``layers.BilinearUpsample``) gets SRResNet's value, pending a
# measurement.
# RRDBNet (23 blocks/64 feat/32 growth) runs split (``split.SplitNetwork``: the trunk on the
# whole tile, the 2x/4x upsampler in 4 row strips); benchmarks/split_memory.py, one call after
# a 16x16 warm-up, 128x128 and 192x192: split bf16 3.4 and 3.0 KB, fp32 3.7 and 4.3 KB; the
# trunk alone bf16 1.8/1.7, fp32 3.1/2.5; the whole network bf16 11.9/11.0, fp32 16.3/15.5.
# Whole, it had 15 KB here (an earlier method gave 8.2 and 10.4 KB fp32 at 64x64 and
# 112x112): 12 KB had given 2.56 GB peak RSS on a 2000x2000 input (81 tiles of 241 px, bf16,
# benchmarks/arch_memory.py), over issue 27's 2.5 GB, 15 KB 2.13 GB (100 tiles of 208 px).
# Split, 6 KB (1.4x the largest measured): 2.11 GB, 36 tiles of 367 px, 19% fewer pixels
# through the network (5.4 M vs 6.6 M, tile context included).
PEAK_BYTES_PER_PX: dict[str, tuple[int, int]] = {
    "SRResNet": (9_700, 64),
    "SeedSRGAN": (9_600, 64),
    "RRDBNet": (6_000, 64),
    "SRVGGNetCompact": (1_600, 64),
    "MSRResNet": (72 * 64 * 4, 64),
}
"""arch -> (peak bytes per input pixel, at this width); unknown archs use the largest."""
# Smallest tile auto_tile_size returns: below it the pad context costs more than the core.
MIN_AUTO_TILE = 32

Infer = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Tile:
    """One tile, in input pixels, half-open: the network sees the padded box, we keep the core.

    Core ``[y0, y1) x [x0, x1)``; padded ``[py0, py1) x [px0, px1)``, clamped to the image.
    """

    y0: int
    y1: int
    x0: int
    x1: int
    py0: int
    py1: int
    px0: int
    px1: int


def plan_tiles(height: int, width: int, tile: int, pad: int) -> list[Tile]:
    """Tiles whose cores cover a ``height`` x ``width`` image exactly once, row by row.

    Cores are ``tile`` px square (smaller at the bottom/right edges) and padded by ``pad`` px
    of context, clamped to the image; ``tile <= 0`` or a tile covering both sides gives one.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image must be at least 1x1, got {height}x{width}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    if tile <= 0 or (tile >= height and tile >= width):
        return [Tile(0, height, 0, width, 0, height, 0, width)]
    return [
        Tile(
            y0,
            min(y0 + tile, height),
            x0,
            min(x0 + tile, width),
            max(y0 - pad, 0),
            min(y0 + tile + pad, height),
            max(x0 - pad, 0),
            min(x0 + tile + pad, width),
        )
        for y0 in range(0, height, tile)
        for x0 in range(0, width, tile)
    ]


def peak_bytes_per_px(arch: str, width: int | None = None) -> float:
    """Estimated peak activation bytes per LR pixel of ``arch`` at ``width`` features."""
    per_px, reference = PEAK_BYTES_PER_PX.get(arch, max(PEAK_BYTES_PER_PX.values()))
    return per_px * (width or reference) / reference


def auto_tile_size(
    height: int,
    width: int,
    budget_bytes: int,
    bytes_per_px: float = PEAK_BYTES_PER_PX["SRResNet"][0],
    *,
    pad: int = DEFAULT_TILE_PAD,
) -> int:
    """Largest square tile side (LR px) whose padded activations fit ``budget_bytes``.

    ``bytes_per_px`` is the network's peak activation memory per LR pixel (see
    ``peak_bytes_per_px``). Returns 0 (= no tiling) when the whole image fits. The result is
    never below ``MIN_AUTO_TILE``, so a tiny budget is a soft target rather than an error.
    """
    if height * width * bytes_per_px <= budget_bytes:
        return 0
    side = int(np.sqrt(budget_bytes / bytes_per_px)) - 2 * pad
    if side >= max(height, width):
        return 0
    return max(side, MIN_AUTO_TILE)


def _to_float(patch: np.ndarray, peak: float) -> np.ndarray:
    """uint patch HxWxC -> 1xHxWxC float32 in [0, 1] (the generator's input range)."""
    return (patch.astype(np.float32) / np.float32(peak))[None]


def _quantize(values: np.ndarray, peak: float, dtype: np.dtype) -> np.ndarray:
    """float [0, 1] (clipped) -> the image's integer dtype, rounded to nearest."""
    return np.rint(np.clip(values, 0.0, 1.0) * peak).astype(dtype)


def _check_image(image: np.ndarray) -> float:
    """Validate an HxWxC uint8/uint16 image and return its peak value (255 or 65535)."""
    if image.ndim != 3:
        raise ValueError(f"expected an HxWxC image, got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected uint8 or uint16 pixels, got {image.dtype}")
    return float(np.iinfo(image.dtype).max)


def upscale_tiled(
    image: np.ndarray,
    infer: Infer,
    *,
    tile: int,
    pad: int = DEFAULT_TILE_PAD,
    scale: int = SCALE,
    on_tile: Callable[[], None] | None = None,
) -> np.ndarray:
    """Upscale an HxWx3 uint8/uint16 RGB image ``scale`` times with ``infer``, tile by tile.

    ``infer`` maps 1xhxwx3 float32 in [0, 1] to 1x(scale*h)x(scale*w)x3 float32, nominally
    in [0, 1]. The result has the input's dtype; peak memory is that output buffer plus one
    tile's floats. ``tile <= 0`` runs the whole image at once. ``on_tile`` is called after
    each tile (progress reporting).
    """
    peak = _check_image(image)
    height, width, channels = image.shape
    out = np.empty((height * scale, width * scale, channels), dtype=image.dtype)
    for t in plan_tiles(height, width, tile, pad):
        result = np.asarray(infer(_to_float(image[t.py0 : t.py1, t.px0 : t.px1], peak)))
        expected = (1, (t.py1 - t.py0) * scale, (t.px1 - t.px0) * scale, channels)
        if result.shape != expected:
            raise ValueError(f"infer returned shape {result.shape}, expected {expected}")
        cy, cx = (t.y0 - t.py0) * scale, (t.x0 - t.px0) * scale
        core = result[0, cy : cy + (t.y1 - t.y0) * scale, cx : cx + (t.x1 - t.x0) * scale]
        out[t.y0 * scale : t.y1 * scale, t.x0 * scale : t.x1 * scale] = _quantize(
            core, peak, image.dtype
        )
        if on_tile is not None:
            on_tile()
    return out
