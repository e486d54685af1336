"""``srgan eval``: PSNR, SSIM and LPIPS of the model against bicubic on benchmark folders."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from srgan_cli import __version__
from srgan_cli.cli.options import (
    CONTEXT_SETTINGS,
    degradation_option,
    file_option,
    load_upscaler,
    model_options,
    stderr_is_terminal,
    tta_option,
)
from srgan_cli.errors import UsageError
from srgan_cli.tfstartup import quiet_tensorflow_startup

# Mirrors lpips.DEFAULT_LPIPS_WEIGHTS (importing lpips would pull in numpy for --help);
# tests/test_evaluate.py checks that they agree.
DEFAULT_LPIPS_WEIGHTS_HELP = "../shared/weights/lpips_alex.npz"

EVAL_EPILOG = """\b
Examples:
  srgan eval ../shared/datasets/benchmark/Set5 --model srresnet
  srgan eval Set5 Set14 BSD100 --json eval.json --markdown
  srgan eval Set5 --weights runs/gan/best.weights.h5 --lpips-weights lpips_alex.npz
  srgan eval BSD100 --model real --degradation bicubic+jpeg75   # photos from the wild
  srgan eval BSD100 --model auto --degradation lanczos+jpeg80    # per image, from the JPEG

\b
Protocol: crop HR to a multiple of 4, Pillow bicubic x1/4, upscale (tiling included), then
PSNR and SSIM (Gaussian 11x11, sigma 1.5) on the Y channel (BT.601, 16-235) with a 4 px
border shaved, and LPIPS-Alex on RGB. Pillow bicubic x4 is scored alongside as the baseline.
--degradation CHAIN replaces the x1/4 step: a resizer (bicubic, bilinear, lanczos, box,
nearest), then '+'-joined jpegQ (quality Q) and noiseS (Gaussian, sigma S grey levels) steps
in order, e.g. lanczos+jpeg80; noise is seeded per image, so every row is reproducible.
"""


@click.command("eval", epilog=EVAL_EPILOG, context_settings=CONTEXT_SETTINGS)
@click.argument(
    "directories",
    nargs=-1,
    required=True,
    metavar="DIR...",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@model_options
@tta_option
@degradation_option
@file_option(
    "--json", "json_path", help="Also write every image's scores and the set means to FILE."
)
@click.option("--markdown", is_flag=True, help="Print the table as markdown.")
@click.option(
    "--lpips-weights",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    metavar="PATH",
    help=f"LPIPS-Alex weights (lpips_alex.npz) [default: {DEFAULT_LPIPS_WEIGHTS_HELP} if it "
    "exists, else LPIPS is skipped].",
)
@click.option("--record", is_flag=True, help="Store the per-set means in the model's weight card.")
def eval_command(
    directories: tuple[Path, ...],
    model: str | None,
    weights: Path | None,
    precision: str,
    tile: int | None,
    tile_pad: int,
    tta: bool,
    degradation: str,
    json_path: Path | None,
    markdown: bool,
    lpips_weights: Path | None,
    record: bool,
) -> None:
    """Score the model against bicubic on folders of HR images: PSNR, SSIM and LPIPS.

    Each DIR is one set (its image files, subfolders ignored). Per-set means go to stdout,
    progress and notes to stderr.
    """
    started = time.perf_counter()
    from tqdm import tqdm

    from srgan_cli import evaluate
    from srgan_cli.degrade import DEFAULT_CHAIN, parse_chain
    from srgan_cli.imageio import write_atomic
    from srgan_cli.weights import is_auto

    chain = parse_chain(degradation).name  # a bad chain fails before the model loads
    if record and (chain != DEFAULT_CHAIN or tta):
        raise UsageError("--record stores the published protocol only (no --degradation/--tta)")
    if record and is_auto(model, weights):
        raise UsageError("--record stores one model's scores: give --model or --weights")
    sets = evaluate.benchmark_sets(directories)
    upscaler = load_upscaler(model, weights, precision, tile, tile_pad, tta)
    lpips, lpips_path = _load_lpips(lpips_weights)
    total = sum(len(bench.images) for bench in sets)
    with tqdm(total=total, unit="img", file=sys.stderr, disable=not stderr_is_terminal()) as bar:
        result = evaluate.evaluate(
            sets, upscaler, lpips, on_image=lambda score: bar.update(1), degradation=chain
        )
    if json_path is not None:
        content = result.to_dict(
            version=__version__,
            **_weights_fields(upscaler),
            precision=upscaler.precision_used,
            tile=upscaler.tile,
            tile_pad=upscaler.tile_pad,
            tta=tta,
            lpips_weights=None if lpips_path is None else str(lpips_path),
        )
        json_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(json_path, (json.dumps(content, indent=2) + "\n").encode("utf-8"))
    click.echo(evaluate.markdown_table(result) if markdown else evaluate.text_table(result))
    if record:
        from srgan_cli.weights import record_metrics

        means = {
            row.set: {**asdict(row), "precision": upscaler.precision_used} for row in result.sets
        }
        record_metrics(upscaler.path, means)
    seconds = time.perf_counter() - started
    click.echo(
        f"srgan eval: {total} images in {len(sets)} set{'' if len(sets) == 1 else 's'}, "
        f"{upscaler.name} ({upscaler.precision_used}{', tta' if tta else ''}), {chain}, "
        f"{seconds:.1f} s",
        err=True,
    )


def _weights_fields(upscaler: Any) -> dict[str, Any]:
    """``weights`` and ``sha256`` for the JSON: strings for one model, by name for ``auto``."""
    from srgan_cli.modelset import members

    held = members(upscaler)
    if len(held) == 1:
        (one,) = held.values()
        return {"weights": str(one.path), "sha256": one.card.sha256}
    return {
        "weights": {name: str(member.path) for name, member in held.items()},
        "sha256": {name: member.card.sha256 for name, member in held.items()},
    }


def _load_lpips(path: Path | None) -> tuple[Callable[[Any, Any], float] | None, Path | None]:
    """LPIPS-Alex from ``path``, or from the default path when it exists; else a note, None."""
    from srgan_cli.lpips import default_weights_path

    if path is None:
        path = default_weights_path()
        if not path.is_file():
            click.echo(f"note: LPIPS skipped: no weights at {path} (use --lpips-weights)", err=True)
            return None, None
    with quiet_tensorflow_startup():
        from srgan_cli.lpips import LpipsAlex

        return LpipsAlex(path), path
