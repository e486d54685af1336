"""``srgan import FILE``: convert a foreign model file into our ``.weights.h5`` plus its card."""

from __future__ import annotations

from pathlib import Path

import click

from srgan_cli.cli.options import CONTEXT_SETTINGS, file_option
from srgan_cli.errors import UsageError
from srgan_cli.tfstartup import quiet_tensorflow_startup

IMPORT_EPILOG = """\b
Examples:
  srgan import RealESRGAN_x4plus.pth           # -> RealESRGAN_x4plus.weights.h5 + .json
  srgan import 4x-UltraSharp.safetensors -o sharp.weights.h5 --license "CC-BY-NC-SA-4.0"
  srgan import old-service/model               # the seed's TF1 checkpoint (model.index)
  srgan upscale photo.jpg --weights sharp.weights.h5

\b
--weights also takes the original file directly (converted once, then cached).
Exit codes: 0 written, 2 unknown or damaged file, or a bad option.
"""


@click.command("import", epilog=IMPORT_EPILOG, context_settings=CONTEXT_SETTINGS)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@file_option(
    "-o",
    "--output",
    metavar="NAME.weights.h5",
    help="Where to write [default: <stem of FILE>.weights.h5 in the current directory].",
)
@click.option("--name", default=None, help="The model's name in its card [default: FILE's stem].")
@click.option("--license", "license_text", default="", help="License text kept in the card.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
def import_command(
    file: Path, output: Path | None, name: str | None, license_text: str, overwrite: bool
) -> None:
    """Read FILE (.pth/.pt/.ckpt, .safetensors or a TF checkpoint prefix), identify its
    architecture, convert it, check it on a small random input, and write our .weights.h5
    with a JSON card (architecture, scale, source file and sha256, license). A grayscale
    model runs on an image's luma and writes it gray."""
    from srgan_cli import importer, weights

    path = weights.resolve(weights=file)
    if weights.is_ours(path):
        raise UsageError(f"{file} is already a {weights.WEIGHTS_SUFFIX} model; nothing to import")
    model_name = name or importer.default_name(path)
    out = output or Path(f"{model_name}{weights.WEIGHTS_SUFFIX}")
    if out.exists() and not overwrite:
        raise UsageError(f"{out} exists; use --overwrite to replace it")
    with quiet_tensorflow_startup():
        card, spec = importer.import_file(path, out, name=model_name, license=license_text)
    click.echo(f"{file}: {spec.describe()}")
    click.echo(f"wrote {out} and {weights.card_path(out).name} (sha256 {card.sha256[:12]})")
