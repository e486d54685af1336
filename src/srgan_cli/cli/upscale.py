"""``srgan upscale``: INPUT arguments -> planned jobs -> ``pipeline.run_jobs`` -> summary.

Only the shell's concerns live here: options, stdin/stdout, progress bars, the summary line
and exit codes. Which inputs become which outputs is ``srgan_cli.jobs``; the work itself is
``srgan_cli.pipeline``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from srgan_cli import __version__
from srgan_cli.cli.options import (
    CONTEXT_SETTINGS,
    DEFAULT_COMPRESS_LEVEL,
    DEFAULT_MAX_PIXELS,
    check_model_choice,
    load_upscaler,
    model_options,
    quiet_tensorflow_startup,
    stderr_is_terminal,
    tta_option,
)
from srgan_cli.errors import UsageError
from srgan_cli.formats import DEFAULT_QUALITY, FORMATS
from srgan_cli.jobs import Job, plan_jobs
from srgan_cli.shards import parse_shard, select_shard
from srgan_cli.streams import binary_stdin, binary_stdout
from srgan_cli.worker import client as worker_client
from srgan_cli.worker.held import reporting_outputs

if TYPE_CHECKING:
    from srgan_cli.pipeline import ImageResult
    from srgan_cli.ray_engine import RaySettings

UPSCALE_EPILOG = """\b
Examples:
  srgan upscale photo.jpg                      # -> photo_x4.png
  srgan upscale photo.jpg -o big.png           # one input: -o is the output file
  srgan upscale phone.jpg --model real         # JPEGs, phone/web photos, noisy scans
  srgan upscale photo.jpg -o big.jpg --quality 90   # format from the extension
  srgan upscale photos/ -o big/ --format webp  # a batch as WebP: big/<stem>.webp
  srgan upscale photo.jpg --outscale 2         # 2x: the 4x model, then Lanczos to 2x
  srgan upscale photos/ -o big/ --report r.csv # a batch folder: -o is a directory
  srgan upscale photos/ -r -o big/ --skip-existing   # subfolders kept, up-to-date skipped
  srgan upscale 'photos/**/*.jpg' -o big/      # quoted: srgan expands the glob itself
  srgan upscale photos/ -r -o big/ --shard 2/8 # part 2 of 8 (job arrays: Slurm, k8s)
  srgan upscale /nfs/photos -r -o /nfs/big --ray auto   # on the Ray cluster
  srgan upscale s3://b/photos -r -o s3://b/big --ray auto   # object store, no shared mount
  cat small.png | srgan upscale - > big.png    # stdin to stdout

\b
Makefile pattern rule (SRGAN_WORKER=auto keeps the model loaded between calls):
  export SRGAN_WORKER=auto
  %_x4.png: %.png ; srgan upscale $< -o $@

\b
Exit codes: 0 all written or skipped, 1 some inputs failed (the rest are written),
2 usage error, 130 interrupted.
"""


@click.command(epilog=UPSCALE_EPILOG, context_settings=CONTEXT_SETTINGS)
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "-o",
    "--output",
    default=None,
    metavar="PATH",
    help="One input: the output file ('-' = stdout; .png .jpg .jpeg .webp .tif .tiff pick "
    "the format). Several inputs, a directory or a glob: the output directory (subfolders "
    "kept). Default: <stem>_x4.<ext> beside each input.",
)
@click.option("-r", "--recursive", is_flag=True, help="Descend into subdirectories of INPUT.")
@click.option(
    "--suffix",
    default=None,
    help="Added to the stem of outputs written beside their input [default: _x and the "
    "output scale, e.g. _x4].",
)
@model_options
@tta_option
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Write per-image sizes, tiles and timings to FILE (.json or .csv).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS, case_sensitive=False),
    default=None,
    help="Output format for directories, stdout and outputs beside their input "
    "[default: png; with -o FILE: its extension].",
)
@click.option(
    "--quality",
    type=click.IntRange(1, 100),
    default=DEFAULT_QUALITY,
    show_default=True,
    help="JPEG/WebP quality.",
)
@click.option(
    "--outscale",
    type=click.FloatRange(0, min_open=True),
    default=None,
    metavar="F",
    help="Output scale (0 < F <= the model's scale) [default: the model's scale]: the "
    "model, then a Lanczos resize to F x the input.",
)
@click.option(
    "--compress-level",
    type=click.IntRange(0, 9),
    default=DEFAULT_COMPRESS_LEVEL,
    show_default=True,
    help="PNG zlib level: 1 is fast, 9 is smallest.",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    metavar="N",
    help="Refuse inputs with more pixels (width x height) than this.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option(
    "--skip-existing",
    is_flag=True,
    help="Skip outputs at least as new as their input (make-style); redo older ones.",
)
@click.option(
    "--shard",
    default=None,
    metavar="I/N",
    help="Do only part I of N (1-based) of the images, for job arrays (Slurm, Kubernetes "
    "indexed Jobs): an image's part is a hash of its output path, the N parts are the whole.",
)
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="ADDRESS",
    help="Run on Ray (pip install 'srgan-cli[ray]'): 'local' starts one on this machine, "
    "'auto' or HOST:PORT joins a cluster. Paths must be reachable from every node "
    "(a shared filesystem, or URIs such as s3://bucket/dir).",
)
@click.option(
    "--ray-actors",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Model copies (Ray actors) in all [default: per node, its CPUs - 1 over "
    "--ray-cpus-per-actor, as its memory allows].",
)
@click.option(
    "--ray-cpus-per-actor",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    metavar="C",
    help="CPUs reserved for, and TensorFlow threads of, each Ray actor.",
)
@click.option(
    "--no-worker",
    is_flag=True,
    help="Run in this process even when a worker holding the model runs (srgan worker).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars and no summary line.")
@click.pass_context
def upscale(
    ctx: click.Context,
    inputs: tuple[str, ...],
    output: str | None,
    recursive: bool,
    suffix: str | None,
    model: str | None,
    weights: Path | None,
    precision: str,
    tile: int | None,
    tile_pad: int,
    tta: bool,
    report: Path | None,
    output_format: str | None,
    quality: int,
    outscale: float | None,
    compress_level: int,
    max_pixels: int,
    overwrite: bool,
    skip_existing: bool,
    shard: str | None,
    ray_address: str | None,
    ray_actors: int | None,
    ray_cpus_per_actor: float,
    no_worker: bool,
    quiet: bool,
) -> None:
    """Upscale images 4x (or --outscale) to PNG, JPEG, WebP or TIFF.

    INPUT is an image file, a directory (its image files; -r to descend), a glob pattern
    in quotes ('**' matches any depth) or '-' for standard input. Files and directories
    (and -o) may also be pyarrow filesystem URIs: s3://bucket/dir, file:///abs/dir.
    """
    started = time.perf_counter()
    if not no_worker:
        served = worker_client.forward(ctx)  # light: no numpy or TensorFlow on this path
        if served is not None:
            ctx.exit(served)
    from srgan_cli import pipeline

    if report is not None:
        pipeline.check_report_path(report)
    part = None if shard is None else parse_shard(shard)
    own_scale = model_scale(model, weights)
    if outscale is not None and outscale > own_scale:
        raise UsageError(f"--outscale must be <= {own_scale} (the model's scale), got {outscale:g}")
    scale = own_scale if outscale is None else outscale
    if suffix is None:
        suffix = f"_x{scale:g}"
    jobs = plan_jobs(
        inputs, output, recursive=recursive, suffix=suffix, output_format=output_format
    )
    if part is not None:
        jobs = select_shard(jobs, part, output)
    model_kwargs = {
        "model": model,
        "weights": weights,
        "precision": precision,
        "tile": tile,
        "tile_pad": tile_pad,
        "tta": tta,
    }
    run_kwargs = {
        "compress_level": compress_level,
        "quality": quality,
        "outscale": outscale,
        "max_pixels": max_pixels,
        "overwrite": overwrite,
        "skip_existing": skip_existing,
    }
    show_progress = not quiet and stderr_is_terminal()
    if ray_address is None:
        results, header = _run_here(jobs, model_kwargs, run_kwargs, started, show_progress)
    else:
        from srgan_cli.ray_engine import RaySettings

        settings = RaySettings(ray_address, ray_actors, ray_cpus_per_actor)
        results, header = _run_on_ray(
            jobs, settings, model_kwargs, run_kwargs, started, show_progress
        )
    if report is not None:
        content = pipeline.build_report(results, version=__version__, **header)
        pipeline.write_report(content, report)
    if not quiet:
        seconds = header["startup_s"] + header["total_s"]
        click.echo(summary_line(results, seconds), err=True)
    if any(result.error is not None for result in results):
        ctx.exit(1)


def _run_here(
    jobs: Sequence[Job],
    model_kwargs: dict[str, Any],
    run_kwargs: dict[str, Any],
    started: float,
    show_progress: bool,
) -> tuple[list[ImageResult], dict[str, Any]]:
    """The jobs in this process; the results and the report's header fields."""
    from srgan_cli import pipeline

    stdout = _stdout_for(jobs)
    stdin_bytes = _read_stdin() if any(job.input is None for job in jobs) else None
    upscaler = load_upscaler(**model_kwargs)
    startup_s = time.perf_counter() - started
    processing_started = time.perf_counter()
    with _Progress(len(jobs), enabled=show_progress) as progress:
        results = pipeline.run_jobs(
            upscaler,
            jobs,
            **run_kwargs,
            stdin_bytes=stdin_bytes,
            stdout=stdout,
            on_image=reporting_outputs(progress.on_image),
            on_tile=progress.on_tile,
        )
    header = {
        "model": upscaler.name,
        "arch": upscaler.spec.arch,
        "scale": upscaler.scale,
        "precision": upscaler.precision_used,
        "threads": pipeline.inference_threads(),
        "startup_s": startup_s,
        "total_s": time.perf_counter() - processing_started,  # the contract: after startup
    }
    return results, header


def _run_on_ray(
    jobs: Sequence[Job],
    settings: RaySettings,
    model_kwargs: dict[str, Any],
    run_kwargs: dict[str, Any],
    started: float,
    show_progress: bool,
) -> tuple[list[ImageResult], dict[str, Any]]:
    """The jobs on Ray (``ray_engine``); the model loads in each actor, not here. Its card
    is checked here, so missing or corrupt weights fail before any worker starts."""
    from srgan_cli import ray_engine
    from srgan_cli.weights import card_for, resolve, spec_of

    ray_engine.check_reachable(jobs)
    check_model_choice(model_kwargs["model"], model_kwargs["weights"])
    card = card_for(resolve(model_kwargs["model"], model_kwargs["weights"]))
    weights = model_kwargs["weights"]
    upscaler_kwargs = {**model_kwargs, "weights": None if weights is None else weights.resolve()}
    run_options = dict(run_kwargs)
    overwrite, skip_existing = run_options.pop("overwrite"), run_options.pop("skip_existing")
    startup_s = time.perf_counter() - started
    processing_started = time.perf_counter()
    with _Progress(len(jobs), enabled=show_progress) as progress:
        run = ray_engine.run_on_ray(
            jobs,
            settings,
            upscaler_kwargs=upscaler_kwargs,
            run_kwargs=run_options,
            overwrite=overwrite,
            skip_existing=skip_existing,
            on_image=progress.on_image,
        )
    spec = spec_of(card)
    header = {
        "model": card.name,
        "arch": spec.arch,
        "scale": spec.scale,
        "precision": run.precision,
        "threads": settings.threads,
        "startup_s": startup_s,
        "total_s": time.perf_counter() - processing_started,
    }
    return run.results, header


def model_scale(model: str | None, weights: Path | None) -> int:
    """The scale of the model a run will use, from its card or its file (no TensorFlow, except
    to read a TF checkpoint not converted yet), so outputs can be named before it loads."""
    from srgan_cli.weights import model_spec, resolve

    check_model_choice(model, weights)
    with quiet_tensorflow_startup():
        return model_spec(resolve(model, weights)).scale


def _stdout_for(jobs: Sequence[Job]) -> BinaryIO | None:
    """The binary stdout when a job writes there; refuse to spray PNG bytes on a terminal."""
    if all(job.output is not None for job in jobs):
        return None
    stream = binary_stdout()
    if stream.isatty():
        raise UsageError("refusing to write image data to a terminal; use -o FILE or redirect")
    return stream


def _read_stdin() -> bytes:
    data = binary_stdin().read()
    if not data:
        raise UsageError("standard input is empty")
    return data


def summary_line(results: Sequence[ImageResult], seconds: float) -> str:
    """'srgan: 3 images, 12.6 megapixels out, 4.2 s' plus skipped and failed counts."""
    written = [r for r in results if r.ok and r.out_size is not None]
    megapixels = sum(r.out_size[0] * r.out_size[1] for r in written if r.out_size) / 1e6
    parts = [
        f"{len(written)} image{'' if len(written) == 1 else 's'}",
        f"{megapixels:.2f} megapixels out",
        f"{seconds:.1f} s",
    ]
    skipped = sum(1 for r in results if r.skipped)
    failed = sum(1 for r in results if r.error is not None)
    if skipped:
        parts.append(f"{skipped} skipped")
    if failed:
        parts.append(f"{failed} failed")
    return "srgan: " + ", ".join(parts)


class _Progress:
    """tqdm bars on stderr: one over images, one over tiles for images with several tiles.

    Failures are printed (one line each) whether or not the bars are shown.
    """

    def __init__(self, total: int, *, enabled: bool) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.enabled = enabled
        self.images = tqdm(total=total, unit="img", file=sys.stderr, disable=not enabled)
        self.tiles: Any = None

    def on_tile(self, done: int, total: int) -> None:
        if not self.enabled or total <= 1:
            return
        if self.tiles is None:
            self.tiles = self._tqdm(total=total, unit="tile", leave=False, file=sys.stderr)
        self.tiles.update(1)
        if done >= total:
            self._close_tiles()

    def on_image(self, result: ImageResult) -> None:
        if result.error is not None:
            self._message(f"Error: {result.error}")
        self.images.update(1)

    def _message(self, text: str) -> None:
        if self.enabled:
            self._tqdm.write(text, file=sys.stderr)
        else:
            click.echo(text, err=True)

    def _close_tiles(self) -> None:
        if self.tiles is not None:
            self.tiles.close()
            self.tiles = None

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close_tiles()
        self.images.close()
