"""Output formats: srgan_cli.formats, and ``srgan upscale`` writing PNG, JPEG, WebP and TIFF.

Outputs are read back with Pillow and checked for format, mode, size and ICC profile.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from conftest import make_image
from PIL import Image, ImageCms

from srgan_cli.errors import UsageError
from srgan_cli.formats import EXTENSIONS, FORMATS, OutputFormat, format_for_path

SIZE = (12, 10)
BIG = (48, 40)


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def save(array: np.ndarray, path: Path, **options) -> Path:
    Image.fromarray(array).save(path, **options)
    return path


def read_back(source: Path | bytes) -> tuple[str, str, tuple[int, int], bytes | None]:
    """(format, mode, size, ICC profile) of an image file or bytes, as Pillow sees it."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
        img.load()
        return img.format, img.mode, img.size, img.info.get("icc_profile")


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# -- formats.py ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.png", "png"),
        ("a.JPG", "jpeg"),
        ("dir.v2/a.jpeg", "jpeg"),
        ("a.webp", "webp"),
        ("a.tif", "tiff"),
        ("a.TIFF", "tiff"),
        ("noext", "png"),
    ],
)
def test_format_for_path(name, expected):
    assert format_for_path(name) == expected


@pytest.mark.parametrize("name", ["a.gif", "a.bmp", "photo.v2", "a.png.bak"])
def test_unknown_extension_names_the_supported_ones(name):
    with pytest.raises(UsageError) as caught:
        format_for_path(name)
    message = str(caught.value)
    assert name in message and all(ext in message for ext in EXTENSIONS)


def test_every_format_has_an_extension_that_maps_back():
    for name in FORMATS:
        assert format_for_path(f"x{OutputFormat(name).extension}") == name


@pytest.mark.parametrize(
    "kwargs", [{"name": "gif"}, {"quality": 0}, {"quality": 101}, {"compress_level": 10}]
)
def test_bad_output_format_values_are_usage_errors(kwargs):
    with pytest.raises(UsageError):
        OutputFormat(**kwargs)


def test_refusals():
    assert "png or webp" in OutputFormat("jpeg").refusal("RGBA", (4, 4))
    assert "png or webp" in OutputFormat("jpeg").refusal("LA", (4, 4))
    assert OutputFormat("jpeg").refusal("RGB", (65_535, 4)) is None
    assert "limit" in OutputFormat("webp").refusal("RGB", (16_384, 4))
    assert OutputFormat("png").refusal("RGBA", (20_000, 4)) is None
    assert OutputFormat("tiff").refusal("LA", (20_000, 4)) is None


# -- srgan upscale -o <ext> ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "pillow_format"),
    [
        (".png", "PNG"),
        (".jpg", "JPEG"),
        (".jpeg", "JPEG"),
        (".webp", "WEBP"),
        (".tif", "TIFF"),
        (".tiff", "TIFF"),
    ],
)
def test_extension_picks_the_format_and_keeps_icc(run, tmp_path, ext, pillow_format):
    icc = srgb_profile()
    rgb = np.random.default_rng(1).integers(0, 256, (*SIZE[::-1], 3), dtype=np.uint8)
    source = save(rgb, tmp_path / "in.png", icc_profile=icc)
    out = tmp_path / f"out{ext}"
    result = run(source, "-o", out, "-q")
    assert result.exit_code == 0, result.output
    assert read_back(out) == (pillow_format, "RGB", BIG, icc)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("fmt", "mode"), [("png", "RGBA"), ("webp", "RGBA"), ("tiff", "RGBA"), ("tiff", "LA")]
)
def test_alpha_is_kept_by_formats_that_carry_it(run, tmp_path, fmt, mode):
    rng = np.random.default_rng(2)
    array = rng.integers(0, 256, (*SIZE[::-1], len(mode)), dtype=np.uint8)
    array[..., -1] = 255
    array[:, : SIZE[0] // 2, -1] = 0
    source = save(array, tmp_path / "in.png")
    result = run(source, "--format", fmt, "-q")
    assert result.exit_code == 0, result.output
    out = tmp_path / f"in_x4{OutputFormat(fmt).extension}"
    _, got_mode, size, _ = read_back(out)
    assert (got_mode, size) == (mode if fmt != "webp" else "RGBA", BIG)
    with Image.open(out) as img:
        alpha = np.asarray(img.getchannel("A"))
    assert alpha[:, :8].max() == 0 and alpha[:, -8:].min() == 255  # the mask survived


@pytest.mark.parametrize(
    ("ext", "mode"), [(".png", "I;16"), (".tif", "I;16"), (".jpg", "L"), (".webp", "RGB")]
)
def test_sixteen_bit_gray_keeps_16_bits_only_in_png_and_tiff(run, tmp_path, ext, mode):
    gray = np.random.default_rng(3).integers(0, 65536, SIZE[::-1], dtype=np.uint16)
    source = save(gray, tmp_path / "in.png")
    out = tmp_path / f"out{ext}"
    result = run(source, "-o", out, "-q")
    assert result.exit_code == 0, result.output
    assert read_back(out)[1:3] == (mode, BIG)
    if mode == "I;16":
        with Image.open(out) as img:
            assert np.asarray(img).max() > 255  # real 16-bit values, not 8 bits widened


def test_alpha_as_jpeg_fails_that_file_only(run, tmp_path):
    src = tmp_path / "in"
    make_image(src / "a_rgba.png", "RGBA", SIZE, seed=4)
    make_image(src / "b_rgb.png", "RGB", SIZE, seed=5)
    out = tmp_path / "out"
    result = run(src, "-o", out, "--format", "jpeg")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1
    assert "a_rgba.png" in errors[0] and "alpha" in errors[0] and "png or webp" in errors[0]
    assert sorted(p.name for p in out.iterdir()) == ["b_rgb.jpg"]
    assert read_back(out / "b_rgb.jpg")[:3] == ("JPEG", "RGB", BIG)


@pytest.mark.parametrize("name", ["out.gif", "out.bmp", "out.v2"])
def test_unknown_output_extension_is_a_usage_error(run, rgb_png, tmp_path, name):
    result = run(rgb_png, "-o", tmp_path / name)
    assert result.exit_code == 2
    assert "unknown image extension" in result.stderr and ".webp" in result.stderr
    assert not (tmp_path / name).exists()


def test_format_that_contradicts_the_extension_is_a_usage_error(run, rgb_png, tmp_path):
    result = run(rgb_png, "-o", tmp_path / "out.png", "--format", "jpeg")
    assert result.exit_code == 2
    assert "--format jpeg" in result.stderr
    assert run(rgb_png, "-o", tmp_path / "ok.jpg", "--format", "JPEG", "-q").exit_code == 0


def test_format_names_directory_and_beside_outputs(run, tmp_path):
    src = tmp_path / "in"
    make_image(src / "a.png", seed=6)
    make_image(src / "b.jpg", seed=7)
    assert run(src, "-o", tmp_path / "out", "--format", "tiff", "-q").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.tif", "b.tif"]
    assert run(src / "a.png", "--format", "webp", "-q").exit_code == 0
    assert read_back(src / "a_x4.webp")[:3] == ("WEBP", "RGB", BIG)


def test_format_on_stdout(run, rgb_png):
    result = run(rgb_png, "-o", "-", "--format", "webp", "-q")
    assert result.exit_code == 0
    assert read_back(result.stdout_bytes)[:3] == ("WEBP", "RGB", BIG)


def test_quality_reaches_the_encoder(run, rgb_png, tmp_path):
    low, high = tmp_path / "low.jpg", tmp_path / "high.jpg"
    assert run(rgb_png, "-o", low, "--quality", "10", "-q").exit_code == 0
    assert run(rgb_png, "-o", high, "-q").exit_code == 0  # default 95
    assert low.stat().st_size < high.stat().st_size
    assert run(rgb_png, "-o", tmp_path / "x.jpg", "--quality", "0").exit_code == 2
