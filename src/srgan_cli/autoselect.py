"""``--model auto``: which shipped model an image gets, from what its file says about itself.

A lossy file's damage is in its header: a JPEG's quantization tables say how hard it was
compressed (libjpeg scales the standard Annex K tables by its quality setting, and nearly
every encoder, phones and web tools included, follows it), and a WebP is lossy when its
image is a ``VP8`` bitstream rather than ``VP8L``. A JPEG at or below ``JPEG_THRESHOLD`` and
any lossy WebP go to ``real`` (trained on compressed, resized, noisy inputs); everything
else (PNG, TIFF, BMP, GIF, high-quality JPEG, lossless WebP, and arrays, which carry no
header) goes to ``srgan``. The threshold was measured on the held-out training photos (see
BENCHMARKS.md, "--model auto"). Only headers are read, never pixels: Pillow parses the
quantization tables when it opens a JPEG, so the choice costs microseconds.

Standard library and Pillow only (no numpy, no TensorFlow): planning imports this.
"""

from __future__ import annotations

import functools
import io
import os
import struct
from collections.abc import Sequence
from typing import IO, Any

AUTO = "auto"
"""The ``--model`` value that picks per image."""
CLEAN_MODEL = "srgan"
"""For lossless or barely compressed inputs (and inputs with no header to read)."""
DAMAGED_MODEL = "real"
"""For JPEGs at or below ``JPEG_THRESHOLD`` and lossy WebPs."""
AUTO_MODELS: tuple[str, ...] = (CLEAN_MODEL, DAMAGED_MODEL)

JPEG_THRESHOLD = 90.0
"""JPEGs whose estimated quality is at or below this go to ``real``. Measured on the 10
held-out training photos (BENCHMARKS.md, "--model auto"): ``real`` beats ``srgan`` in both
PSNR and LPIPS at every quality from 50 to 90; from 91 to 95 ``srgan`` has the lower LPIPS
(``real`` the higher PSNR), as on lossless input."""

# ITU-T T.81 Annex K tables K.1 (luminance) and K.2 (chrominance), in natural (row-major)
# order, which is how Pillow's ``JpegImageFile.quantization`` lists them.
STD_LUMINANCE: tuple[int, ...] = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
# Chrominance rows 5 to 8 are all 99.
STD_CHROMINANCE: tuple[int, ...] = (
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
) + (99,) * 32  # fmt: skip

_HEADER_BYTES = 1 << 16
"""How much of a WebP file is read to find its image chunk (VP8X metadata comes first)."""


def libjpeg_table(base: Sequence[int], quality: int) -> list[int]:
    """``base`` scaled as libjpeg's ``jpeg_set_quality`` does (baseline: entries 1..255)."""
    quality = min(max(quality, 1), 100)
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return [min(max((value * scale + 50) // 100, 1), 255) for value in base]


@functools.cache
def _standard_tables() -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """(luminance, chrominance) as libjpeg writes them at each quality 1..100 (index q - 1)."""
    return tuple(
        (tuple(libjpeg_table(STD_LUMINANCE, q)), tuple(libjpeg_table(STD_CHROMINANCE, q)))
        for q in range(1, 101)
    )


@functools.cache
def _exact_qualities() -> dict[tuple[tuple[int, ...], ...], int]:
    """Standard tables -> their quality (colour: both tables, grayscale: luminance only);
    the lowest quality wins where two qualities write the same tables."""
    found: dict[tuple[tuple[int, ...], ...], int] = {}
    for quality, (luma, chroma) in reversed(list(enumerate(_standard_tables(), start=1))):
        found[(luma, chroma)] = found[(luma,)] = quality
    return found


def _table_error(tables: Sequence[Sequence[int]], quality: int) -> int:
    """Sum of absolute differences between ``tables`` and the standard ones at ``quality``."""
    expected = _standard_tables()[quality - 1]
    return sum(
        abs(int(a) - b)
        for table, standard in zip(tables[:2], expected, strict=False)
        for a, b in zip(table, standard, strict=False)
    )


def estimate_jpeg_quality(
    quantization: dict[int, Sequence[int]] | Sequence[Sequence[int]],
) -> float:
    """The libjpeg quality (1-100) whose standard tables fit these best.

    ``quantization`` is Pillow's ``JpegImageFile.quantization`` (table id -> 64 values in
    natural order) or a list of such tables; the first is luminance, the second (absent
    in grayscale files) chrominance. An encoder that used libjpeg's tables gives back its
    exact quality; one with its own tables (some cameras) gets the closest libjpeg quality.
    Ties go to the lower quality, the more cautious answer.
    """
    if isinstance(quantization, dict):
        tables = [quantization[key] for key in sorted(quantization)]
    else:
        tables = list(quantization)
    if not tables:
        raise ValueError("no quantization tables")
    exact = _exact_qualities().get(tuple(tuple(int(v) for v in t) for t in tables[:2]))
    if exact is not None:  # libjpeg's own tables (Pillow, most phones and web tools)
        return float(exact)
    best = min(range(1, 101), key=lambda quality: (_table_error(tables, quality), quality))
    return float(best)


def is_lossy_webp(header: bytes) -> bool | None:
    """True for a lossy WebP (its image is a ``VP8`` chunk), False for a lossless one
    (``VP8L``), None when ``header`` is not a WebP or ends before the image chunk.

    An extended file (``VP8X``) lists metadata chunks first (ICC, EXIF, ``ALPH``); an
    animated one wraps each frame's image in an ``ANMF`` chunk: any lossy frame counts.
    """
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WEBP":
        return None
    return _scan_chunks(header, 12, len(header))


def _scan_chunks(data: bytes, offset: int, end: int) -> bool | None:
    lossless_seen = False
    while offset + 8 <= end:
        kind = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        if kind == b"VP8 ":
            return True
        if kind == b"VP8L":
            lossless_seen = True
        elif kind == b"ANMF":
            frame = _scan_chunks(data, offset + 8 + 16, min(offset + 8 + size, end))
            if frame:
                return True
            lossless_seen = lossless_seen or frame is False
        offset += 8 + size + (size & 1)  # chunks are padded to an even size
    return False if lossless_seen else None


Source = str | os.PathLike[str] | bytes | IO[bytes] | Any
"""What ``choose_model`` reads: a path, the file's bytes, a binary file object, a PIL Image
(its ``format`` and, for a JPEG, ``quantization``) or None (no header: ``CLEAN_MODEL``)."""


def choose_model(source: Source, threshold: float = JPEG_THRESHOLD) -> str:
    """``DAMAGED_MODEL`` for a JPEG at or below ``threshold`` or a lossy WebP, else
    ``CLEAN_MODEL``. Reads headers only; anything unreadable gets ``CLEAN_MODEL`` (reading
    the image itself then reports what is wrong)."""
    kind, detail = _describe(source)
    if kind == "jpeg":
        return DAMAGED_MODEL if estimate_jpeg_quality(detail) <= threshold else CLEAN_MODEL
    if kind == "webp":
        return DAMAGED_MODEL if detail else CLEAN_MODEL
    return CLEAN_MODEL


def _describe(source: Source) -> tuple[str, Any]:
    """("jpeg", tables), ("webp", lossy?) or ("other", None) from the header of ``source``."""
    if source is None:
        return "other", None
    if hasattr(source, "getexif") and hasattr(source, "format"):  # a PIL Image
        tables = getattr(source, "quantization", None)
        if tables:
            return "jpeg", tables
        name = getattr(source, "filename", "")
        return _describe(name) if source.format == "WEBP" and name else ("other", None)
    header = _head(source)
    if header[:4] == b"RIFF" and header[8:12] == b"WEBP":
        lossy = is_lossy_webp(header)
        if lossy is None and len(header) == _HEADER_BYTES:  # long metadata first: read it all
            lossy = is_lossy_webp(_head(source, None))
        return "webp", lossy
    if header[:2] != b"\xff\xd8":
        return "other", None
    from PIL import Image

    if isinstance(source, bytes | bytearray | memoryview):
        source = io.BytesIO(source)  # all of it: EXIF (up to 64 KiB) comes before the tables
    position = source.tell() if hasattr(source, "tell") else None
    try:
        with Image.open(source) as image:
            return "jpeg", getattr(image, "quantization", None) or None
    except Exception:  # any broken header: read_image reports it, the choice stays clean
        return "other", None
    finally:
        if position is not None:
            source.seek(position)  # a caller's stream is left where it was


def _head(source: Source, size: int | None = _HEADER_BYTES) -> bytes:
    """The first ``size`` bytes (None: all) of a path, bytes or binary file (b"" if unreadable)."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source[:size])
    count = -1 if size is None else size
    try:
        if hasattr(source, "read"):
            position = source.tell()
            data = source.read(count)
            source.seek(position)
            return data
        with open(source, "rb") as handle:
            return handle.read(count)
    except (OSError, ValueError):
        return b""
