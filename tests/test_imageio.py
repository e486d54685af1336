"""Tests for srgan_cli.imageio: modes, alpha, ICC, EXIF, bad files, bombs, atomic writes.

Every image is tiny and synthesised here; nothing touches TensorFlow.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from srgan_cli.errors import ImageError
from srgan_cli.formats import OutputFormat
from srgan_cli.imageio import (
    DEFAULT_COMPRESS_LEVEL,
    DEFAULT_MAX_PIXELS,
    DecodedImage,
    encode_image,
    encode_png,
    from_array,
    from_pil,
    output_array,
    read_image,
    to_array,
    to_pil,
    write_atomic,
)

W, H = 7, 5  # odd, non-square, so a transposition or channel mix-up cannot pass unnoticed


def _gradient(channels: int, dtype: type = np.uint8, scale: int = 9) -> np.ndarray:
    """Distinct values per pixel and channel: HxWxC (or HxW for channels == 1)."""
    y, x = np.mgrid[0:H, 0:W]
    planes = [(x * scale + y * 31 + c * 57) % 256 for c in range(channels)]
    array = np.stack(planes, axis=-1).astype(dtype)
    return array[..., 0] if channels == 1 else array


def _rgb() -> Image.Image:
    return Image.fromarray(_gradient(3))


def _rgba() -> Image.Image:
    return Image.fromarray(_gradient(4))


def _la() -> Image.Image:
    return Image.fromarray(_gradient(2))


def _gray() -> Image.Image:
    return Image.fromarray(_gradient(1))


def _palette() -> Image.Image:
    return _rgb().quantize(colors=16)


def _palette_transparent() -> Image.Image:
    img = _palette()
    img.info["transparency"] = 3
    return img


def _gray16() -> Image.Image:
    return Image.fromarray((_gradient(1, np.uint16) * 257 + 7).astype(np.uint16))


def _cmyk() -> Image.Image:
    return _rgb().convert("CMYK")


def _bilevel() -> Image.Image:
    return _gray().point(lambda v: 255 if v > 128 else 0).convert("1")


def _save(img: Image.Image, path: Path, fmt: str, **options: object) -> Path:
    img.save(path, format=fmt, **options)
    return path


def _expected(img: Image.Image, mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """What read_image should return for ``img`` in output ``mode`` (via Pillow itself)."""
    if mode == "I;16":
        gray = np.asarray(img).astype(np.uint16)
        return np.repeat(gray[..., None], 3, axis=2), None
    if mode in ("L", "LA"):
        la = np.asarray(img.convert("LA"))
        return np.repeat(la[..., :1], 3, axis=2), (la[..., 1] if mode == "LA" else None)
    rgba = np.asarray(img.convert("RGBA"))
    return rgba[..., :3], (rgba[..., 3] if mode == "RGBA" else None)


# (id, image factory, format, save options, expected output mode, lossless?)
ROUND_TRIPS: list[tuple[str, Callable[[], Image.Image], str, dict, str, bool]] = [
    ("rgb-png", _rgb, "PNG", {}, "RGB", True),
    ("rgba-png", _rgba, "PNG", {}, "RGBA", True),
    ("la-png", _la, "PNG", {}, "LA", True),
    ("l-png", _gray, "PNG", {}, "L", True),
    ("p-png", _palette, "PNG", {}, "RGB", True),
    ("p-transparent-png", _palette_transparent, "PNG", {}, "RGBA", True),
    ("l-trns-png", _gray, "PNG", {"transparency": 20}, "LA", True),
    ("rgb-trns-png", _rgb, "PNG", {"transparency": (0, 57, 114)}, "RGBA", True),
    ("i16-png", _gray16, "PNG", {}, "I;16", True),
    ("i16-tiff", _gray16, "TIFF", {}, "I;16", True),
    ("bilevel-png", _bilevel, "PNG", {}, "L", True),
    ("cmyk-tiff", _cmyk, "TIFF", {}, "RGB", True),
    ("cmyk-jpeg", _cmyk, "JPEG", {"quality": 95}, "RGB", False),
    ("rgb-jpeg", _rgb, "JPEG", {"quality": 95}, "RGB", False),
    ("l-jpeg", _gray, "JPEG", {"quality": 95}, "L", False),
    ("rgb-bmp", _rgb, "BMP", {}, "RGB", True),
    ("rgb-tiff", _rgb, "TIFF", {}, "RGB", True),
    ("rgba-tiff", _rgba, "TIFF", {}, "RGBA", True),
    ("rgb-webp", _rgb, "WEBP", {"lossless": True}, "RGB", True),
    ("rgba-webp", _rgba, "WEBP", {"lossless": True, "exact": True}, "RGBA", True),
    ("p-gif", _palette, "GIF", {}, "RGB", True),
]


@pytest.mark.parametrize(
    ("make", "fmt", "options", "mode", "lossless"),
    [case[1:] for case in ROUND_TRIPS],
    ids=[case[0] for case in ROUND_TRIPS],
)
def test_read_then_encode_round_trip(
    tmp_path: Path,
    make: Callable[[], Image.Image],
    fmt: str,
    options: dict,
    mode: str,
    lossless: bool,
) -> None:
    path = _save(make(), tmp_path / f"in.{fmt.lower()}", fmt, **options)
    decoded = read_image(path)

    assert decoded.mode == mode
    assert decoded.size == (W, H)
    assert decoded.pixels.shape == (H, W, 3)
    assert decoded.pixels.dtype == (np.uint16 if mode == "I;16" else np.uint8)
    assert (decoded.alpha is not None) == (mode in ("RGBA", "LA"))
    if lossless:
        pixels, alpha = _expected(Image.open(path), mode)
        np.testing.assert_array_equal(decoded.pixels, pixels)
        if alpha is not None:
            np.testing.assert_array_equal(decoded.alpha, alpha)

    again = read_image(encode_png(decoded.pixels, decoded.alpha, decoded.mode))
    assert again.mode == mode
    np.testing.assert_array_equal(again.pixels, decoded.pixels)
    if decoded.alpha is not None:
        np.testing.assert_array_equal(again.alpha, decoded.alpha)


def test_sixteen_bit_gray_is_written_as_sixteen_bit_png(tmp_path: Path) -> None:
    source = _gray16()
    decoded = read_image(_save(source, tmp_path / "deep.png", "PNG"))
    with Image.open(io.BytesIO(encode_png(decoded.pixels, None, "I;16"))) as out:
        assert out.mode == "I;16"
        np.testing.assert_array_equal(np.asarray(out), np.asarray(source))


def test_cmyk_is_noted(tmp_path: Path) -> None:
    decoded = read_image(_save(_cmyk(), tmp_path / "c.jpg", "JPEG"))
    assert any("CMYK" in note for note in decoded.notes)


def test_gif_keeps_first_frame_and_notes_the_rest(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (W, H), colour) for colour in ("red", "lime", "blue")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    decoded = read_image(path)
    assert decoded.notes == ["GIF: only the first of 3 frames was used"]
    assert np.all(decoded.pixels == np.array([255, 0, 0], np.uint8))


def test_exif_orientation_is_applied_to_jpeg(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = _save(_rgb(), tmp_path / "phone.jpg", "JPEG", exif=exif.tobytes())
    decoded = read_image(path)
    assert decoded.size == (H, W)
    assert "EXIF orientation 6 applied" in decoded.notes


def test_exif_orientation_rotates_pixels_exactly(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(_rgb(), tmp_path / "rotated.png", "PNG", exif=exif.tobytes())
    decoded = read_image(path)
    np.testing.assert_array_equal(decoded.pixels, np.rot90(_gradient(3), k=-1))


def _srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_icc_profile_is_kept_through_read_and_encode(tmp_path: Path) -> None:
    icc = _srgb_profile()
    decoded = read_image(_save(_rgb(), tmp_path / "icc.png", "PNG", icc_profile=icc))
    assert decoded.icc_profile == icc
    png = encode_png(decoded.pixels, decoded.alpha, decoded.mode, decoded.icc_profile)
    with Image.open(io.BytesIO(png)) as out:
        assert out.info.get("icc_profile") == icc


def test_icc_profile_of_the_wrong_colour_space_is_dropped(tmp_path: Path) -> None:
    path = _save(_gray(), tmp_path / "gray.png", "PNG", icc_profile=_srgb_profile())
    decoded = read_image(path)
    assert decoded.icc_profile is None
    assert any("ICC profile dropped" in note for note in decoded.notes)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "I;16"])
def test_one_pixel_image(mode: str) -> None:
    dtype = np.uint16 if mode == "I;16" else np.uint8
    pixels = np.full((1, 1, 3), 200, dtype)
    alpha = np.full((1, 1), 9, dtype) if mode in ("RGBA", "LA") else None
    decoded = read_image(encode_png(pixels, alpha, mode), name="one.png")
    assert decoded.size == (1, 1)
    assert decoded.mode == mode
    np.testing.assert_array_equal(decoded.pixels, pixels)


def test_decoded_image_size_is_width_height() -> None:
    image = DecodedImage(np.zeros((2, 5, 3), np.uint8), None, "RGB", None, [])
    assert image.size == (5, 2)


# --- encode_png -------------------------------------------------------------------------


def test_luma_is_bt601_rounded() -> None:
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 10, 10]]], np.uint8)
    with Image.open(io.BytesIO(encode_png(pixels, None, "L"))) as out:
        assert np.asarray(out).tolist() == [[76, 150, 29, 10]]


def test_eight_bit_pixels_are_widened_exactly_for_sixteen_bit_output() -> None:
    pixels = np.array([[[0, 0, 0], [255, 255, 255], [1, 1, 1]]], np.uint8)
    with Image.open(io.BytesIO(encode_png(pixels, None, "I;16"))) as out:
        assert np.asarray(out).tolist() == [[0, 65535, 257]]


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "I;16"])
def test_encode_png_is_deterministic(mode: str) -> None:
    pixels = _gradient(3)
    alpha = _gradient(1) if mode in ("RGBA", "LA") else None
    first = encode_png(pixels, alpha, mode, _srgb_profile() if mode == "RGB" else None)
    second = encode_png(pixels.copy(), alpha, mode, _srgb_profile() if mode == "RGB" else None)
    assert first == second


def test_compress_level_is_a_valid_zlib_level() -> None:
    assert 0 <= DEFAULT_COMPRESS_LEVEL <= 9


@pytest.mark.parametrize(
    ("pixels", "alpha", "mode"),
    [
        (np.zeros((2, 2, 3), np.uint8), None, "CMYK"),
        (np.zeros((2, 2), np.uint8), None, "RGB"),
        (np.zeros((2, 2, 3), np.uint8), None, "RGBA"),
        (np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.uint8), "RGB"),
        (np.zeros((2, 2, 3), np.uint8), np.zeros((3, 2), np.uint8), "LA"),
        (np.zeros((2, 2, 3), np.float32), None, "RGB"),
    ],
    ids=["mode", "shape", "missing-alpha", "extra-alpha", "alpha-shape", "dtype"],
)
def test_encode_png_rejects_bad_arguments(
    pixels: np.ndarray, alpha: np.ndarray | None, mode: str
) -> None:
    with pytest.raises(ValueError):
        encode_png(pixels, alpha, mode)


# --- bad inputs -----------------------------------------------------------------------


def _valid_png() -> bytes:
    buffer = io.BytesIO()
    _rgb().save(buffer, format="PNG")
    return buffer.getvalue()


def _valid_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(
        buffer, format="JPEG"
    )
    return buffer.getvalue()


BAD_FILES: dict[str, Callable[[], bytes]] = {
    "empty.png": lambda: b"",
    "text.png": lambda: b"just some words, not pixels\n",
    "page.jpg": lambda: b"<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n",
    "truncated.png": lambda: _valid_png()[: len(_valid_png()) // 2],
    "header-only.png": lambda: _valid_png()[:40],
    "truncated.jpg": lambda: _valid_jpeg()[: len(_valid_jpeg()) // 2],
    "random.bin": lambda: np.random.default_rng(1).integers(0, 256, 4096, np.uint8).tobytes(),
}


def _assert_one_line_naming(err: pytest.ExceptionInfo[ImageError], label: str) -> None:
    message = str(err.value)
    assert message.startswith(f"{label}: ")
    assert "\n" not in message and "\r" not in message


@pytest.mark.parametrize("filename", sorted(BAD_FILES))
def test_bad_file_raises_image_error_naming_it(tmp_path: Path, filename: str) -> None:
    path = tmp_path / filename
    path.write_bytes(BAD_FILES[filename]())
    with pytest.raises(ImageError) as err:
        read_image(path)
    _assert_one_line_naming(err, str(path))


@pytest.mark.parametrize("filename", sorted(BAD_FILES))
def test_bad_bytes_are_named_stdin_or_given_name(filename: str) -> None:
    data = BAD_FILES[filename]()
    with pytest.raises(ImageError) as err:
        read_image(data)
    _assert_one_line_naming(err, "<stdin>")
    with pytest.raises(ImageError) as err:
        read_image(data, name="upload.png")
    _assert_one_line_naming(err, "upload.png")


def test_specific_reasons_are_given(tmp_path: Path) -> None:
    cases = {"empty.png": "empty", "page.jpg": "text or HTML", "header-only.png": "PNG"}
    for filename, reason in cases.items():
        with pytest.raises(ImageError, match=reason):
            read_image(BAD_FILES[filename](), name=filename)


def test_missing_file_and_directory_raise_image_error(tmp_path: Path) -> None:
    for path in (tmp_path / "nope.png", tmp_path):
        with pytest.raises(ImageError) as err:
            read_image(path)
        _assert_one_line_naming(err, str(path))


def test_newline_in_file_name_keeps_message_on_one_line() -> None:
    with pytest.raises(ImageError) as err:
        read_image(b"", name="evil\nname.png")
    assert "\n" not in str(err.value)


# --- pixel limits ---------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _blank_bilevel_png(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG built without allocating its pixels (a bomb: tiny file)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    body = [packer.compress(row * min(1000, height - top)) for top in range(0, height, 1000)]
    data = b"".join(body) + packer.flush()
    signature = b"\x89PNG\r\n\x1a\n"
    return (
        signature
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def bomb_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(_blank_bilevel_png(20_000, 20_000))
    return path


def test_bomb_is_small_but_refused_before_decoding(bomb_png: Path) -> None:
    # 400 MP is over twice Pillow's MAX_IMAGE_PIXELS, so Pillow's guard fires inside
    # Image.open, before our own check; either way it must surface as one ImageError line.
    assert bomb_png.stat().st_size < 100_000
    with pytest.raises(ImageError, match="too many pixels") as err:
        read_image(bomb_png)
    _assert_one_line_naming(err, str(bomb_png))
    with pytest.raises(ImageError, match="too many pixels"):
        read_image(bomb_png, max_pixels=10**12)


def test_max_pixels_refuses_bomb_without_pillow_warning() -> None:
    data = _blank_bilevel_png(10_000, 10_000)  # over Pillow's warning threshold, under 2x
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageError, match="10000x10000 = 100,000,000 pixels") as err:
            read_image(data, name="bomb.png")
    _assert_one_line_naming(err, "bomb.png")
    assert f"{DEFAULT_MAX_PIXELS:,}" in str(err.value)


def test_max_pixels_boundary() -> None:
    png = _blank_bilevel_png(4, 4)
    assert read_image(png, max_pixels=16).size == (4, 4)
    with pytest.raises(ImageError, match="over the limit"):
        read_image(png, max_pixels=15)


# --- property tests: never anything but DecodedImage or ImageError ----------------------

SMALL_LIMIT = 1_000_000  # keeps any accidental "valid" header cheap to decode


def _decode_or_refuse(data: bytes) -> None:
    try:
        result = read_image(data, max_pixels=SMALL_LIMIT)
    except ImageError as err:
        assert "\n" not in str(err)
        assert str(err).startswith("<stdin>: ")
    else:
        assert isinstance(result, DecodedImage)
        assert result.pixels.ndim == 3 and result.pixels.shape[2] == 3


def _samples() -> list[bytes]:
    """One small valid file per format, some with EXIF, ICC or several frames."""
    exif = Image.Exif()
    exif[0x0112] = 6
    cases = [
        ("PNG", _rgba(), {"exif": exif.tobytes(), "icc_profile": _srgb_profile()}),
        ("JPEG", _rgb(), {"exif": exif.tobytes()}),
        ("GIF", _palette(), {"save_all": True, "append_images": [_rgb(), _gray()]}),
        ("BMP", _rgb(), {}),
        ("TIFF", _cmyk(), {"exif": exif.tobytes()}),
        ("WEBP", _rgba(), {"lossless": True}),
    ]
    samples = [_valid_jpeg()]
    for fmt, img, options in cases:
        buffer = io.BytesIO()
        img.save(buffer, format=fmt, **options)
        samples.append(buffer.getvalue())
    return samples


SAMPLES = _samples()
# Pillow warns (UserWarning) about the corrupt metadata these tests feed it; expected here.
QUIET = pytest.mark.filterwarnings("ignore::UserWarning")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@QUIET
@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_never_escape(data: bytes) -> None:
    _decode_or_refuse(data)


@QUIET
@FUZZ
@given(st.sampled_from(SAMPLES), st.floats(0.0, 1.0))
def test_truncated_files_never_escape(sample: bytes, fraction: float) -> None:
    _decode_or_refuse(sample[: int(len(sample) * fraction)])


@QUIET
@FUZZ
@given(st.sampled_from(SAMPLES), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255))))
def test_corrupted_files_never_escape(sample: bytes, edits: list[tuple[float, int]]) -> None:
    data = bytearray(sample)
    for where, value in edits:
        data[min(int(where * len(data)), len(data) - 1)] = value
    _decode_or_refuse(bytes(data))


# --- write_atomic ---------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_write_atomic_writes_data_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    write_atomic(target, b"payload")
    assert target.read_bytes() == b"payload"
    assert os.listdir(tmp_path) == ["out.png"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_write_atomic_replaces_and_keeps_existing_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    target.chmod(0o600)
    write_atomic(str(target), b"new")
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["out.png"]


@pytest.mark.parametrize("existing", [False, True])
@pytest.mark.parametrize(
    ("patched", "error"),
    [("fsync", OSError), ("replace", OSError), ("replace", KeyboardInterrupt)],
)
def test_write_atomic_failure_leaves_nothing_partial(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    patched: str,
    error: type[BaseException],
    existing: bool,
) -> None:
    target = tmp_path / "out.png"
    if existing:
        target.write_bytes(b"old")

    def fail(*args: object) -> None:
        raise error("simulated failure")

    monkeypatch.setattr(os, patched, fail)
    with pytest.raises(error, match="simulated failure"):
        write_atomic(target, b"new data that must not appear")
    monkeypatch.undo()

    assert os.listdir(tmp_path) == (["out.png"] if existing else [])
    if existing:
        assert target.read_bytes() == b"old"


def test_write_atomic_into_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "out.png", b"x")


def test_module_does_not_import_tensorflow() -> None:
    code = (
        "import sys, srgan_cli.imageio;"
        "heavy = {m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras'};"
        "sys.exit(sorted(heavy) or 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "I;16"])
def test_png_writer_streams_strips_and_round_trips(mode):
    """An image taller than one IDAT strip decodes exactly, CRCs and all (Pillow verifies)."""
    rng = np.random.default_rng(9)
    dtype = np.uint16 if mode == "I;16" else np.uint8
    gray = rng.integers(0, np.iinfo(dtype).max + 1, (1500, 1000), dtype=dtype)
    pixels = np.repeat(gray[..., None], 3, axis=2)  # gray RGB: luma modes keep it exactly
    alpha = rng.integers(0, 256, (1500, 1000), dtype=np.uint8) if "A" in mode else None
    data = encode_png(pixels, alpha, mode)
    with Image.open(io.BytesIO(data)) as img:
        img.verify()
    with Image.open(io.BytesIO(data)) as img:
        decoded = np.asarray(img)
    expected = pixels if mode in ("RGB", "RGBA") else gray
    if alpha is not None:
        expected = np.dstack((expected, alpha))
    assert np.array_equal(decoded, expected)
    assert data.count(b"IDAT") >= 2


# --- save_image: JPEG, WebP, TIFF ----------------------------------------------------------

STORED = {  # output mode -> the mode each format stores it in (None: refused)
    "RGB": {"png": "RGB", "tiff": "RGB", "jpeg": "RGB", "webp": "RGB"},
    "RGBA": {"png": "RGBA", "tiff": "RGBA", "jpeg": None, "webp": "RGBA"},
    "L": {"png": "L", "tiff": "L", "jpeg": "L", "webp": "RGB"},
    "LA": {"png": "LA", "tiff": "LA", "jpeg": None, "webp": "RGBA"},
    "I;16": {"png": "I;16", "tiff": "I;16", "jpeg": "L", "webp": "RGB"},
}


def _decoded(mode: str, icc: bytes | None = None) -> DecodedImage:
    dtype = np.uint16 if mode == "I;16" else np.uint8
    gray = _gradient(1, dtype, scale=4000 if mode == "I;16" else 9)
    pixels = np.repeat(gray[..., None], 3, axis=2) if mode in ("L", "LA", "I;16") else _gradient(3)
    alpha = _gradient(1, scale=40) if "A" in mode else None
    return DecodedImage(pixels, alpha, mode, icc)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp", "tiff"])
@pytest.mark.parametrize("mode", list(STORED))
def test_save_image_stores_each_mode_as_the_format_can(fmt: str, mode: str) -> None:
    output, stored = OutputFormat(fmt), STORED[mode][fmt]
    image = _decoded(mode)
    if stored is None:
        assert "png or webp" in output.refusal(mode, image.size)
        with pytest.raises(ValueError):
            encode_image(image, output)
        return
    assert output.refusal(mode, image.size) is None
    with Image.open(io.BytesIO(encode_image(image, output))) as img:
        img.load()
        assert (img.mode, img.size) == (stored, (W, H))
        if fmt in ("png", "tiff"):  # lossless: exactly what encode_png would store
            assert np.array_equal(np.asarray(img), output_array(image.pixels, image.alpha, mode))


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "tiff"])
def test_save_image_embeds_a_fitting_icc_profile(fmt: str) -> None:
    icc = _srgb_profile()
    for mode in ("RGB", "RGBA") if fmt != "jpeg" else ("RGB",):
        data = encode_image(_decoded(mode, icc), OutputFormat(fmt))
        with Image.open(io.BytesIO(data)) as img:
            assert img.info.get("icc_profile") == icc


def test_grey_icc_profile_is_kept_for_grey_and_dropped_when_stored_as_rgb() -> None:
    grey_icc = _srgb_profile()[:16] + b"GRAY" + _srgb_profile()[20:]  # only the space matters
    for fmt, kept in (("jpeg", True), ("tiff", True), ("webp", False)):
        data = encode_image(_decoded("L", grey_icc), OutputFormat(fmt))
        with Image.open(io.BytesIO(data)) as img:
            assert (img.info.get("icc_profile") == grey_icc) is kept, fmt


def test_sixteen_bit_to_8_bit_keeps_the_tones() -> None:
    image = _decoded("I;16")
    with Image.open(io.BytesIO(encode_image(image, OutputFormat("jpeg", quality=100)))) as img:
        got = np.asarray(img).astype(int)
    expected = (image.pixels[..., 0].astype(int) + 128) // 257
    assert np.abs(got - expected).max() <= 3  # JPEG at quality 100: a few levels of loss


@pytest.mark.parametrize(
    ("shape", "dtype", "mode"),
    [
        ((H, W), np.uint8, "L"),
        ((H, W), np.uint16, "I;16"),
        ((H, W, 3), np.uint16, "RGB"),
        ((H, W, 4), np.uint8, "RGBA"),
    ],
)
def test_array_round_trip(shape: tuple[int, ...], dtype: type, mode: str) -> None:
    array = np.random.default_rng(5).integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
    decoded = from_array(array)
    assert decoded.mode == mode and decoded.pixels.shape == (H, W, 3)
    back = to_array(decoded)
    assert back.dtype == dtype and np.array_equal(back, array)


def test_from_pil_follows_read_image_rules() -> None:
    picture = _rgba()
    picture.info["icc_profile"] = _srgb_profile()
    decoded = from_pil(picture)
    assert decoded.mode == "RGBA" and decoded.icc_profile == _srgb_profile()
    again = to_pil(decoded)
    assert again.mode == "RGBA" and np.array_equal(np.asarray(again), np.asarray(picture))
    assert again.info["icc_profile"] == _srgb_profile()
