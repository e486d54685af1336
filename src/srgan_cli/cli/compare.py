"""``srgan compare``: a side-by-side sheet of bicubic, each model and the original."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from srgan_cli.cli.options import (
    CONTEXT_SETTINGS,
    DEFAULT_TILE_PAD,
    degradation_option,
    load_upscaler,
    precision_option,
)
from srgan_cli.errors import UsageError
from srgan_cli.weights import MODEL_NAMES

if TYPE_CHECKING:
    from srgan_cli.evaluate import Box
    from srgan_cli.pipeline import Upscaler

DEFAULT_COMPARE_MODELS = "srresnet,srgan"
DEFAULT_COMPARE_ZOOM = 2

COMPARE_EPILOG = """\b
Examples:
  srgan compare photo.png -o sheet.png                  # the most detailed 96x96 crop
  srgan compare photo.png -o sheet.png --crop 120,64,96,96 --models srgan
  srgan compare photo.png -o sheet.png --models srgan,runs/gan/best.weights.h5
  srgan compare photo.png -o sheet.png --models srgan,real --degradation bicubic+jpeg75
"""


@click.command(epilog=COMPARE_EPILOG, context_settings=CONTEXT_SETTINGS)
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="The PNG sheet to write.",
)
@click.option(
    "--crop",
    default=None,
    metavar="X,Y,W,H",
    help="Region of IMAGE in its own pixels, widened to the 4 px grid [default: the 96x96 "
    "window with the most detail].",
)
@click.option(
    "--models",
    default=DEFAULT_COMPARE_MODELS,
    show_default=True,
    metavar="LIST",
    help="Comma-separated shipped model names or .weights.h5 files, one panel each.",
)
@click.option(
    "--zoom",
    type=click.IntRange(1, 8),
    default=DEFAULT_COMPARE_ZOOM,
    show_default=True,
    help="Nearest-neighbour magnification of every panel.",
)
@degradation_option
@precision_option
def compare(
    image: Path,
    output: Path,
    crop: str | None,
    models: str,
    zoom: int,
    degradation: str,
    precision: str,
) -> None:
    """Draw bicubic | each model | original side by side, for one crop of an HR IMAGE.

    IMAGE is taken as the ground truth: it is downscaled 4x as in 'srgan eval' and upscaled
    back each way, so the panels show how much of its detail each method recovers.
    """
    from srgan_cli import evaluate
    from srgan_cli.degrade import parse_chain
    from srgan_cli.imageio import encode_png, write_atomic

    chain = parse_chain(degradation)
    box = _parse_crop(crop)
    hr = evaluate.load_hr(image)
    upscalers = [_compare_upscaler(item, precision) for item in _model_list(models)]
    used, sheet = evaluate.comparison_sheet(hr, upscalers, box, zoom, chain)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, encode_png(sheet, None, "RGB", compress_level=9))
    height, width = sheet.shape[:2]
    click.echo(
        f"srgan compare: {output} ({width}x{height}), crop {used.x},{used.y},{used.w},{used.h} "
        f"of {image}, {chain.name}",
        err=True,
    )


def _parse_crop(text: str | None) -> Box | None:
    """'x,y,w,h' (integers, w and h > 0) -> ``evaluate.Box``; None -> None (automatic)."""
    if text is None:
        return None
    from srgan_cli.evaluate import Box

    try:
        x, y, w, h = (int(part) for part in text.split(","))
    except ValueError:
        raise UsageError(f"--crop {text!r} must be four integers X,Y,W,H") from None
    if min(x, y) < 0 or min(w, h) <= 0:
        raise UsageError(f"--crop {text!r}: X and Y must be >= 0, W and H > 0")
    return Box(x, y, w, h)


def _model_list(text: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise UsageError("--models is empty")
    return items


def _compare_upscaler(item: str, precision: str) -> Upscaler:
    """A shipped model name or a model file (.weights.h5, .pth, .safetensors, a TF
    checkpoint) -> its loaded ``Upscaler``; the sheet's crops are x4, so only x4 models."""
    from srgan_cli import SCALE

    if item in MODEL_NAMES:
        return load_upscaler(item, None, precision, None, DEFAULT_TILE_PAD)
    from srgan_cli.modelfile.tfckpt import checkpoint_prefix

    if not Path(item).is_file() and checkpoint_prefix(item) is None:
        raise UsageError(
            f"--models: {item!r} is neither a shipped model ({', '.join(MODEL_NAMES)}) "
            "nor a model file"
        )
    upscaler = load_upscaler(None, Path(item), precision, None, DEFAULT_TILE_PAD)
    if upscaler.scale != SCALE:
        raise UsageError(f"--models: {item!r} is an x{upscaler.scale} model; the sheet needs x4")
    return upscaler
