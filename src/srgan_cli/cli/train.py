"""``srgan train``: train, resume, select or export a generator (``srgan_cli.train``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from srgan_cli.cli.options import CONTEXT_SETTINGS, F
from srgan_cli.errors import UsageError
from srgan_cli.tfstartup import quiet_tensorflow_startup

TRAIN_EPILOG = """\b
Examples:
  srgan train --stage psnr --run-dir runs/psnr --steps 20000
  srgan train --resume runs/psnr                      # continue exactly where it stopped
  srgan train --stage gan --run-dir runs/gan --init-weights runs/psnr/best.weights.h5 \\
      --vgg-weights ../shared/weights/vgg16_imagenet.npz
  srgan train --export runs/psnr --out weights         # -> weights/srresnet.weights.h5 + card
"""


def _train_config_options(func: F) -> F:
    """One click option per ``TrainConfig`` field, defaults taken from the dataclass."""
    import dataclasses

    from srgan_cli.train.config import TrainConfig

    for spec in reversed(dataclasses.fields(TrainConfig)):
        if spec.name == "generator":
            continue
        default = spec.default
        flag = "--" + spec.name.replace("_", "-")
        if isinstance(default, bool):  # --x/--no-x switches, not "--x true"
            flag = f"{flag}/--no-{flag[2:]}"
        func = click.option(flag, type=type(default), default=default, show_default=True)(func)
    return func


@click.command(epilog=TRAIN_EPILOG, context_settings=CONTEXT_SETTINGS)
@_train_config_options
@click.option("--blocks", type=int, default=16, show_default=True, help="Residual blocks.")
@click.option("--channels", type=int, default=64, show_default=True, help="Feature channels.")
@click.option("--batch-norm/--no-batch-norm", default=False, show_default=True)
@click.option(
    "--resume",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Continue the run in this directory from its checkpoint (its config is reused; "
    "only --max-minutes may change).",
)
@click.option(
    "--export",
    "export_run",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Do not train: export this run's generator to --out as a shipped model.",
)
@click.option(
    "--select",
    "select_run",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Do not train: pick this GAN run's snapshot to export (validation images only).",
)
@click.option(
    "--reference",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("weights/srresnet.weights.h5"),
    show_default=True,
    help="With --select: the PSNR-trained model the GAN's PSNR drop is measured against.",
)
@click.option("--max-drop", type=float, default=1.5, show_default=True, help="With --select.")
@click.option(
    "--lpips-weights",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("../shared/weights/lpips_alex.npz"),
    show_default=True,
    help="With --select: LPIPS-Alex weights (npz).",
)
@click.option(
    "--blend-with",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="With --export: interpolate the run's weights with these (ESRGAN's network "
    "interpolation; typically the PSNR-stage weights the GAN run started from). Repeat it "
    "to average several generators (they share 1 - alpha equally: a model soup).",
)
@click.option(
    "--alpha",
    type=float,
    default=1.0,
    show_default=True,
    help="With --blend-with: the run's share of the weights, 0 to 1.",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("weights"))
@click.option("--name", default=None, help="Exported model name [default: by stage].")
def train(
    resume: Path | None,
    export_run: Path | None,
    select_run: Path | None,
    reference: Path,
    max_drop: float,
    lpips_weights: Path,
    blend_with: tuple[Path, ...],
    alpha: float,
    out: Path,
    name: str | None,
    blocks: int,
    channels: int,
    batch_norm: bool,
    **options: Any,
) -> None:
    """Train the generator: stage psnr -> srresnet, stage gan -> srgan (docs/training.md)."""
    from srgan_cli.train.config import TrainConfig

    with quiet_tensorflow_startup():
        if select_run is not None:
            from srgan_cli.lpips import LpipsAlex
            from srgan_cli.train.select import select_snapshot

            result = select_snapshot(select_run, reference, LpipsAlex(lpips_weights), max_drop)
            click.echo(json.dumps(result["selected"]))
            return
        if alpha != 1.0 and not blend_with:
            raise UsageError("--alpha only goes with --blend-with")
        if export_run is not None:
            from srgan_cli.train.export import export_run as export

            try:
                exported = export(export_run, out, name, blend_with=blend_with, alpha=alpha)
            except ValueError as err:
                raise UsageError(str(err)) from err
            click.echo(f"exported {exported}")
            return
        if blend_with:
            raise UsageError("--blend-with only goes with --export")
        from srgan_cli.train import loop
    if resume is not None:
        saved = json.loads((resume / "config.json").read_text())
        cfg = TrainConfig(**{**saved, "max_minutes": options["max_minutes"]})
    else:
        generator = {"blocks": blocks, "channels": channels, "batch_norm": batch_norm}
        cfg = TrainConfig(**options, generator=generator)
    try:
        cfg.check()
    except ValueError as err:
        raise UsageError(str(err)) from err
    try:
        run_dir = loop.run(cfg, resume=resume is not None)
    except (FileExistsError, FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from err
    click.echo(f"run saved in {run_dir}")
