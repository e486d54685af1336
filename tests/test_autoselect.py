"""autoselect: JPEG quality from the quantization tables, lossy WebP, the per-file choice."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from conftest import MIXED_MODELS, make_mixed_folder
from PIL import Image

from srgan_cli.autoselect import (
    JPEG_THRESHOLD,
    STD_CHROMINANCE,
    STD_LUMINANCE,
    choose_model,
    estimate_jpeg_quality,
    is_lossy_webp,
    libjpeg_table,
)


def photo(mode: str = "RGB", size: tuple[int, int] = (16, 16)) -> Image.Image:
    pixels = np.random.default_rng(1).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels).convert(mode)


def encoded(image: Image.Image, file_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=file_format, **options)
    return buffer.getvalue()


def tables_of(data: bytes) -> dict[int, list[int]]:
    with Image.open(io.BytesIO(data)) as image:
        return image.quantization


def test_libjpeg_scaling_at_50_is_the_standard_table_and_clamps_at_both_ends():
    assert libjpeg_table(STD_LUMINANCE, 50) == list(STD_LUMINANCE)
    assert libjpeg_table(STD_CHROMINANCE, 100) == [1] * 64
    assert max(libjpeg_table(STD_LUMINANCE, 1)) == 255


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("quality", [5, 30, 50, 60, 75, 89, 90, 91, 95, 100])
def test_pillow_jpeg_quality_is_recovered_exactly(mode, quality):
    data = encoded(photo(mode), "JPEG", quality=quality)
    assert estimate_jpeg_quality(tables_of(data)) == quality


def test_own_tables_get_the_closest_libjpeg_quality():
    """An encoder with its own tables (here libjpeg's at 70, each entry nudged by one)."""
    nudged = [[value + (index % 2) for index, value in enumerate(libjpeg_table(base, 70))]
              for base in (STD_LUMINANCE, STD_CHROMINANCE)]  # fmt: skip
    data = encoded(photo(), "JPEG", qtables=nudged)
    assert estimate_jpeg_quality(tables_of(data)) == pytest.approx(70, abs=1)
    with pytest.raises(ValueError, match="no quantization tables"):
        estimate_jpeg_quality({})


def test_webp_kinds():
    lossy, lossless = encoded(photo(), "WEBP", quality=80), encoded(photo(), "WEBP", lossless=True)
    assert is_lossy_webp(lossy) is True
    assert is_lossy_webp(lossless) is False
    assert is_lossy_webp(encoded(photo(), "PNG")) is None
    # extended (VP8X) files: alpha, and metadata before the image chunk
    assert is_lossy_webp(encoded(photo("RGBA"), "WEBP", quality=80)) is True
    assert is_lossy_webp(encoded(photo("RGBA"), "WEBP", lossless=True)) is False
    big_icc = encoded(photo(), "WEBP", quality=80, icc_profile=b"x" * 70_000)
    assert is_lossy_webp(big_icc[:1000]) is None  # cut before the image chunk
    assert choose_model(big_icc) == choose_model(io.BytesIO(big_icc)) == "real"


@pytest.mark.parametrize("lossless", [False, True])
def test_animated_webp_frames_are_looked_into(lossless):
    frames = [photo(), photo().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], lossless=lossless)
    assert b"ANMF" in buffer.getvalue()
    assert is_lossy_webp(buffer.getvalue()) is (not lossless)


def test_mixed_folder_gets_each_file_its_model(tmp_path):
    folder = make_mixed_folder(tmp_path)
    for name, model in MIXED_MODELS.items():
        path = folder / name
        assert choose_model(path) == model, name
        assert choose_model(str(path)) == model, name
        assert choose_model(path.read_bytes()) == model, name  # what stdin gives
        with open(path, "rb") as handle:
            assert choose_model(handle) == model, name
            assert handle.tell() == 0  # the stream is left where it was
    with Image.open(folder / "q60.jpg") as image:
        assert choose_model(image) == "real"
    with Image.open(folder / "lossy.webp") as image:
        assert choose_model(image) == "real"  # read from its file
    assert choose_model(photo()) == "srgan"  # a PIL Image with no file


def test_threshold_is_inclusive_and_adjustable(tmp_path: Path):
    data = encoded(photo(), "JPEG", quality=int(JPEG_THRESHOLD))
    assert choose_model(data) == "real"
    assert choose_model(encoded(photo(), "JPEG", quality=int(JPEG_THRESHOLD) + 1)) == "srgan"
    assert choose_model(data, threshold=JPEG_THRESHOLD - 1) == "srgan"


def test_only_the_header_is_read(tmp_path: Path):
    """A JPEG cut right after its tables (no pixel data at all) is still chosen by them."""
    data = encoded(photo(size=(64, 64)), "JPEG", quality=60)
    header = data[: data.index(b"\xff\xda")]  # everything before the first scan
    assert choose_model(header) == "real"


@pytest.mark.parametrize("junk", [None, b"", b"not an image", b"\xff\xd8\xff broken", b"RIFF"])
def test_unreadable_or_headerless_input_is_clean(junk, tmp_path: Path):
    assert choose_model(junk) == "srgan"
    assert choose_model(tmp_path / "absent.jpg") == "srgan"
