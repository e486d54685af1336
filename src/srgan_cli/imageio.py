"""Load images for the upscaler and save its results: modes, alpha, ICC, atomic writes.

Arrays in, arrays out: ``read_image`` turns a file (or bytes) into a ``DecodedImage`` holding
RGB pixels (HxWx3 uint8, or uint16 for 16-bit grayscale), the alpha channel kept apart (the
model only sees colour) and the mode the output should have. ``save_image`` writes upscaled
arrays in that mode as PNG (our streaming writer), JPEG, WebP or TIFF (Pillow), and
``write_atomic`` puts them on disk so a crash or Ctrl-C never leaves a half-written output.
``from_array``/``from_pil`` and ``to_array``/``to_pil`` carry the library's own types.
Every refused input raises ``ImageError`` with one line that names the file. No model code
here, and no TensorFlow import.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import struct
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from srgan_cli.errors import ImageError
from srgan_cli.formats import DEFAULT_COMPRESS_LEVEL, OutputFormat

DEFAULT_MAX_PIXELS: int = 50_000_000
"""Most input pixels (width * height) accepted; 50 MP is a large camera photo. Bigger inputs
are refused from the header, before decoding, so a decompression bomb gives an ImageError
rather than an out-of-memory kill (the 4x output of 50 MP is already 800 MP)."""

SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "GIF")
"""Pillow formats we try. Restricting the list keeps exotic decoders (EPS runs Ghostscript)
away from untrusted files and turns anything else into a clear 'not a supported image'."""

OUTPUT_MODES: tuple[str, ...] = ("RGB", "RGBA", "L", "LA", "I;16")
"""Modes ``encode_png`` writes; ``DecodedImage.mode`` is always one of them."""

_LUMA_WEIGHTS = (299, 587, 114)
"""ITU-R BT.601 luma weights per mille (as Pillow's convert("L") and metrics' Y channel)."""
_LUMA_CHUNK_PIXELS = 1 << 20
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_STRIP_BYTES = 1 << 22  # rows per IDAT strip: ~4 MB of pixels, bounded extra memory
"""Pixels converted to luma per step, bounding the uint32 scratch memory to ~12 MB."""
_SIXTEEN_BIT_GRAY = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_GRAY_MODES = frozenset({"1", "L", "LA", "La"})
_ICC_SPACE = {"RGB": b"RGB ", "RGBA": b"RGB ", "L": b"GRAY", "LA": b"GRAY", "I;16": b"GRAY"}
"""ICC header colour space (bytes 16-20) that fits each output mode."""
_SNIFF_BYTES = 512
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"GIF8", "GIF"),
    (0, b"BM", "BMP"),
    (0, b"II*\x00", "TIFF"),
    (0, b"MM\x00*", "TIFF"),
    (8, b"WEBP", "WebP"),
)
"""(offset, bytes, format) signatures, to tell a damaged supported file from a foreign one."""
_STDIN_NAME = "<stdin>"

# What Pillow raises on malformed data, besides its own exception classes. The blocks that
# catch these wrap Pillow calls (and a line or two of glue), so they cannot hide our bugs.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ArithmeticError,
    MemoryError,
)


@dataclass
class DecodedImage:
    """A decoded input, split the way the upscaler needs it.

    ``pixels``: HxWx3 RGB, uint8 (0-255) or uint16 (0-65535, 16-bit grayscale only); gray
    inputs are replicated to three channels. ``alpha``: HxW, same dtype, or None.
    ``mode``: the mode the output should be written in (one of ``OUTPUT_MODES``).
    ``icc_profile``: colour profile to embed in the output, when it fits that mode.
    ``notes``: human-readable remarks about lossy choices (frames dropped, CMYK converted).
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    mode: str
    icc_profile: bytes | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, like ``PIL.Image.size``."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


ImageSource = str | os.PathLike[str] | bytes
"""A file path or a file's bytes (standard input, an object store's object)."""


def read_image(
    source: ImageSource | BinaryIO,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    name: str | None = None,
) -> DecodedImage:
    """Decode a file path, raw bytes or a seekable binary stream into a ``DecodedImage``.

    ``max_pixels`` caps width * height, checked from the header before any pixel is decoded.
    ``name`` is how error messages refer to the input (default: the path, or "<stdin>" for
    bytes and streams). Pillow's own bomb guard (``Image.MAX_IMAGE_PIXELS``, 2x of it is a
    hard error) stays in force; a ``max_pixels`` above ~179 MP also needs that global raised
    by the caller. Raises ``ImageError`` (one line, naming the input) for anything that cannot
    be used. A stream (from ``open_source``) is read from its current position and left open.
    """
    if hasattr(source, "read"):
        return _decode(source, name or _STDIN_NAME, max_pixels)
    label = _label(source, name)
    with open_source(source, label) as stream:
        return _decode(stream, label, max_pixels)


@contextlib.contextmanager
def open_source(source: ImageSource, name: str | None = None) -> Iterator[BinaryIO]:
    """A seekable binary stream over a path (opened once, closed on exit) or bytes.

    So that everything read from one input shares one open file: ``batch.Reader`` decodes it
    and then reads its header for ``--model auto`` from the same stream. ImageError (one
    line, naming the input) when the file cannot be opened.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(source)
        return
    try:
        handle = open(source, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as err:
        raise _error(_label(source, name), f"cannot open: {err.strerror or err}") from err
    with handle:
        yield handle if handle.seekable() else io.BytesIO(handle.read())


def _label(source: ImageSource, name: str | None) -> str:
    """How messages name an input: ``name``, else the path, or "<stdin>" for bytes."""
    if name:
        return name
    return (
        _STDIN_NAME if isinstance(source, (bytes, bytearray, memoryview)) else os.fsdecode(source)
    )


def probe_image(
    path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS, name: str | None = None
) -> tuple[str, tuple[int, int]]:
    """(output mode, (width, height)) from a file's header, decoding no pixel data.

    What the output of ``read_image`` will be, known before a model is loaded, so an image
    its output format cannot hold (alpha as JPEG) is refused first. ImageError, as
    ``read_image`` would raise it, for a file that cannot be opened, is not a supported
    image, or has too many pixels; damage in the pixel data is only found by decoding.
    """
    label = _label(path, name)
    with open_source(path, label) as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = _open(handle, label)
        with img:
            _check_pixel_count(img, label, max_pixels)
            return _working_mode(img)[1], img.size


def _decode(stream: BinaryIO, label: str, max_pixels: int) -> DecodedImage:
    """Open lazily, check the pixel count, then load and split into arrays."""
    # Our max_pixels check replaces Pillow's warning; the filter change is undone on exit.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = _open(stream, label)
        with img:
            _check_pixel_count(img, label, max_pixels)
            with _pillow_errors(label, "corrupt or truncated image data"):
                notes = _frame_notes(img)
                notes += _load_upright(img)
            return _to_decoded(img, label, notes)


def _open(stream: BinaryIO, label: str) -> Image.Image:
    """``Image.open`` (reads the header only), with Pillow's failures turned into ImageError."""
    with _pillow_errors(label, "corrupt image header"):
        try:
            return Image.open(stream, formats=SUPPORTED_FORMATS)
        except UnidentifiedImageError as err:
            raise _error(label, _unrecognised_reason(stream)) from err


@contextlib.contextmanager
def _pillow_errors(label: str, what: str) -> Iterator[None]:
    """Turn what Pillow raises on bad data into a one-line ImageError: '<label>: <what> (...)'."""
    try:
        yield
    except Image.DecompressionBombError as err:
        reason = f"too many pixels, refused as a possible decompression bomb ({err})"
        raise _error(label, reason) from err
    except _DECODE_ERRORS as err:
        raise _error(label, f"{what} ({_describe(err)})") from err


def _check_pixel_count(img: Image.Image, label: str, max_pixels: int) -> None:
    """Refuse empty images and those over ``max_pixels`` before decoding any pixel data."""
    width, height = img.size
    pixels = width * height
    if pixels <= 0:
        raise _error(label, f"image has no pixels ({width}x{height})")
    if pixels > max_pixels:
        raise _error(
            label,
            f"image is {width}x{height} = {pixels:,} pixels, over the limit of "
            f"{max_pixels:,} (max_pixels)",
        )


def _frame_notes(img: Image.Image) -> list[str]:
    """Note when an animation or multi-page file is reduced to its first frame."""
    frames = int(getattr(img, "n_frames", 1))
    # MPO is how Pillow reads many camera JPEGs; the extra frames are previews, not content.
    if frames <= 1 or img.format == "MPO":
        return []
    return [f"{img.format}: only the first of {frames} frames was used"]


def _load_upright(img: Image.Image) -> list[str]:
    """Decode all pixels (detects truncation) and apply the EXIF orientation in place."""
    img.load()
    orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    ImageOps.exif_transpose(img, in_place=True)
    if orientation in range(2, 9):
        return [f"EXIF orientation {orientation} applied"]
    return []


def _to_decoded(img: Image.Image, label: str, notes: list[str]) -> DecodedImage:
    """Convert to the working mode, split into RGB pixels + alpha, keep a fitting profile."""
    convert_to, mode = _working_mode(img)
    with _pillow_errors(label, f"cannot convert colour mode {img.mode!r}"):
        converted = img if img.mode == convert_to else img.convert(convert_to)
    pixels, alpha = _split(converted, mode, notes)
    if img.mode == "CMYK":
        notes.append("CMYK converted to RGB")
    icc_profile = _fitting_profile(img.info.get("icc_profile"), mode, notes)
    return DecodedImage(pixels, alpha, mode, icc_profile, notes)


def _working_mode(img: Image.Image) -> tuple[str, str]:
    """(Pillow mode to convert to, output mode) for a loaded image."""
    if img.mode in _SIXTEEN_BIT_GRAY:
        return img.mode, "I;16"
    gray = img.mode in _GRAY_MODES
    if _has_transparency(img):
        return ("LA", "LA") if gray else ("RGBA", "RGBA")
    return ("L", "L") if gray else ("RGB", "RGB")


def _split(img: Image.Image, mode: str, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Image already in the working mode -> (HxWx3 pixels, HxW alpha or None)."""
    if mode == "I;16":
        return _gray16_to_rgb(img, notes), None
    array = np.asarray(img)
    if mode == "RGB":
        return np.array(array), None
    if mode == "L":
        return _replicate(array), None
    if mode == "LA":
        return _replicate(array[..., 0]), np.ascontiguousarray(array[..., 1])
    return np.ascontiguousarray(array[..., :3]), np.ascontiguousarray(array[..., 3])


def _has_transparency(img: Image.Image) -> bool:
    """Alpha channel, palette alpha or a tRNS colour key (Pillow 10.0 lacks the helper)."""
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        return True
    return img.mode == "P" and img.palette is not None and img.palette.mode == "RGBA"


def _gray16_to_rgb(img: Image.Image, notes: list[str]) -> np.ndarray:
    """16-bit gray (or 32-bit "I", clipped to 0-65535) -> HxWx3 native uint16."""
    values = np.asarray(img)
    if img.mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
        notes.append("32-bit integer values clipped to 16 bits")
        values = np.clip(values, 0, 65535)
    if "transparency" in img.info:
        notes.append("transparency dropped: 16-bit grayscale is kept without alpha")
    return _replicate(values.astype(np.uint16))


def _replicate(gray: np.ndarray) -> np.ndarray:
    """HxW -> HxWx3 (a new, writable array)."""
    return np.repeat(gray[..., np.newaxis], 3, axis=2)


def _fitting_profile(icc: bytes | None, mode: str, notes: list[str]) -> bytes | None:
    """Keep the ICC profile only if its colour space matches the output (PNG requires it)."""
    if not icc:
        return None
    space = icc[16:20]
    if space == _ICC_SPACE[mode]:
        return bytes(icc)
    shown = space.decode("ascii", "replace").strip() or "unknown"
    notes.append(f"ICC profile dropped: it describes {shown}, output is {mode}")
    return None


def _unrecognised_reason(stream: BinaryIO) -> str:
    """Say why Pillow found no image: empty, damaged, text/HTML, or an unknown format."""
    try:
        stream.seek(0)
        head = stream.read(_SNIFF_BYTES)
    except OSError:
        head = b"?"
    if not head:
        return "empty file (0 bytes)"
    for offset, magic, format_name in _MAGIC:
        if head.startswith(magic, offset):
            return f"corrupt or truncated {format_name} file"
    if _looks_like_text(head):
        return "looks like text or HTML, not an image"
    return f"not a supported image (supported: {', '.join(SUPPORTED_FORMATS)})"


def _looks_like_text(head: bytes) -> bool:
    """True for markup or plain printable ASCII/UTF-8 text (an error page saved as .jpg)."""
    stripped = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if stripped.startswith(b"<"):
        return True
    return all(32 <= byte < 127 or byte in b"\t\r\n" for byte in stripped)


def _describe(err: BaseException) -> str:
    """Exception as 'Type: message' for the tail of a one-line error."""
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _error(label: str, reason: str) -> ImageError:
    """``ImageError`` whose message is exactly one line, even for odd file names."""
    message = f"{label}: {reason}"
    return ImageError(message.replace("\r", "\\r").replace("\n", "\\n"))


def encode_png(
    pixels: np.ndarray,
    alpha: np.ndarray | None,
    mode: str,
    icc_profile: bytes | None = None,
    compress_level: int = DEFAULT_COMPRESS_LEVEL,
) -> bytes:
    """Encode arrays as PNG bytes in output ``mode`` (one of ``OUTPUT_MODES``).

    ``pixels`` is HxWx3 RGB, uint8 or uint16; ``alpha`` is HxW (required for "RGBA"/"LA",
    refused otherwise). 8-bit modes take uint8 and "I;16" takes uint16; the other depth is
    rescaled exactly (x * 257, or rounded x / 257). "L", "LA" and "I;16" store BT.601 luma,
    round(0.299 R + 0.587 G + 0.114 B), which returns a replicated gray input unchanged.
    ``compress_level`` is zlib's 0-9. Output is deterministic: no timestamps or other
    varying chunks, so equal inputs give byte-identical files.
    """
    buffer = io.BytesIO()
    save_png(buffer, pixels, alpha, mode, icc_profile, compress_level)
    return buffer.getvalue()


def save_png(
    stream: BinaryIO,
    pixels: np.ndarray,
    alpha: np.ndarray | None,
    mode: str,
    icc_profile: bytes | None = None,
    compress_level: int = DEFAULT_COMPRESS_LEVEL,
) -> None:
    """``encode_png`` straight into ``stream``, a strip of rows at a time.

    Our own minimal PNG writer (IHDR, optional iCCP, IDAT, IEND; "Sub" row filter): Pillow
    would first copy the whole output into its own image, doubling the memory of a large
    upscale, whereas this converts (luma, alpha, depth) and holds one strip at a time.
    """
    _check_encode_args(pixels, alpha, mode)
    height, width = pixels.shape[:2]
    channels = (1 if mode in ("L", "LA", "I;16") else 3) + (alpha is not None)
    depth = 16 if mode == "I;16" else 8
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    stream.write(_PNG_SIGNATURE)
    _write_chunk(
        stream, b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    )
    if icc_profile:
        _write_chunk(stream, b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile))
    compressor = zlib.compressobj(compress_level)
    bpp = channels * depth // 8
    rows = max(1, _PNG_STRIP_BYTES // (width * bpp))
    for top in range(0, height, rows):
        strip_alpha = None if alpha is None else alpha[top : top + rows]
        strip = output_array(pixels[top : top + rows], strip_alpha, mode)
        data = compressor.compress(_sub_filtered(strip, bpp))
        if data:
            _write_chunk(stream, b"IDAT", data)
    _write_chunk(stream, b"IDAT", compressor.flush())
    _write_chunk(stream, b"IEND", b"")


def _sub_filtered(strip: np.ndarray, bpp: int) -> bytes:
    """Rows as PNG scanlines with filter type 1 (Sub): each byte minus the one bpp before."""
    raw = strip.astype(strip.dtype.newbyteorder(">"), copy=False).reshape(len(strip), -1)
    raw = raw.view(np.uint8)
    filtered = np.empty((raw.shape[0], raw.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = 1
    filtered[:, 1 : 1 + bpp] = raw[:, :bpp]
    np.subtract(raw[:, bpp:], raw[:, :-bpp], out=filtered[:, 1 + bpp :])
    return filtered.tobytes()


def _write_chunk(stream: BinaryIO, kind: bytes, data: bytes) -> None:
    stream.write(struct.pack(">I", len(data)))
    stream.write(kind)
    stream.write(data)
    stream.write(struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF))


def output_array(pixels: np.ndarray, alpha: np.ndarray | None, mode: str) -> np.ndarray:
    """The array to store for ``mode``: validated, depth-adjusted, luma or RGB, + alpha."""
    _check_encode_args(pixels, alpha, mode)
    depth = np.uint16 if mode == "I;16" else np.uint8
    rgb = _to_depth(pixels, depth)
    colour = rgb if mode in ("RGB", "RGBA") else _luma(rgb)
    return colour if alpha is None else np.dstack((colour, _to_depth(alpha, depth)))


def _check_encode_args(pixels: np.ndarray, alpha: np.ndarray | None, mode: str) -> None:
    """Reject programming errors early with a clear ValueError."""
    if mode not in OUTPUT_MODES:
        raise ValueError(f"mode must be one of {OUTPUT_MODES}, not {mode!r}")
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"pixels must be HxWx3, got shape {pixels.shape}")
    wants_alpha = mode in ("RGBA", "LA")
    if wants_alpha and alpha is None:
        raise ValueError(f"mode {mode} needs an alpha array")
    if not wants_alpha and alpha is not None:
        raise ValueError(f"mode {mode} has no alpha channel; pass alpha=None")
    if alpha is not None and alpha.shape != pixels.shape[:2]:
        raise ValueError(f"alpha must be HxW {pixels.shape[:2]}, got {alpha.shape}")


def _to_depth(array: np.ndarray, dtype: type[np.unsignedinteger]) -> np.ndarray:
    """uint8 <-> uint16 by exact scaling (255 <-> 65535); other dtypes are refused."""
    if array.dtype.kind != "u" or array.dtype.itemsize not in (1, 2):
        raise ValueError(f"arrays must be uint8 or uint16, got {array.dtype}")
    native = array.astype(np.uint8 if array.dtype.itemsize == 1 else np.uint16, copy=False)
    if native.dtype == dtype:
        return native
    if dtype == np.uint16:
        return native.astype(np.uint16) * np.uint16(257)
    return ((native.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 -> HxW BT.601 luma in the same dtype, in integer maths, in row blocks."""
    height, width = rgb.shape[:2]
    out = np.empty((height, width), dtype=rgb.dtype)
    rows = max(1, _LUMA_CHUNK_PIXELS // max(1, width))
    red, green, blue = _LUMA_WEIGHTS
    for top in range(0, height, rows):
        block = rgb[top : top + rows].astype(np.uint32)
        weighted = block[..., 0] * red + block[..., 1] * green + block[..., 2] * blue
        out[top : top + rows] = (weighted + 500) // 1000
    return out


_PILLOW_FORMAT = {"jpeg": "JPEG", "webp": "WEBP", "tiff": "TIFF"}


def save_image(stream: BinaryIO, image: DecodedImage, output: OutputFormat) -> None:
    """Write ``image`` to ``stream`` in ``output``'s format (see ``formats``).

    PNG goes through ``save_png``, a strip at a time. JPEG, WebP and TIFF go through Pillow,
    which needs the whole picture as one ``Image`` first: a full-size copy of the output on
    top of our arrays (BENCHMARKS.md says what that costs). The ICC profile is embedded when
    its colour space fits the stored mode. TIFF is deflate-compressed (lossless). ValueError
    for a mode the format cannot store: callers check ``output.refusal`` first.
    """
    if output.name == "png":
        args = (image.pixels, image.alpha, image.mode, image.icc_profile)
        save_png(stream, *args, compress_level=output.compress_level)
        return
    stored = output.stored_mode(image.mode)
    picture = _pillow_picture(image, stored)
    options: dict[str, object] = {"compression": "tiff_adobe_deflate"}
    if output.name != "tiff":
        options = {"quality": output.quality}
    profile = image.icc_profile
    if profile and profile[16:20] == _ICC_SPACE[stored]:
        options["icc_profile"] = profile
    picture.save(stream, _PILLOW_FORMAT[output.name], **options)


def encode_image(image: DecodedImage, output: OutputFormat) -> bytes:
    """``save_image`` into bytes (for stdout and HTTP answers)."""
    buffer = io.BytesIO()
    save_image(buffer, image, output)
    return buffer.getvalue()


def _pillow_picture(image: DecodedImage, stored: str) -> Image.Image:
    """The output as a Pillow image in mode ``stored`` (16-bit reduced to 8 where needed)."""
    source = "L" if image.mode == "I;16" and stored != "I;16" else image.mode
    picture = Image.fromarray(output_array(image.pixels, image.alpha, source))
    return picture if picture.mode == stored else picture.convert(stored)


# -- the library's own types ---------------------------------------------------------------


def from_array(array: np.ndarray) -> DecodedImage:
    """A caller's array as a ``DecodedImage``: HxW gray, HxWx3 RGB or HxWx4 RGBA.

    uint8 or uint16 (a uint16 HxW array is 16-bit gray, "I;16"). No copy for HxWx3.
    ValueError for other shapes and dtypes.
    """
    if array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"arrays must be uint8 or uint16, got {array.dtype}")
    if array.ndim == 2:
        return DecodedImage(_replicate(array), None, "I;16" if array.dtype == np.uint16 else "L")
    if array.ndim == 3 and array.shape[2] == 3:
        return DecodedImage(array, None, "RGB")
    if array.ndim == 3 and array.shape[2] == 4:
        colour, alpha = array[..., :3], array[..., 3]
        return DecodedImage(np.ascontiguousarray(colour), np.ascontiguousarray(alpha), "RGBA")
    raise ValueError(f"arrays must be HxW, HxWx3 or HxWx4, got shape {array.shape}")


def to_array(image: DecodedImage) -> np.ndarray:
    """The inverse of ``from_array``: HxW luma for gray modes, HxWx3, or HxWx4 with alpha.

    The dtype is the pixels' (an uint16 RGB input comes back uint16).
    """
    colour = image.pixels if image.mode in ("RGB", "RGBA") else _luma(image.pixels)
    return colour if image.alpha is None else np.dstack((colour, image.alpha))


def from_pil(picture: Image.Image, name: str = "image") -> DecodedImage:
    """A caller's Pillow image as a ``DecodedImage``, by ``read_image``'s mode rules.

    Palette and CMYK become RGB(A), 16-bit gray stays 16-bit, alpha is split off, a fitting
    ICC profile (``picture.info["icc_profile"]``) is kept. Unlike files, no EXIF rotation:
    the caller's pixels are taken as they are.
    """
    with _pillow_errors(name, "cannot read pixels"):
        picture.load()
    return _to_decoded(picture, name, [])


def to_pil(image: DecodedImage) -> Image.Image:
    """A ``DecodedImage`` as a Pillow image in its output mode, ICC profile in ``info``."""
    picture = Image.fromarray(output_array(image.pixels, image.alpha, image.mode))
    if image.icc_profile:
        picture.info["icc_profile"] = image.icc_profile
    return picture


def write_atomic(path: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], None]) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one, never part.

    ``data`` is bytes, or a function that writes the content into the open file (so a big
    PNG can be encoded straight to disk).

    The bytes go to a hidden temporary file in the same directory (same filesystem, so the
    rename is atomic), are fsynced, then ``os.replace``d onto the target. On any failure,
    KeyboardInterrupt included, the temporary file is removed and the exception re-raised.
    The result gets the mode a plain ``open(path, "wb")`` would give: the existing target's
    mode, or 0o666 minus the umask (0o644 usually) rather than mkstemp's 0o600.
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    fd, temp = tempfile.mkstemp(
        dir=directory, prefix="." + os.path.basename(target) + ".", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data)
            handle.flush()
            _set_mode(handle.fileno(), _new_file_mode(target))
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        _remove_quietly(temp)
        raise


def _set_mode(fd: int, mode: int) -> None:
    """chmod the temporary file, tolerating filesystems that refuse it.

    Filesystems without Unix permissions (FAT, some network mounts) answer EPERM; there the
    data matters more than the bits, so the write goes ahead.
    """
    with contextlib.suppress(PermissionError):
        os.fchmod(fd, mode)


def _new_file_mode(target: str) -> int:
    """Permission bits for the output: keep an existing target's, else 0o666 & ~umask."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_current_umask()


def _current_umask() -> int:
    """The process umask, read from /proc where possible.

    The portable way (set then restore ``os.umask``) briefly sets umask 0o022 process-wide,
    which a file created by another thread at that moment would inherit; /proc avoids that.
    """
    try:
        return _umask_from_proc()
    except (OSError, ValueError, LookupError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def _umask_from_proc() -> int:
    """Parse the 'Umask:' line of /proc/self/status (Linux 4.7+); LookupError if absent."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    raise LookupError("no Umask line in /proc/self/status")


def _remove_quietly(path: str) -> None:
    """Delete a leftover temporary file; it may already be gone (e.g. after the rename)."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
