"""Output formats: which format a name asks for, and what each format can store.

``OutputFormat`` is the whole choice (PNG, JPEG, WebP or TIFF, plus quality and PNG
compression); ``format_for_path`` reads it from an output's extension. What a format cannot
store is decided here, before any pixel is computed: alpha as JPEG is refused (the caller
fails that one image), 16-bit goes to 8 bits for JPEG and WebP, grayscale becomes RGB in WebP.
The encoders themselves are in ``imageio``. Standard library only, so job planning and the
CLI's option parsing can use it without importing numpy or Pillow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from srgan_cli.errors import UsageError

FORMATS: tuple[str, ...] = ("png", "jpeg", "webp", "tiff")
"""``--format`` values; PNG is the default because it is lossless and keeps every mode."""

DEFAULT_FORMAT = "png"

EXTENSIONS: dict[str, str] = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".webp": "webp",
    ".tif": "tiff",
    ".tiff": "tiff",
}
"""Output extensions (compared in lower case) and the format each one writes."""

DEFAULT_QUALITY: int = 95
"""JPEG/WebP quality (1-100). 95 keeps the detail the model invents; at 75 (Pillow's
default) JPEG's 8x8 blocks smear exactly the texture an upscaler is for."""

DEFAULT_COMPRESS_LEVEL: int = 1
"""zlib level for output PNGs. PNG encoding is a visible share of per-image time, so favour
speed: on a 1 MP bicubic-upscaled test image level 1 encoded in 50-90 ms against 220-430 ms at
Pillow's default 6 (2.9 s at 9), for files 20-35% larger. Pass 6-9 where size matters more."""

_EXTENSION = {"png": ".png", "jpeg": ".jpg", "webp": ".webp", "tiff": ".tif"}
_MIME_TYPE = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "tiff": "image/tiff"}
_MAX_SIDE = {"jpeg": 65_535, "webp": 16_383}
"""Largest width or height the format can hold (PNG and TIFF have no practical limit)."""

_STORED_MODE: dict[str, dict[str, str]] = {
    "png": {mode: mode for mode in ("RGB", "RGBA", "L", "LA", "I;16")},
    "tiff": {mode: mode for mode in ("RGB", "RGBA", "L", "LA", "I;16")},
    "jpeg": {"RGB": "RGB", "L": "L", "I;16": "L"},
    "webp": {"RGB": "RGB", "RGBA": "RGBA", "L": "RGB", "LA": "RGBA", "I;16": "RGB"},
}
"""Output mode (``imageio.OUTPUT_MODES``) -> the Pillow mode the file stores; a mode missing
from a format's table cannot be written in it (only alpha as JPEG)."""


@dataclass(frozen=True)
class OutputFormat:
    """How outputs are written.

    ``name``: one of ``FORMATS``. ``quality``: JPEG/WebP quality 1-100 (ignored by PNG and
    TIFF, which are lossless). ``compress_level``: PNG zlib level 0-9. UsageError on bad
    values, so a front end can pass user input straight in.
    """

    name: str = DEFAULT_FORMAT
    quality: int = DEFAULT_QUALITY
    compress_level: int = DEFAULT_COMPRESS_LEVEL

    def __post_init__(self) -> None:
        if self.name not in FORMATS:
            raise UsageError(f"unknown format {self.name!r}; choose one of {', '.join(FORMATS)}")
        if not 1 <= self.quality <= 100:
            raise UsageError(f"quality must be 1-100, got {self.quality}")
        if not 0 <= self.compress_level <= 9:
            raise UsageError(f"compress level must be 0-9, got {self.compress_level}")

    @property
    def extension(self) -> str:
        """The extension new outputs get: '.png', '.jpg', '.webp' or '.tif'."""
        return _EXTENSION[self.name]

    @property
    def mime_type(self) -> str:
        return _MIME_TYPE[self.name]

    def stored_mode(self, mode: str) -> str:
        """The Pillow mode an output in ``mode`` is written as; ValueError if it cannot be."""
        try:
            return _STORED_MODE[self.name][mode]
        except KeyError:
            raise ValueError(f"{self.name} cannot store mode {mode}") from None

    def refusal(self, mode: str, size: tuple[int, int]) -> str | None:
        """Why an output of ``mode`` and ``size`` (width, height) cannot be written, or None.

        One line for the user, saying what to use instead.
        """
        if mode not in _STORED_MODE[self.name]:
            return "has an alpha channel, which JPEG cannot store; write png or webp instead"
        limit = _MAX_SIDE.get(self.name)
        if limit is not None and max(size) > limit:
            return (
                f"output {size[0]}x{size[1]} is over {self.name}'s limit of {limit:,} pixels "
                "a side; write png or tiff instead"
            )
        return None

    def notes(self, mode: str) -> list[str]:
        """Remarks on what writing ``mode`` in this format changes (for the report)."""
        stored = self.stored_mode(mode)
        notes = []
        if mode == "I;16" and stored != "I;16":
            notes.append(f"16-bit written as 8-bit ({self.name} stores 8 bits)")
        if mode in ("L", "LA", "I;16") and stored in ("RGB", "RGBA"):
            notes.append(f"grayscale written as {stored} ({self.name} has no grayscale mode)")
        return notes


def format_for_path(path: str | os.PathLike[str], default: str = DEFAULT_FORMAT) -> str:
    """The format an output path asks for by its extension; ``default`` when it has none.

    UsageError (exit 2) for an extension that is not an image format we write, naming the
    supported ones, so 'a.jpg' never silently holds PNG bytes and 'a.gif' is not a surprise.
    """
    suffix = os.path.splitext(os.fspath(path))[1]
    if not suffix:
        return default
    name = EXTENSIONS.get(suffix.lower())
    if name is None:
        supported = ", ".join(EXTENSIONS)
        raise UsageError(
            f"cannot write {os.fspath(path)!r}: unknown image extension {suffix!r} "
            f"(supported: {supported})"
        )
    return name
