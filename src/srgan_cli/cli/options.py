"""What every ``srgan`` command shares: context settings, the model options and their loader.

The model options are defined once (``model_options``) and every command that runs the model
builds its ``Upscaler`` with ``load_upscaler``, so ``upscale``, ``serve``, ``eval`` and
``bench`` cannot drift apart. Nothing here imports numpy or TensorFlow at module level.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from srgan_cli.autoselect import JPEG_THRESHOLD
from srgan_cli.errors import UsageError
from srgan_cli.weights import DEFAULT_MODEL, MODEL_CHOICES

if TYPE_CHECKING:
    from srgan_cli.modelset import AnyUpscaler

# Defaults shown in --help. They mirror imageio/tiling/pipeline constants, which cannot be
# imported here without pulling in numpy; tests/test_cli.py checks that they agree.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
DEFAULT_TILE_PAD = 32
DEFAULT_COMPRESS_LEVEL = 1
DEFAULT_MAX_PIXELS = 50_000_000

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def file_option(*decls: str, help: str, metavar: str | None = None) -> Callable[[F], F]:
    """An optional option naming one file (not a folder) as a ``Path``; None when absent.
    Click shows it as FILE unless ``metavar`` says otherwise."""
    return click.option(
        *decls,
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        metavar=metavar,
        help=help,
    )


model_option = click.option(
    "--model",
    type=click.Choice(MODEL_CHOICES),
    default=None,
    help=f"Shipped model to use [default: {DEFAULT_MODEL}: real for JPEGs of quality "
    f"{JPEG_THRESHOLD:g} or less and lossy WebPs, srgan for everything else, chosen per image "
    "from its header].",
)
weights_option = file_option(
    "--weights",
    help="A .weights.h5 file (with its .json card) instead of a shipped model, or a model "
    "to import: .pth/.pt/.ckpt, .safetensors or a TF checkpoint prefix (converted once, then "
    "cached).",
)
precision_option = click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="auto",
    show_default=True,
    help="Compute precision; auto = bf16 when the CPU has AVX512_BF16 or AMX, else fp32.",
)
tile_option = click.option(
    "--tile",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Tile side in input pixels [default: automatic, sized to keep the process under ~2.3 GB]; "
    "0 = the whole image at once.",
)
tile_pad_option = click.option(
    "--tile-pad",
    type=click.IntRange(min=0),
    default=DEFAULT_TILE_PAD,
    show_default=True,
    metavar="P",
    help="Input pixels of context around each tile (hides the seams).",
)
MODEL_OPTIONS = (model_option, weights_option, precision_option, tile_option, tile_pad_option)
degradation_option = click.option(
    "--degradation",
    default="bicubic",
    show_default=True,
    metavar="CHAIN",
    help="How LR inputs are made from HR images: a resizer (bicubic, bilinear, lanczos, box, "
    "nearest), then '+'-joined jpegQ / noiseS steps, e.g. bicubic+jpeg75; bicubic is the "
    "published protocol.",
)
tta_option = click.option(
    "--tta",
    is_flag=True,
    help="Self-ensemble: average the model over the 8 flips/rotations of each tile "
    "(slightly more accurate, 8x the model time).",
)


def count_option(flag: str, default: int, help: str) -> Callable[[F], F]:
    """A whole number >= 1 shown as N with its default (--max-pixels, --max-models, ...)."""
    return click.option(
        flag, type=click.IntRange(min=1), default=default, show_default=True, metavar="N", help=help
    )


def model_options(func: F) -> F:
    """Add --model/--weights/--precision/--tile/--tile-pad (pass them to ``load_upscaler``)."""
    for option in reversed(MODEL_OPTIONS):
        func = option(func)
    return func


def load_upscaler(
    model: str | None,
    weights: Path | None,
    precision: str,
    tile: int | None,
    tile_pad: int,
    tta: bool = False,
) -> AnyUpscaler:
    """Build the ``Upscaler`` (or the ``auto`` ``ModelSet``) from the shared model options
    (imports TensorFlow).

    Inside a worker (``srgan_cli.worker``) the command runs with the worker's model in its
    click context object; that model is handed out instead, so the call skips the load.
    """
    check_model_choice(model, weights)
    from srgan_cli.worker.held import injected_model

    injected = injected_model()
    if injected is not None:
        return injected.held.take(model, weights, precision, tile, tile_pad, tta)
    from srgan_cli.modelset import load_model  # weights.load_generator keeps TF quiet

    return load_model(model, weights, precision=precision, tile=tile, tile_pad=tile_pad, tta=tta)


def check_model_choice(model: str | None, weights: Path | None) -> None:
    """--model and --weights both name the weights: refuse both at once (exit 2). Separate
    from ``load_upscaler`` for front ends that load the model elsewhere (``--ray``)."""
    if model is not None and weights is not None:
        raise UsageError("give --model or --weights, not both")


def stderr_is_terminal() -> bool:
    """Whether progress bars make sense: stderr is a terminal (False for pipes and tests)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
