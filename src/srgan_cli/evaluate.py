"""Benchmark the upscaler on folders of HR images, and draw side-by-side comparison sheets.

The protocol is the literature's (see ``metrics``): crop HR to a multiple of 4, Pillow
BICUBIC x1/4, upscale, score the Y channel (BT.601, 16-235) with a 4 px border shaved: PSNR
and SSIM (Gaussian 11x11, sigma 1.5). LPIPS-Alex is scored on full RGB, no border shaved.
Every image is also upscaled with Pillow BICUBIC, so the baseline is always printed next to
the model. The model runs through ``Upscaler.upscale``, tiling included: exactly what users
get. Paths and arrays in, dataclasses and strings out; no click here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from srgan_cli import SCALE
from srgan_cli.degrade import (
    DEFAULT_CHAIN,
    PROTOCOL_CHAIN,
    Chain,
    image_seed,
    parse_chain,
)
from srgan_cli.errors import UsageError
from srgan_cli.imageio import read_image
from srgan_cli.metrics import bicubic_upscale, crop_to_multiple, psnr, ssim
from srgan_cli.tiling import DEFAULT_TILE_PAD

BORDER = SCALE
"""Pixels shaved on every side before PSNR/SSIM (the protocol's scale-sized rim)."""

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
)

PROTOCOL: dict[str, Any] = {
    "scale": SCALE,
    "degradation": "crop HR to a multiple of 4, Pillow BICUBIC x1/4",
    "psnr_ssim": f"Y channel (ITU-R BT.601, 16-235), {BORDER} px border shaved",
    "ssim_window": "Gaussian 11x11, sigma 1.5",
    "lpips": "LPIPS-Alex v0.1 on RGB, no border shaved",
    "baseline": "Pillow BICUBIC x4",
}
"""How the numbers were made (for the default chain); written into the JSON next to them."""


def protocol(chain: str = DEFAULT_CHAIN, scale: int = SCALE) -> dict[str, Any]:
    """``PROTOCOL`` at the model's ``scale`` (the LR is x1/scale; an x1 model gets the HR
    itself, degraded only by the chain's steps), its degradation line naming the chain."""
    base = PROTOCOL
    if scale != SCALE:
        base = {
            **PROTOCOL,
            "scale": scale,
            "degradation": f"crop HR to a multiple of {scale}, Pillow BICUBIC x1/{scale}",
            "psnr_ssim": f"Y channel (ITU-R BT.601, 16-235), {scale} px border shaved",
            "baseline": f"Pillow BICUBIC x{scale}",
        }
    if chain == DEFAULT_CHAIN:
        return base
    steps = (
        f"crop HR to a multiple of {scale}, then the chain {chain!r} "
        f"(srgan_cli.degrade.parse_chain): Pillow resizer x1/{scale}, then JPEG (Pillow, "
        "4:2:0) / Gaussian noise (sigma in grey levels) in order; noise seeded by zlib.crc32 "
        "of 'set/image'"
    )
    return {**base, "degradation": steps}


class SuperResolver(Protocol):
    """What ``evaluate`` and ``comparison_sheet`` need of a model (``pipeline.Upscaler`` fits)."""

    name: str

    def upscale(self, pixels: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 RGB -> (scale*H)x(scale*W)x3 uint8 RGB (``scale``: 4 if absent)."""
        ...


def model_scale(model: SuperResolver) -> int:
    """The scale a model works at (``Upscaler.scale``); 4 for one that does not say."""
    return int(getattr(model, "scale", SCALE))


Lpips = Callable[[np.ndarray, np.ndarray], float]
"""LPIPS distance of two uint8 RGB images of one size (``lpips.LpipsAlex`` fits)."""


@dataclass(frozen=True)
class BenchmarkSet:
    """A named folder's images, in name order."""

    name: str
    images: tuple[Path, ...]


@dataclass(frozen=True)
class ImageScore:
    """One HR image's scores: PSNR in dB, SSIM in [-1, 1], LPIPS >= 0 (None when skipped).

    ``seconds`` is the model's upscaling time for this image (metrics excluded). ``model``
    names the model that upscaled it (with ``auto``, the one the LR's file asked for).
    """

    set: str
    image: str
    psnr: float
    ssim: float
    lpips: float | None
    bicubic_psnr: float
    bicubic_ssim: float
    bicubic_lpips: float | None
    seconds: float
    model: str = ""


SCORE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ImageScore))
"""The keys of each per-image row in the JSON, in order."""


@dataclass(frozen=True)
class SetScore:
    """Means over one set's images (``lpips`` None when skipped); ``seconds`` is the sum."""

    set: str
    images: int
    psnr: float
    ssim: float
    lpips: float | None
    bicubic_psnr: float
    bicubic_ssim: float
    bicubic_lpips: float | None
    seconds: float


@dataclass(frozen=True)
class Evaluation:
    """Everything one ``evaluate`` run measured, per image and per set."""

    model: str
    images: tuple[ImageScore, ...]
    sets: tuple[SetScore, ...]
    seconds: float
    degradation: str = DEFAULT_CHAIN
    scale: int = SCALE

    def to_dict(self, **run_info: Any) -> dict[str, Any]:
        """JSON-ready content: ``run_info`` (version, precision...), protocol, sets, images."""
        return {
            "model": self.model,
            **run_info,
            "degradation": self.degradation,
            "protocol": protocol(self.degradation, self.scale),
            "total_s": round(self.seconds, 3),
            "sets": [_rounded(asdict(score)) for score in self.sets],
            "images": [_rounded(asdict(score)) for score in self.images],
        }


def _rounded(row: dict[str, Any]) -> dict[str, Any]:
    """Scores to 4 decimals (PSNR to 1e-4 dB), seconds to the millisecond."""
    digits = {"seconds": 3}
    return {
        key: round(value, digits.get(key, 4)) if isinstance(value, float) else value
        for key, value in row.items()
    }


# -- inputs ---------------------------------------------------------------------------------


def benchmark_sets(directories: Sequence[str | Path]) -> list[BenchmarkSet]:
    """One set per directory: its image files (not hidden, not in subfolders), named by the
    folder's name, or by the path as given when two folders share a name.

    UsageError (exit 2) for a directory without images.
    """
    paths = [Path(directory) for directory in directories]
    names = [path.resolve().name for path in paths]
    sets = []
    for path, name in zip(paths, names, strict=True):
        images = tuple(
            sorted(
                item
                for item in path.iterdir()
                if item.suffix.lower() in IMAGE_SUFFIXES
                and not item.name.startswith(".")
                and item.is_file()
            )
        )
        if not images:
            raise UsageError(f"no images in directory {path}")
        sets.append(BenchmarkSet(name if names.count(name) == 1 else str(path), images))
    return sets


def load_hr(path: str | Path) -> np.ndarray:
    """An HR image as HxWx3 uint8 RGB: grayscale replicated, alpha dropped, 16-bit rounded.

    ``ImageError`` (one line naming the file) when it cannot be read.
    """
    pixels = read_image(path).pixels
    if pixels.dtype == np.uint16:
        pixels = np.rint(pixels / 257.0).astype(np.uint8)
    return pixels


# -- scoring --------------------------------------------------------------------------------


def score_image(
    hr: np.ndarray,
    model: SuperResolver,
    lpips: Lpips | None = None,
    *,
    set_name: str = "",
    image_name: str = "",
    chain: Chain = PROTOCOL_CHAIN,
) -> ImageScore:
    """Run the protocol on one HxWx3 uint8 HR image: the model and bicubic from the same LR.

    ``chain`` (default: the published protocol's Pillow bicubic x1/4) makes the LR; its
    noise is seeded by the image's set and name, so every run scores the same inputs. A
    model with ``pick`` (``--model auto``) chooses from the LR's file: the chain's own JPEG
    bytes when it ends in a JPEG encode, else no header at all (chosen as a lossless PNG is).
    """
    scale = model_scale(model)
    hr = crop_to_multiple(hr, scale)
    seed = image_seed(f"{set_name}/{image_name}")
    lr, encoded = chain.apply_encoded(hr, seed=seed, factor=scale)
    pick = getattr(model, "pick", None)
    if pick is not None:
        model = pick(encoded)  # None: no header, the clean model, as for a PNG
    started = time.perf_counter()
    sr = model.upscale(lr)
    seconds = time.perf_counter() - started
    bicubic = bicubic_upscale(lr, scale)
    return ImageScore(
        set=set_name,
        image=image_name,
        psnr=psnr(hr, sr, border=scale),
        ssim=ssim(hr, sr, border=scale),
        lpips=None if lpips is None else lpips(hr, sr),
        bicubic_psnr=psnr(hr, bicubic, border=scale),
        bicubic_ssim=ssim(hr, bicubic, border=scale),
        bicubic_lpips=None if lpips is None else lpips(hr, bicubic),
        seconds=seconds,
        model=model.name,
    )


def summarise(name: str, scores: Sequence[ImageScore]) -> SetScore:
    """Means of a set's scores (the literature averages per image, not per pixel)."""
    return SetScore(
        set=name,
        images=len(scores),
        psnr=float(np.mean([score.psnr for score in scores])),
        ssim=float(np.mean([score.ssim for score in scores])),
        lpips=_mean_or_none([score.lpips for score in scores]),
        bicubic_psnr=float(np.mean([score.bicubic_psnr for score in scores])),
        bicubic_ssim=float(np.mean([score.bicubic_ssim for score in scores])),
        bicubic_lpips=_mean_or_none([score.bicubic_lpips for score in scores]),
        seconds=float(sum(score.seconds for score in scores)),
    )


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    return None if any(value is None for value in values) else float(np.mean(values))


def evaluate(
    sets: Sequence[BenchmarkSet],
    model: SuperResolver,
    lpips: Lpips | None = None,
    on_image: Callable[[ImageScore], None] | None = None,
    degradation: str = DEFAULT_CHAIN,
) -> Evaluation:
    """Score every image of every set; ``on_image`` is called after each (for progress).

    ``degradation`` names the chain that makes the LR inputs (``degrade.parse_chain``).
    """
    chain = parse_chain(degradation)
    started = time.perf_counter()
    rows: list[ImageScore] = []
    summaries: list[SetScore] = []
    for bench in sets:
        scores = []
        for path in bench.images:
            score = score_image(
                load_hr(path),
                model,
                lpips,
                set_name=bench.name,
                image_name=path.name,
                chain=chain,
            )
            scores.append(score)
            if on_image is not None:
                on_image(score)
        rows.extend(scores)
        summaries.append(summarise(bench.name, scores))
    seconds = time.perf_counter() - started
    return Evaluation(
        model.name, tuple(rows), tuple(summaries), seconds, chain.name, model_scale(model)
    )


# -- tables ---------------------------------------------------------------------------------


def _triple(psnr_db: float, ssim_value: float, lpips_value: float | None) -> str:
    lpips_text = "n/a" if lpips_value is None else f"{lpips_value:.3f}"
    return f"{psnr_db:.2f} / {ssim_value:.4f} / {lpips_text}"


def markdown_table(evaluation: Evaluation) -> str:
    """Per-set means: set | bicubic PSNR/SSIM/LPIPS | model PSNR/SSIM/LPIPS (no final newline)."""
    lines = [
        f"| set | bicubic PSNR / SSIM / LPIPS | {evaluation.model} PSNR / SSIM / LPIPS |",
        "|---|---|---|",
    ]
    for s in evaluation.sets:
        bicubic = _triple(s.bicubic_psnr, s.bicubic_ssim, s.bicubic_lpips)
        lines.append(f"| {s.set} ({s.images}) | {bicubic} | {_triple(s.psnr, s.ssim, s.lpips)} |")
    return "\n".join(lines)


def text_table(evaluation: Evaluation) -> str:
    """Per-set means as aligned columns for the terminal (no final newline)."""
    width = max(len("set"), *(len(s.set) for s in evaluation.sets))
    model = evaluation.model
    lines = [
        f"{'set':<{width}}  images  bicubic PSNR  SSIM    LPIPS  "
        f"{model} PSNR  SSIM    LPIPS  s/image"
    ]
    for s in evaluation.sets:
        lines.append(
            f"{s.set:<{width}}  {s.images:>6}  {s.bicubic_psnr:>12.2f}  {s.bicubic_ssim:.4f}  "
            f"{_lpips_cell(s.bicubic_lpips)}  {s.psnr:>{len(model) + 5}.2f}  {s.ssim:.4f}  "
            f"{_lpips_cell(s.lpips)}  {s.seconds / s.images:>7.2f}"
        )
    return "\n".join(lines)


def _lpips_cell(value: float | None) -> str:
    return f"{'n/a':>5}" if value is None else f"{value:.3f}"


# -- comparison sheet -----------------------------------------------------------------------

CROP = 96
"""Side of the default crop in HR pixels."""
ZOOM = 2
"""Nearest-neighbour magnification of each panel in the sheet."""
GAP = 4
"""White pixels between panels and around the sheet."""
LABEL_HEIGHT = 14
"""Pixels above each panel for its label (Pillow's default font is ~11 px high)."""


@dataclass(frozen=True)
class Box:
    """A crop in HR pixels: left ``x``, top ``y``, width ``w``, height ``h``."""

    x: int
    y: int
    w: int
    h: int

    def snapped(self, multiple: int = SCALE) -> Box:
        """The smallest box on the ``multiple``-pixel grid that contains this one."""
        x0, y0 = self.x - self.x % multiple, self.y - self.y % multiple
        x1 = -(-(self.x + self.w) // multiple) * multiple
        y1 = -(-(self.y + self.h) // multiple) * multiple
        return Box(x0, y0, x1 - x0, y1 - y0)


def default_crop(hr: np.ndarray, size: int = CROP) -> Box:
    """The ``size`` x ``size`` window (on the 4 px grid) whose luma varies most: edges and
    texture, where upscalers differ. Smaller images give a window as large as they allow."""
    hr = crop_to_multiple(hr)
    height, width = hr.shape[:2]
    side_h, side_w = min(size, height), min(size, width)
    luma = hr.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    sums = _window_sums(luma, side_h, side_w)
    squares = _window_sums(luma * luma, side_h, side_w)
    variance = squares / (side_h * side_w) - (sums / (side_h * side_w)) ** 2
    grid = variance[::SCALE, ::SCALE]
    top, left = np.unravel_index(int(np.argmax(grid)), grid.shape)
    return Box(int(left) * SCALE, int(top) * SCALE, side_w, side_h)


def _window_sums(values: np.ndarray, h: int, w: int) -> np.ndarray:
    """Sum of every h x w window (top-left indexed), from a summed-area table."""
    table = np.pad(values.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return table[h:, w:] - table[:-h, w:] - table[h:, :-w] + table[:-h, :-w]


def _check_box(box: Box, height: int, width: int) -> Box:
    box = box.snapped()
    if box.w <= 0 or box.h <= 0:
        raise UsageError(f"crop {box.w}x{box.h} is empty")
    if box.x < 0 or box.y < 0 or box.x + box.w > width or box.y + box.h > height:
        raise UsageError(
            f"crop {box.x},{box.y},{box.w},{box.h} does not fit in the {width}x{height} image"
        )
    return box


def comparison_panels(
    hr: np.ndarray,
    models: Sequence[SuperResolver],
    box: Box | None = None,
    chain: Chain = PROTOCOL_CHAIN,
) -> tuple[Box, list[tuple[str, np.ndarray]]]:
    """The same crop, upscaled each way from one LR: bicubic, each model, HR.

    The LR is made by ``chain`` (default: the protocol's bicubic x1/4; noise seed 0).
    ``box`` is snapped to the 4 px grid (None: ``default_crop``). Only the LR region around
    the crop, with ``DEFAULT_TILE_PAD`` px of context, is upscaled: the same pixels as the
    whole image (see ``tiling``), at a fraction of the cost on large photos.
    """
    hr = crop_to_multiple(hr)
    height, width = hr.shape[:2]
    box = _check_box(default_crop(hr) if box is None else box, height, width)
    lr = chain.apply(hr, seed=0)
    pad = DEFAULT_TILE_PAD
    top, left = max(0, box.y // SCALE - pad), max(0, box.x // SCALE - pad)
    bottom = min(lr.shape[0], (box.y + box.h) // SCALE + pad)
    right = min(lr.shape[1], (box.x + box.w) // SCALE + pad)
    region = lr[top:bottom, left:right]
    y0, x0 = box.y - top * SCALE, box.x - left * SCALE

    def cut(up: np.ndarray) -> np.ndarray:
        return up[y0 : y0 + box.h, x0 : x0 + box.w]

    panels = [("bicubic", cut(bicubic_upscale(region)))]
    panels += [(model.name, cut(model.upscale(region))) for model in models]
    panels.append(("original (HR)", hr[box.y : box.y + box.h, box.x : box.x + box.w]))
    return box, panels


def sheet_size(panels: int, crop_w: int, crop_h: int, zoom: int = ZOOM) -> tuple[int, int]:
    """(width, height) of a sheet of ``panels`` crops of ``crop_w`` x ``crop_h`` HR pixels."""
    width = panels * crop_w * zoom + (panels + 1) * GAP
    height = LABEL_HEIGHT + crop_h * zoom + 2 * GAP
    return width, height


def draw_sheet(panels: Sequence[tuple[str, np.ndarray]], zoom: int = ZOOM) -> np.ndarray:
    """Labelled panels side by side on white, each magnified ``zoom``x (nearest neighbour)."""
    crop_h, crop_w = panels[0][1].shape[:2]
    sheet = Image.new("RGB", sheet_size(len(panels), crop_w, crop_h, zoom), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, (label, pixels) in enumerate(panels):
        left = GAP + i * (crop_w * zoom + GAP)
        draw.text((left, GAP), label, fill="black", font=font)
        big = Image.fromarray(pixels).resize((crop_w * zoom, crop_h * zoom), Image.NEAREST)
        sheet.paste(big, (left, GAP + LABEL_HEIGHT))
    return np.asarray(sheet)


def comparison_sheet(
    hr: np.ndarray,
    models: Sequence[SuperResolver],
    box: Box | None = None,
    zoom: int = ZOOM,
    chain: Chain = PROTOCOL_CHAIN,
) -> tuple[Box, np.ndarray]:
    """bicubic | each model | original (HR) for one crop of an HxWx3 uint8 HR image.

    Returns the crop used (snapped to the 4 px grid) and the sheet, HxWx3 uint8 RGB of
    ``sheet_size(len(models) + 2, box.w, box.h, zoom)``.
    """
    box, panels = comparison_panels(hr, models, box, chain)
    return box, draw_sheet(panels, zoom)
