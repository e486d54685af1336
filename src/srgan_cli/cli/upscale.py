"""``srgan upscale``: INPUT arguments -> planned jobs -> ``pipeline.run_jobs`` -> summary.

Only the shell's concerns live here: options, stdin/stdout, progress bars, the summary line
and exit codes. Which inputs become which outputs is ``srgan_cli.jobs``; the work itself is
``srgan_cli.pipeline``. Every job is decided before TensorFlow is imported (``_decide``:
existing outputs, ``--update``, and what an input's header already refuses), so a run with
nothing left to do never loads the model, nor asks a worker.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click
from click.core import ParameterSource

from srgan_cli import SCALE, __version__
from srgan_cli.cli.options import (
    CONTEXT_SETTINGS,
    DEFAULT_COMPRESS_LEVEL,
    DEFAULT_MAX_PIXELS,
    check_model_choice,
    count_option,
    file_option,
    load_upscaler,
    model_options,
    stderr_is_terminal,
    tta_option,
)
from srgan_cli.errors import ModelFileError, UsageError, WeightsError
from srgan_cli.formats import DEFAULT_QUALITY, FORMATS
from srgan_cli.jobs import Job, OutputClaims, Plan, check_existing_choice, plan_run
from srgan_cli.results import (
    ImageResult,
    build_report,
    check_report_path,
    decide_outputs,
    failed,
    write_report,
)
from srgan_cli.shards import parse_shard, select_shard
from srgan_cli.streams import binary_stdin, binary_stdout
from srgan_cli.worker import client as worker_client
from srgan_cli.worker.held import reporting_outputs

if TYPE_CHECKING:
    from srgan_cli.ray_engine import RaySettings
    from srgan_cli.weights import WeightCard

UPSCALE_EPILOG = """\b
Examples:
  srgan upscale photo.jpg                      # -> photo_x4.png (model: auto, see --model)
  srgan upscale photo.jpg -o big.png           # one input: -o is the output file
  srgan upscale scan.png --model real          # force one model: noisy scans, resized web images
  srgan upscale photo.jpg -o big.jpg --quality 90   # format from the extension
  srgan upscale photos/ -o big/ --format webp  # a batch as WebP: big/<stem>.webp
  srgan upscale photo.jpg --outscale 2         # photo_x2.png: the 4x model, Lanczos to 2x
  srgan upscale photos/ --update               # again: only new or changed photos
  srgan upscale photos/ -o big/ --report r.csv # a batch folder: -o is a directory
  srgan upscale photos/ -r -o big/ --skip-existing   # subfolders kept, existing kept
  srgan upscale 'photos/**/*.jpg' -o big/      # quoted: srgan expands the glob itself
  srgan upscale photos/ -r -o big/ --shard 2/8 # part 2 of 8 (job arrays: Slurm, k8s)
  srgan upscale /nfs/photos -r -o /nfs/big --ray auto   # on the Ray cluster
  srgan upscale s3://b/photos -r -o s3://b/big --ray auto   # object store, no shared mount
  cat small.png | srgan upscale - > big.png    # stdin to stdout

\b
Makefile (make decides what is stale, so --overwrite; SRGAN_WORKER=auto keeps the model
loaded between calls):
  export SRGAN_WORKER=auto
  SRCS := $(filter-out %_x4.png,$(wildcard *.png))
  all: $(SRCS:.png=_x4.png)
  %_x4.png: %.png ; srgan upscale $< -o $@ --overwrite

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
    "the format; DIR/ or an existing directory: DIR/<stem>.<ext>). Several inputs, a "
    "directory or a glob: the output directory (subfolders kept). Default: "
    "<stem>_x4.<ext> beside each input (_x2 with --outscale 2).",
)
@click.option("-r", "--recursive", is_flag=True, help="Descend into subdirectories of INPUT.")
@click.option(
    "--suffix",
    default=None,
    help="Added to the stem of outputs written beside their input [default: _x and the "
    "output scale: _x4 for a x4 model, _x2 with --outscale 2 or a x2 model, _x1.5 with "
    "--outscale 1.5].",
)
@model_options
@tta_option
@file_option("--report", help="Write per-image sizes, tiles and timings to FILE (.json or .csv).")
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
@count_option(
    "--max-pixels", DEFAULT_MAX_PIXELS, "Refuse inputs with more pixels (width x height) than this."
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace existing outputs (in a Makefile rule: make already decided).",
)
@click.option(
    "--update",
    is_flag=True,
    help="Write outputs that are missing or older than their input; skip the rest "
    "(make's rule, rsync -u).",
)
@click.option(
    "--skip-existing",
    is_flag=True,
    help="Keep every existing output, whatever its age (resume an interrupted run).",
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
    update: bool,
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
    Directories and globs leave out earlier outputs (<stem>_x4.png beside <stem>.png).
    """
    started = time.perf_counter()
    check_model_choice(model, weights)
    check_existing_choice(overwrite=overwrite, skip_existing=skip_existing, update=update)
    if report is not None:
        check_report_path(report)
    part = None if shard is None else parse_shard(shard)
    cards = _requested_cards(model, weights)
    scale = _output_scale(cards, outscale)
    plan = plan_run(
        inputs,
        output,
        recursive=recursive,
        scale=scale,
        suffix=suffix,
        output_format=output_format,
    )
    jobs = plan.jobs if part is None else select_shard(plan.jobs, part, output)
    if ray_address is not None:
        from srgan_cli.ray_engine import check_reachable

        check_reachable(jobs)
    claims = OutputClaims(jobs, overwrite=overwrite, skip_existing=skip_existing, update=update)
    decided, todo = decide_outputs(jobs, claims)
    if todo and not no_worker:
        served = worker_client.forward(ctx)  # light: no numpy or TensorFlow on this path
        if served is not None:
            ctx.exit(served)
    for warning in ignored_options(ctx, jobs, cards if tta else []):
        click.echo(f"Warning: {warning}", err=True)
    if ray_address is None:  # on Ray the actors read the headers, in parallel
        todo = _refuse_from_headers(todo, decided, scale, max_pixels)
    missing = _missing_results(plan)
    early = [*missing, *(decided[index] for index in sorted(decided))]
    for result in early:
        if result.error is not None:
            click.echo(f"Error: {result.error}", err=True)
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
        "update": update,
    }
    show_progress = not quiet and stderr_is_terminal()
    todo_jobs = [job for _, job in todo]
    if not todo:
        done: list[ImageResult] = []
        header = _idle_header(cards, model, weights, precision, started)
    elif ray_address is None:
        done, header = _run_here(todo_jobs, model_kwargs, run_kwargs, started, show_progress)
    else:
        from srgan_cli.ray_engine import RaySettings

        settings = RaySettings(ray_address, ray_actors, ray_cpus_per_actor)
        done, header = _run_on_ray(
            todo_jobs, settings, cards, model_kwargs, run_kwargs, started, show_progress
        )
    decided.update({index: result for (index, _), result in zip(todo, done, strict=True)})
    results = [*missing, *(decided[index] for index in range(len(jobs)))]
    if report is not None:
        write_report(build_report(results, version=__version__, **header), report)
    if not quiet:
        seconds = header["startup_s"] + header["total_s"]
        click.echo(summary_line(results, seconds, ignored=plan.ignored), err=True)
    if any(result.error is not None for result in results):
        ctx.exit(1)


def _missing_results(plan: Plan) -> list[ImageResult]:
    """One failed result per INPUT argument that matched nothing (named on stderr, and in
    the report with the argument as its input)."""
    return [ImageResult(argument, "", error=message) for argument, message in plan.missing.items()]


def _refuse_from_headers(
    todo: list[tuple[int, Job]],
    decided: dict[int, ImageResult],
    outscale: float,
    max_pixels: int,
) -> list[tuple[int, Job]]:
    """``todo`` less the jobs whose input header already says they would fail (not an
    image, too many pixels, alpha asked for as JPEG); those go into ``decided``. Only
    reached when a model would load anyway, so numpy and Pillow are no extra cost."""
    if not todo:
        return todo
    from srgan_cli.pipeline import refusal_from_header

    kept = []
    for index, job in todo:
        reason = refusal_from_header(job, outscale=outscale, max_pixels=max_pixels)
        if reason is None:
            kept.append((index, job))
        else:
            decided[index] = failed(job, reason)
    return kept


def _requested_cards(model: str | None, weights: Path | None) -> list[WeightCard]:
    """The cards of the weights the options name (both members for ``auto``), read before
    any model loads, for names, the --outscale limit and warnings: ours from their json
    (no hashing, no numpy), a foreign file's from its cached conversion or its tensor
    shapes (numpy; TensorFlow only for a TF checkpoint). Empty when they cannot be read:
    loading the model reports that, if it comes to it, after the header refusals."""
    from srgan_cli.tfstartup import quiet_tensorflow_startup
    from srgan_cli.weights import WeightCard, card_for, card_path, is_ours, resolve_all

    cards = []
    try:
        for path in resolve_all(model, weights):
            if is_ours(path):
                cards.append(WeightCard.read(card_path(path)))
            else:
                with quiet_tensorflow_startup():  # only a TF checkpoint loads TensorFlow
                    cards.append(card_for(path))
    except (WeightsError, ModelFileError):
        return []
    return cards


def _output_scale(cards: Sequence[WeightCard], outscale: float | None) -> float:
    """The real output scale: --outscale, at most the model's scale, which it defaults to
    (``auto``'s members are both x4; x4 too while the weights cannot be read, and then
    they fail to load). Output names follow it (``jobs.default_suffix``)."""
    from srgan_cli.weights import card_scale

    own = card_scale(cards[0]) if cards else SCALE
    if outscale is None:
        return float(own)
    if outscale > own:
        raise UsageError(f"--outscale must be <= {own} (the model's scale), got {outscale:g}")
    return outscale


def ignored_options(
    ctx: click.Context, jobs: Sequence[Job], tta_cards: Sequence[WeightCard]
) -> list[str]:
    """One line for each option given on the command line that this run cannot use:
    ``--quality`` without a JPEG or WebP output, ``--compress-level`` without a PNG one,
    ``--tta`` with a GAN-trained model (``tta_cards``: the models' cards when --tta is on)."""
    formats = {job.format for job in jobs}

    def given(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source is not None and source is not ParameterSource.DEFAULT

    lines = []
    if given("quality") and not formats & {"jpeg", "webp"}:
        lines.append(f"--quality only applies to JPEG and WebP; ignored for {_listed(formats)}")
    if given("compress_level") and "png" not in formats:
        lines.append(f"--compress-level only applies to PNG; ignored for {_listed(formats)}")
    gans = [card.name for card in tta_cards if card.training.get("stage") == "gan"]
    if gans:
        lines.append(
            f"--tta averages away the texture of the GAN model{'s' if len(gans) > 1 else ''} "
            f"{' and '.join(gans)} at 8x the model time; it is meant for PSNR models such as "
            "srresnet"
        )
    return lines


def _listed(formats: set[str]) -> str:
    return " and ".join(sorted(formats)) + " output"


def _idle_header(
    cards: Sequence[WeightCard],
    model: str | None,
    weights: Path | None,
    precision: str,
    started: float,
) -> dict[str, Any]:
    """The report's header for a run that loaded no model (everything skipped or refused)."""
    from srgan_cli.weights import DEFAULT_MODEL, card_arch, card_scale, is_auto

    if is_auto(model, weights) or not cards:
        named = {"model": str(weights or model or DEFAULT_MODEL)}
    else:
        named = {"model": cards[0].name}
    if cards:  # auto's members share one architecture and scale
        named.update(arch=card_arch(cards[0]), scale=card_scale(cards[0]))
    return {
        **named,
        "precision": precision,
        "threads": 0,
        "startup_s": time.perf_counter() - started,
        "total_s": 0.0,
    }


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
    requested: Sequence[WeightCard],
    model_kwargs: dict[str, Any],
    run_kwargs: dict[str, Any],
    started: float,
    show_progress: bool,
) -> tuple[list[ImageResult], dict[str, Any]]:
    """The jobs on Ray (``ray_engine``); the models load in each actor, not here. Their
    cards are checked here (``_checked_cards``), so missing or corrupt weights fail before
    any worker starts."""
    from srgan_cli import ray_engine
    from srgan_cli.weights import AUTO_MODEL, is_auto, spec_of

    model, weights = model_kwargs["model"], model_kwargs["weights"]
    cards = _checked_cards(model, weights, requested)
    name = AUTO_MODEL if is_auto(model, weights) else cards[0].name
    upscaler_kwargs = {**model_kwargs, "weights": None if weights is None else weights.resolve()}
    run_options = dict(run_kwargs)
    existing = {key: run_options.pop(key) for key in ("overwrite", "skip_existing", "update")}
    startup_s = time.perf_counter() - started
    processing_started = time.perf_counter()
    with _Progress(len(jobs), enabled=show_progress) as progress:
        run = ray_engine.run_on_ray(
            jobs,
            settings,
            upscaler_kwargs=upscaler_kwargs,
            run_kwargs=run_options,
            **existing,
            on_image=progress.on_image,
        )
    spec = spec_of(cards[0])  # auto's members share one architecture and scale
    header = {
        "model": name,
        "arch": spec.arch,
        "scale": spec.scale,
        "precision": run.precision,
        "threads": settings.threads,
        "startup_s": startup_s,
        "total_s": time.perf_counter() - processing_started,
    }
    return run.results, header


def _checked_cards(
    model: str | None, weights: Path | None, requested: Sequence[WeightCard]
) -> list[WeightCard]:
    """``requested`` (from ``_requested_cards``) checked the way loading would: ours verified
    against their sha256 (only their json was read), a foreign file's card kept as it was
    made, since making it again would read the whole file again. When they could not be
    read, ``card_for`` raises why (one line, exit 2)."""
    from srgan_cli.weights import card_for, is_ours, resolve_all

    paths = resolve_all(model, weights)
    if len(requested) != len(paths):
        return [card_for(path) for path in paths]
    return [
        card_for(path) if is_ours(path) else card
        for path, card in zip(paths, requested, strict=True)
    ]


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


def summary_line(results: Sequence[ImageResult], seconds: float, *, ignored: int = 0) -> str:
    """'srgan: 3 images (2 srgan, 1 real), 12.6 megapixels out, 4.2 s' plus skipped and
    failed counts, and the earlier outputs that directories and globs held (``ignored``);
    the parentheses count the images each model upscaled."""
    written = [r for r in results if r.ok and r.out_size is not None]
    megapixels = sum(r.out_size[0] * r.out_size[1] for r in written if r.out_size) / 1e6
    models = Counter(r.model for r in written if r.model)
    ranked = sorted(models.items(), key=lambda item: (-item[1], item[0]))  # most used first
    by_model = ", ".join(f"{count} {name}" for name, count in ranked)
    parts = [
        f"{len(written)} image{'' if len(written) == 1 else 's'}"
        + (f" ({by_model})" if by_model else ""),
        f"{megapixels:.2f} megapixels out",
        f"{seconds:.1f} s",
    ]
    skipped = sum(1 for r in results if r.skipped)
    failures = sum(1 for r in results if r.error is not None)
    if skipped:
        parts.append(f"{skipped} skipped")
    if failures:
        parts.append(f"{failures} failed")
    if ignored:
        parts.append(f"{ignored} earlier output{'' if ignored == 1 else 's'} ignored")
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
