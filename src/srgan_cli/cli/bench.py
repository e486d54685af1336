"""``srgan bench``: upscaling speed against this CPU's matmul peak (``srgan_cli.bench``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from srgan_cli.cli.options import CONTEXT_SETTINGS, load_upscaler, model_options


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--size",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    metavar="N",
    help="Side of the random square test image in input pixels (output 4N x 4N).",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    metavar="R",
    help="Timed runs after one untimed warm-up; rates use the fastest.",
)
@model_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def bench(
    size: int,
    repeats: int,
    model: str | None,
    weights: Path | None,
    precision: str,
    tile: int | None,
    tile_pad: int,
    as_json: bool,
) -> None:
    """Measure upscaling speed: px/s, GFLOP/s and the share of this CPU's matmul peak.

    The peak is numpy's float32 matmul rate (numpy has no bf16 matmul, so bf16 runs are
    compared with it too). Other busy processes slow every figure down.
    """
    from srgan_cli.weights import SINGLE_DEFAULT, is_auto

    if is_auto(model, weights):
        model = SINGLE_DEFAULT  # auto sends header-less arrays (what bench times) to srgan
    upscaler = load_upscaler(model, weights, precision, tile, tile_pad)
    from srgan_cli.bench import benchmark, report_lines

    result = benchmark(upscaler, size=size, repeats=repeats)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        for line in report_lines(result):
            click.echo(line)
