"""Tiling: the plan covers the image once, and the stitched result equals the whole-image one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srgan_cli.tiling import (
    DEFAULT_TILE_PAD,
    MIN_AUTO_TILE,
    Tile,
    auto_tile_size,
    plan_tiles,
    upscale_tiled,
)


def box_then_nearest(radius: int, scale: int = 4):
    """Fake local model: (2r+1)^2 box mean with zero padding, then nearest x``scale``.

    It sums shifted copies in a fixed order, so every output pixel's float arithmetic depends
    only on its own window: tiled and whole results are bit-identical when pad >= radius.
    """

    def infer(batch: np.ndarray) -> np.ndarray:
        _, h, w, _ = batch.shape
        padded = np.pad(batch[0], ((radius, radius), (radius, radius), (0, 0)))
        acc = np.zeros_like(batch[0])
        for dy in range(2 * radius + 1):
            for dx in range(2 * radius + 1):
                acc += padded[dy : dy + h, dx : dx + w]
        mean = acc / np.float32((2 * radius + 1) ** 2)
        return mean.repeat(scale, axis=0).repeat(scale, axis=1)[None]

    return infer


def coverage(height: int, width: int, tiles: list[Tile]) -> np.ndarray:
    counts = np.zeros((height, width), dtype=int)
    for t in tiles:
        counts[t.y0 : t.y1, t.x0 : t.x1] += 1
    return counts


@settings(max_examples=200, deadline=None)
@given(
    height=st.integers(1, 150),
    width=st.integers(1, 150),
    tile=st.integers(-1, 64),
    pad=st.integers(0, 40),
)
def test_plan_covers_every_pixel_once_with_clamped_pads(height, width, tile, pad):
    tiles = plan_tiles(height, width, tile, pad)
    assert (coverage(height, width, tiles) == 1).all()
    for t in tiles:
        assert t.py0 == max(t.y0 - pad, 0) and t.py1 == min(t.y1 + pad, height)
        assert t.px0 == max(t.x0 - pad, 0) and t.px1 == min(t.x1 + pad, width)
        if tile > 0:
            assert t.y1 - t.y0 <= tile and t.x1 - t.x0 <= tile


def test_plan_single_tile_when_tile_disabled_or_large():
    whole = [Tile(0, 30, 0, 40, 0, 30, 0, 40)]
    assert plan_tiles(30, 40, 0, 8) == whole
    assert plan_tiles(30, 40, 40, 8) == whole
    assert len(plan_tiles(30, 40, 30, 8)) == 2


def test_plan_rejects_bad_arguments():
    with pytest.raises(ValueError):
        plan_tiles(0, 5, 4, 0)
    with pytest.raises(ValueError):
        plan_tiles(5, 5, 4, -1)


@st.composite
def tiling_cases(draw):
    """Image size, tile and pad, with at most ~12 tiles per side to keep the test quick."""
    tile = draw(st.integers(1, 64))
    limit = min(150, 12 * tile)
    height, width = draw(st.integers(1, limit)), draw(st.integers(1, limit))
    radius = draw(st.integers(0, 2))
    pad = draw(st.integers(radius, radius + 3))
    return height, width, tile, radius, pad


@settings(max_examples=60, deadline=None)
@given(case=tiling_cases(), seed=st.integers(0, 2**16))
def test_tiled_equals_whole_for_local_model(case, seed):
    height, width, tile, radius, pad = case
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    infer = box_then_nearest(radius)
    whole = upscale_tiled(image, infer, tile=0)
    tiled = upscale_tiled(image, infer, tile=tile, pad=pad)
    np.testing.assert_array_equal(tiled, whole)


def test_too_small_pad_is_detected():
    """The property test can fail: without enough context the seams differ."""
    image = np.random.default_rng(1).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    infer = box_then_nearest(2)
    whole = upscale_tiled(image, infer, tile=0)
    assert not np.array_equal(upscale_tiled(image, infer, tile=7, pad=1), whole)


def test_uint16_in_uint16_out_with_full_range():
    image = np.random.default_rng(2).integers(0, 65536, (9, 13, 3), dtype=np.uint16)
    image[0, 0] = 65535
    out = upscale_tiled(image, box_then_nearest(0), tile=4, pad=0)
    assert out.dtype == np.uint16 and out.shape == (36, 52, 3)
    np.testing.assert_array_equal(out[::4, ::4], image)


def test_output_clipped_and_rounded():
    image = np.full((3, 5, 3), 128, dtype=np.uint8)
    values = iter([-0.5, 1.5])

    def infer(batch: np.ndarray) -> np.ndarray:
        _, h, w, c = batch.shape
        return np.full((1, 4 * h, 4 * w, c), next(values), dtype=np.float32)

    out = upscale_tiled(image, infer, tile=3, pad=0)
    assert out.dtype == np.uint8 and out.shape == (12, 20, 3)
    assert (out[:, :12] == 0).all() and (out[:, 12:] == 255).all()


def test_one_by_one_image_and_progress_callback():
    image = np.array([[[10, 20, 30]]], dtype=np.uint8)
    calls = []
    out = upscale_tiled(image, box_then_nearest(1), tile=1, on_tile=lambda: calls.append(1))
    assert out.shape == (4, 4, 3) and calls == [1]
    # Zero padding of the 3x3 box leaves 1/9 of the value.
    np.testing.assert_array_equal(out[0, 0], np.rint(np.array([10, 20, 30]) / 9))


def test_progress_called_once_per_tile():
    image = np.zeros((10, 7, 3), dtype=np.uint8)
    calls = []
    upscale_tiled(image, box_then_nearest(0), tile=4, pad=2, on_tile=lambda: calls.append(1))
    assert len(calls) == len(plan_tiles(10, 7, 4, 2)) == 6


def test_rejects_wrong_infer_shape_and_dtype():
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="infer returned shape"):
        upscale_tiled(image, lambda b: b, tile=0)
    with pytest.raises(ValueError, match="uint8 or uint16"):
        upscale_tiled(image.astype(np.float32), box_then_nearest(0), tile=0)


def test_auto_tile_size():
    assert auto_tile_size(64, 64, budget_bytes=10**12) == 0
    side = auto_tile_size(4000, 3000, budget_bytes=2 * 1024**3)
    assert MIN_AUTO_TILE <= side < 3000
    bigger = auto_tile_size(4000, 3000, budget_bytes=8 * 1024**3)
    assert bigger > side
    assert auto_tile_size(4000, 3000, budget_bytes=1) == MIN_AUTO_TILE


def _generator_max_diff(model, sizes: list[tuple[int, int]]) -> int:
    """Largest |tiled - whole| (grey levels, uint8) over random images of ``sizes``."""
    rng = np.random.default_rng(0)

    def infer(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model(batch, training=False))

    worst = 0
    for height, width in sizes:
        # Smooth random content (upsampled noise) looks more like a photo than white noise.
        small = rng.integers(0, 256, (height // 4 + 2, width // 4 + 2, 3), dtype=np.uint8)
        image = np.ascontiguousarray(small.repeat(4, 0).repeat(4, 1)[:height, :width])
        whole = upscale_tiled(image, infer, tile=0)
        tiled = upscale_tiled(image, infer, tile=32)
        worst = max(worst, int(np.abs(tiled.astype(int) - whole.astype(int)).max()))
    return worst


# Sides above tile + pad, so some tiles really lack context; none a multiple of 32.
SLOW_SIZES = [(41, 75), (70, 45), (37, 67)]


@pytest.mark.slow
def test_real_generator_tiled_matches_whole_random_weights():
    keras = pytest.importorskip("keras")
    from srgan_cli.model import build_generator

    assert DEFAULT_TILE_PAD + 32 < 75  # the sizes must exercise missing context
    keras.utils.set_random_seed(0)
    # Random init is not representative of trained weights (see the shipped-weights test).
    model = build_generator(blocks=16, channels=64)
    assert _generator_max_diff(model, SLOW_SIZES) <= 1


@pytest.mark.slow
def test_real_generator_tiled_matches_whole_shipped_weights():
    weights = pytest.importorskip("srgan_cli.weights")
    from srgan_cli.errors import SrganError

    try:
        model, _ = weights.load_generator(weights.resolve())
    except SrganError as err:
        pytest.skip(f"no shipped generator weights: {err}")
    assert _generator_max_diff(model, SLOW_SIZES) <= 1
