"""--outscale: srgan_cli.resize, and the sizes ``srgan upscale`` and the library produce."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_image
from PIL import Image

from srgan_cli.cli import main
from srgan_cli.errors import UsageError
from srgan_cli.pipeline import Upscaler
from srgan_cli.resize import check_outscale, output_size, resize_alpha, resize_pixels


@pytest.mark.parametrize(
    ("outscale", "expected"),
    [
        (4, (48, 40)),
        (2, (24, 20)),
        (3, (36, 30)),
        (2.5, (30, 25)),
        (1.25, (15, 13)),
        (0.01, (1, 1)),
    ],
)
def test_output_size_is_rounded_half_up(outscale, expected):
    assert output_size(12, 10, outscale) == expected


@pytest.mark.parametrize("bad", [0, -1, 4.01, math.nan, math.inf])
def test_outscale_out_of_range_is_a_usage_error(bad):
    with pytest.raises(UsageError, match="outscale"):
        check_outscale(bad)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_resize_pixels_keeps_dtype_and_flat_colour(dtype):
    peak = np.iinfo(dtype).max
    flat = np.full((10, 12, 3), peak // 3, dtype=dtype)
    out = resize_pixels(flat, (7, 5))
    assert out.shape == (5, 7, 3) and out.dtype == dtype
    assert np.array_equal(out, np.full_like(out, peak // 3))
    assert resize_pixels(flat, (12, 10)) is flat  # outscale 4: no resampling at all


def test_resize_pixels_uses_all_16_bits():
    ramp = np.repeat(np.linspace(0, 65535, 12, dtype=np.uint16)[None, :, None], 3, axis=2)
    out = resize_pixels(np.repeat(ramp, 4, axis=0), (6, 2))
    assert len(np.unique(out)) > 4 and out.max() > 255 and out.dtype == np.uint16


def test_resize_alpha_keeps_opaque_opaque():
    alpha = np.full((10, 12), 255, np.uint8)
    assert np.array_equal(resize_alpha(alpha, (30, 25)), np.full((25, 30), 255, np.uint8))


# -- srgan upscale --outscale, serve is in test_server.py ------------------------------------


@pytest.mark.parametrize(("outscale", "size"), [("2", (24, 20)), ("3", (36, 30))])
def test_cli_outscale_sizes_and_report(tiny_weights, tmp_path, outscale, size):
    rgba = make_image(tmp_path / "in" / "a.png", "RGBA", (12, 10), seed=1)
    make_image(tmp_path / "in" / "b.png", "L", (12, 10), seed=2)
    report = tmp_path / "report.json"
    argv = ["upscale", str(rgba.parent), "-o", str(tmp_path / "out"), "--outscale", outscale]
    argv += ["--report", str(report), "--weights", str(tiny_weights), "-q"]
    result = CliRunner().invoke(main, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for name, mode in (("a.png", "RGBA"), ("b.png", "L")):
        with Image.open(tmp_path / "out" / name) as img:
            assert (img.mode, img.size) == (mode, size)
    rows = json.loads(report.read_text())["images"]
    assert [row["out_size"] for row in rows] == [list(size)] * 2
    assert [row["in_size"] for row in rows] == [[12, 10]] * 2


@pytest.mark.parametrize("bad", ["0", "4.5", "-2", "x"])
def test_cli_bad_outscale_is_exit_2(tiny_weights, rgb_png, bad):
    argv = ["upscale", str(rgb_png), "--outscale", bad, "--weights", str(tiny_weights)]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2 and "--outscale" in result.stderr
    assert not rgb_png.with_name("rgb_x4.png").exists()


# -- the library -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upscaler(tiny_weights) -> Upscaler:
    return Upscaler(weights=tiny_weights, precision="fp32")


def test_library_outscale_is_the_4x_result_resized(upscaler):
    pixels = np.random.default_rng(3).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    four = upscaler.upscale(pixels)
    three = upscaler.upscale(pixels, outscale=3)
    assert three.shape == (30, 36, 3)
    assert np.array_equal(three, resize_pixels(four, (36, 30)))
    with pytest.raises(UsageError):
        upscaler.upscale(pixels, outscale=5)
