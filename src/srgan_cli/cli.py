"""The ``srgan`` command: a thin click shell over ``srgan_cli.pipeline``.

Only the shell's concerns live here: options, turning INPUT arguments (files, directories,
globs, ``-``) into jobs with output paths, progress bars, the summary line and exit codes.
TensorFlow, numpy and Pillow are imported inside the commands, never at module level, so
``srgan --help`` answers instantly. Subcommands share the model options defined once below
(``model_options``) and build their ``Upscaler`` with ``load_upscaler``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import click

from srgan_cli import __version__
from srgan_cli.errors import SrganError, UsageError, WeightsError
from srgan_cli.weights import DEFAULT_MODEL, MODEL_NAMES

if TYPE_CHECKING:
    from srgan_cli.pipeline import ImageResult, Job, Upscaler

# Defaults shown in --help. They mirror imageio/tiling/pipeline constants, which cannot be
# imported here without pulling in numpy; tests/test_cli.py checks that they agree.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
DEFAULT_TILE_PAD = 32
DEFAULT_COMPRESS_LEVEL = 1
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_SUFFIX = "_x4"

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
)
"""Suffixes taken from directories and globs (any case); a file named explicitly is always tried."""

STDIN = "-"
STDIN_NAME = "<stdin>"
EXIT_INTERRUPTED = 130
_GLOB_MAGIC = re.compile(r"[*?[]")

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

MAIN_EPILOG = """\b
Examples:
  srgan upscale photo.jpg                    # writes photo_x4.png beside it
  srgan upscale photos/ -r -o big/           # a folder, subfolders kept under big/
  srgan upscale 'shots/**/*.png' -o big/     # a quoted glob, expanded by srgan
  srgan info                                 # models, weights, CPU features

\b
Makefile pattern rule (only stale outputs are redone):
  %_x4.png: %.png ; srgan upscale $< -o $@
"""

UPSCALE_EPILOG = """\b
Examples:
  srgan upscale photo.jpg                      # -> photo_x4.png
  srgan upscale photo.jpg -o big.png           # one input: -o is the output file
  srgan upscale photos/ -o big/ --report r.csv # a batch folder: -o is a directory
  srgan upscale photos/ -r -o big/ --skip-existing   # subfolders kept, up-to-date skipped
  srgan upscale 'photos/**/*.jpg' -o big/      # quoted: srgan expands the glob itself
  cat small.png | srgan upscale - > big.png    # stdin to stdout

\b
Makefile pattern rule:
  %_x4.png: %.png ; srgan upscale $< -o $@

\b
Exit codes: 0 all written or skipped, 1 some inputs failed (the rest are written),
2 usage error, 130 interrupted.
"""


class SrganGroup(click.Group):
    """Turns SrganError and Ctrl-C/SIGTERM into one line on stderr and the documented code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SrganError as err:
            click.echo(f"Error: {err}", err=True)
            ctx.exit(err.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)


def _sigterm_as_interrupt(ctx: click.Context) -> None:
    """Make SIGTERM stop the command like Ctrl-C (clean threads, no temp files), in the CLI only.

    The previous handler comes back when the command ends, so embedding callers and the test
    runner keep theirs.
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    restore = signal.SIG_DFL if previous is None else previous
    ctx.call_on_close(lambda: signal.signal(signal.SIGTERM, restore))


@click.group(cls=SrganGroup, context_settings=CONTEXT_SETTINGS, epilog=MAIN_EPILOG)
@click.version_option(__version__, "--version", prog_name="srgan", message="%(prog)s %(version)s")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Upscale photos 4x with an SRGAN generator trained in-house (runs on the CPU)."""
    _sigterm_as_interrupt(ctx)


# -- options shared by every command that runs the model ------------------------------------

model_option = click.option(
    "--model",
    type=click.Choice(MODEL_NAMES),
    default=None,
    help=f"Shipped model to use [default: {DEFAULT_MODEL}].",
)
weights_option = click.option(
    "--weights",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A .weights.h5 file (with its .json card) instead of a shipped model.",
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
) -> Upscaler:
    """Build the ``Upscaler`` from the shared model options (imports TensorFlow)."""
    if model is not None and weights is not None:
        raise UsageError("give --model or --weights, not both")
    with quiet_tensorflow_startup():
        from srgan_cli.pipeline import Upscaler

        return Upscaler(model, weights, precision=precision, tile=tile, tile_pad=tile_pad)


@contextlib.contextmanager
def quiet_tensorflow_startup() -> Iterator[None]:
    """Hold back what TensorFlow's C++ side prints on stderr while it starts.

    Its oneDNN and CUDA notices are logged before absl is initialised, so they ignore
    TF_CPP_MIN_LOG_LEVEL; they would bury the one summary line. The text is replayed if
    starting fails, so nothing that explains a failure is lost. Setting
    TF_CPP_MIN_LOG_LEVEL=0 shows everything.
    """
    if os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2") == "0":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except SrganError:
            raise  # one actionable line; the start-up chatter would only bury it
        except Exception:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# -- upscale --------------------------------------------------------------------------------


@main.command(epilog=UPSCALE_EPILOG, context_settings=CONTEXT_SETTINGS)
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "-o",
    "--output",
    default=None,
    metavar="PATH",
    help="One input: the output file ('-' = PNG on stdout). Several inputs, a directory or "
    "a glob: the output directory (subfolders kept). Default: <stem>_x4.png beside each input.",
)
@click.option("-r", "--recursive", is_flag=True, help="Descend into subdirectories of INPUT.")
@click.option(
    "--suffix",
    default=DEFAULT_SUFFIX,
    show_default=True,
    help="Added to the stem of outputs written beside their input.",
)
@model_options
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Write per-image sizes, tiles and timings to FILE (.json or .csv).",
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
@click.option("-q", "--quiet", is_flag=True, help="No progress bars and no summary line.")
@click.pass_context
def upscale(
    ctx: click.Context,
    inputs: tuple[str, ...],
    output: str | None,
    recursive: bool,
    suffix: str,
    model: str | None,
    weights: Path | None,
    precision: str,
    tile: int | None,
    tile_pad: int,
    report: Path | None,
    compress_level: int,
    max_pixels: int,
    overwrite: bool,
    skip_existing: bool,
    quiet: bool,
) -> None:
    """Upscale images 4x to PNG.

    INPUT is an image file, a directory (its image files; -r to descend), a glob pattern
    in quotes ('**' matches any depth) or '-' for standard input.
    """
    started = time.perf_counter()
    from srgan_cli import pipeline

    if report is not None:
        pipeline.check_report_path(report)
    jobs = plan_jobs(inputs, output, recursive=recursive, suffix=suffix)
    stdout = _stdout_for(jobs)
    stdin_bytes = _read_stdin() if any(job.input is None for job in jobs) else None
    upscaler = load_upscaler(model, weights, precision, tile, tile_pad)
    startup_s = time.perf_counter() - started
    processing_started = time.perf_counter()

    with _Progress(len(jobs), enabled=not quiet and _stderr_is_terminal()) as progress:
        results = pipeline.run_jobs(
            upscaler,
            jobs,
            compress_level=compress_level,
            max_pixels=max_pixels,
            overwrite=overwrite,
            skip_existing=skip_existing,
            stdin_bytes=stdin_bytes,
            stdout=stdout,
            on_image=progress.on_image,
            on_tile=progress.on_tile,
        )
    total_s = time.perf_counter() - processing_started  # the report's contract: after startup
    if report is not None:
        content = pipeline.build_report(
            results,
            version=__version__,
            model=upscaler.name,
            precision=upscaler.precision_used,
            threads=pipeline.inference_threads(),
            startup_s=startup_s,
            total_s=total_s,
        )
        pipeline.write_report(content, report)
    if not quiet:
        click.echo(summary_line(results, startup_s + total_s), err=True)
    if any(result.error is not None for result in results):
        ctx.exit(1)


@dataclass(frozen=True)
class InputFile:
    """One input found from the arguments.

    ``path`` None is stdin. ``root`` is the directory given (or a glob's fixed prefix) that
    the output keeps the relative path from; None for a file named explicitly.
    """

    path: Path | None
    root: Path | None = None

    @property
    def display_name(self) -> str:
        return STDIN_NAME if self.path is None else str(self.path)


def find_inputs(patterns: Sequence[str], *, recursive: bool) -> list[InputFile]:
    """Expand INPUT arguments; de-duplicated by resolved path and sorted by name.

    UsageError (exit 2) when an argument matches nothing, or '-' is mixed with other inputs.
    """
    if STDIN in patterns:
        if len(patterns) > 1:
            raise UsageError("'-' (standard input) must be the only INPUT")
        return [InputFile(None)]
    found: dict[str, InputFile] = {}
    for pattern in patterns:
        for item in _expand(pattern, recursive):
            assert item.path is not None
            found.setdefault(os.path.realpath(item.path), item)
    return sorted(found.values(), key=lambda item: str(item.path))


def _expand(pattern: str, recursive: bool) -> list[InputFile]:
    """One argument -> its inputs: the file itself, a directory's images, or glob matches."""
    path = Path(pattern)
    if path.is_dir():
        files = _directory_images(path, recursive)
        if not files:
            hint = "" if recursive else " (use -r to descend into subdirectories)"
            raise UsageError(f"no images in directory {pattern}{hint}")
        return [InputFile(file, path) for file in files]
    if path.exists():
        return [InputFile(path)]
    if _GLOB_MAGIC.search(pattern):
        import glob

        matches = [Path(m) for m in glob.glob(pattern, recursive=True)]
        files = sorted(m for m in matches if _is_image_file(m))
        if not files:
            raise UsageError(f"no images match {pattern!r}")
        return [InputFile(file, _glob_root(pattern)) for file in files]
    raise UsageError(f"no such file or directory: {pattern}")


def _is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def _directory_images(directory: Path, recursive: bool) -> list[Path]:
    """Image files in ``directory`` (and below with ``recursive``); hidden names skipped,
    like a shell glob, which also keeps our own ``.name.tmp`` files out."""
    found: list[Path] = []
    for top, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        found.extend(
            Path(top, name)
            for name in files
            if not name.startswith(".") and _is_image_file(Path(top, name))
        )
    return sorted(found)


def _glob_root(pattern: str) -> Path:
    """The directory part of a glob before its first wildcard: 'a/b/**/*.png' -> 'a/b'."""
    fixed: list[str] = []
    for part in Path(pattern).parts[:-1]:
        if _GLOB_MAGIC.search(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def plan_jobs(
    patterns: Sequence[str], output: str | None, *, recursive: bool, suffix: str = DEFAULT_SUFFIX
) -> list[Job]:
    """INPUT arguments and ``-o`` -> jobs with their output paths (None = stdout).

    One file: ``-o`` is the output file ('-' = stdout; an existing directory gets
    <stem>.png). Several inputs, a directory or a glob: ``-o`` is a directory and each
    output is DIR/<path relative to its root>/<stem>.png. No ``-o``: <stem><suffix>.png
    beside each input; stdin goes to stdout.
    """
    from srgan_cli.pipeline import Job

    sources = find_inputs(patterns, recursive=recursive)
    if output is None:
        return [Job(s.path, _beside(s.path, suffix), s.display_name) for s in sources]
    batch = len(sources) > 1 or any(s.root is not None for s in sources)
    if not batch:
        (source,) = sources
        return [Job(source.path, _single_output(source, output), source.display_name)]
    out_dir = _output_directory(output, len(sources))
    sources = _outside(out_dir, sources)
    return [Job(s.path, _in_directory(out_dir, s), s.display_name) for s in sources]


def _beside(path: Path | None, suffix: str) -> Path | None:
    return None if path is None else path.with_name(f"{path.stem}{suffix}.png")


def _single_output(source: InputFile, output: str) -> Path | None:
    """'-' is stdout; an existing directory (or a path ending in '/') gets <stem>.png."""
    if output == STDIN:
        return None
    target = Path(output)
    as_directory = target.is_dir() or output.endswith(("/", os.sep))
    if as_directory and source.path is not None:
        return target / f"{source.path.stem}.png"
    return target


def _outside(out_dir: Path, sources: list[InputFile]) -> list[InputFile]:
    """Drop images found by a directory walk or glob inside the output directory.

    Without this, 'srgan upscale photos -r -o photos/big' would take last run's outputs as
    new inputs. Files named explicitly are kept (they are always tried).
    """
    fence = os.path.join(os.path.realpath(out_dir), "")
    kept = [
        s for s in sources if s.root is None or not os.path.realpath(s.path or "").startswith(fence)
    ]
    if not kept:
        raise UsageError(f"no images outside the output directory {out_dir}")
    return kept


def _output_directory(output: str, count: int) -> Path:
    """``-o`` for a batch must be a directory (existing or to be created)."""
    target = Path(output)
    looks_like_file = target.suffix.lower() in IMAGE_SUFFIXES or output == STDIN
    if (target.exists() and not target.is_dir()) or (looks_like_file and not target.is_dir()):
        raise UsageError(
            f"-o {output} is a file, but {count} input(s) from several files, a directory or "
            "a pattern need an output directory"
        )
    return target


def _in_directory(out_dir: Path, source: InputFile) -> Path:
    assert source.path is not None
    name = f"{source.path.stem}.png"
    if source.root is None:
        return out_dir / name
    return out_dir / source.path.parent.relative_to(source.root) / name


def _stdout_for(jobs: Sequence[Job]) -> BinaryIO | None:
    """The binary stdout when a job writes there; refuse to spray PNG bytes on a terminal."""
    if all(job.output is not None for job in jobs):
        return None
    stream = click.get_binary_stream("stdout")
    if stream.isatty():
        raise UsageError("refusing to write PNG data to a terminal; use -o FILE or redirect")
    return stream


def _read_stdin() -> bytes:
    data = click.get_binary_stream("stdin").read()
    if not data:
        raise UsageError("standard input is empty")
    return data


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


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


# -- info -----------------------------------------------------------------------------------


@main.command(context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def info(as_json: bool) -> None:
    """Show the version, the shipped models and their training, and the runtime."""
    data = collect_info()
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        for line in _info_lines(data):
            click.echo(line)


def collect_info() -> dict[str, Any]:
    """Everything ``srgan info`` reports, as plain JSON-ready data (imports TensorFlow)."""
    from srgan_cli.pipeline import choose_precision, cpu_features

    with quiet_tensorflow_startup():
        import keras
        import tensorflow as tf

        threads = {
            "cpu_count": os.cpu_count(),
            "tf_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        }
    features = cpu_features()
    return {
        "version": __version__,
        "models": {name: _model_info(name) for name in MODEL_NAMES},
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "cpu_features": features,
        "auto_precision": choose_precision("auto", features),
        "threads": threads,
    }


def _model_info(name: str) -> dict[str, Any]:
    """Status of one shipped model: ok (verified against its card), missing or invalid."""
    from srgan_cli import weights

    try:
        path = weights.resolve(name)
    except WeightsError as err:
        return {"status": "missing", "detail": str(err)}
    try:
        card = weights.verify(path)
    except WeightsError as err:
        return {"status": "invalid", "file": str(path), "detail": str(err)}
    keys = ("stage", "steps", "total_steps", "wall_hours", "hardware")
    return {
        "status": "ok",
        "file": str(path),
        "sha256": card.sha256[:12],
        "training": {key: card.training.get(key) for key in keys},
        "metrics": card.metrics or card.training.get("metrics", {}),
    }


def _metric_text(name: str, value: Any) -> str:
    """'Set5 31.29 dB / 0.882 / LPIPS 0.176' for a recorded set, else 'name value'."""
    if isinstance(value, dict) and "psnr" in value:
        text = f"{name} {value['psnr']:.2f} dB / {value['ssim']:.3f}"
        return text + (f" / LPIPS {value['lpips']:.3f}" if value.get("lpips") is not None else "")
    return f"{name} {value}"


def _info_lines(data: dict[str, Any]) -> Iterator[str]:
    yield f"srgan {data['version']}"
    yield "models:"
    for name, model in data["models"].items():
        if model["status"] != "ok":
            yield f"  {name:<9} {model['status']}: {model['detail']}"
            continue
        training = ", ".join(f"{k} {v}" for k, v in model["training"].items() if v is not None)
        metrics = ", ".join(_metric_text(k, v) for k, v in model["metrics"].items())
        yield f"  {name:<9} {model['file']} (sha256 {model['sha256']})"
        yield f"  {'':<9} training: {training or 'not recorded'}"
        yield f"  {'':<9} metrics: {metrics or 'not recorded'}"
    yield f"tensorflow {data['tensorflow']}, keras {data['keras']}"
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in data["cpu_features"].items())
    yield f"cpu: {flags} (auto precision: {data['auto_precision']})"
    threads = data["threads"]
    intra = threads["tf_intra_op"] or "default (all cores)"
    yield f"threads: {threads['cpu_count']} cpus, TensorFlow intra-op {intra}"


# -- serve ----------------------------------------------------------------------------------

# Mirror srgan_cli.server's defaults, which cannot be imported before flask is known to be
# installed; tests/test_server.py checks that they agree.
DEFAULT_SERVE_HOST = "127.0.0.1"
DEFAULT_SERVE_PORT = 5000
DEFAULT_SERVE_MAX_PIXELS = 4_000_000
DEFAULT_MAX_UPLOAD_MB = 32
SERVE_EXTRA_MISSING = "srgan serve needs the serve extra: pip install 'srgan-cli[serve]'"

SERVE_EPILOG = """\b
Examples:
  srgan serve                                  # http://127.0.0.1:5000, model srgan
  curl -F "image=@food.png" -XPOST http://localhost:5000/model/predict > food_high_res.png
  curl http://localhost:5000/model/metadata    # JSON; the API is at /openapi.json
  srgan serve --host 0.0.0.0 --port 8080       # reachable from the network: no auth!

\b
Errors are JSON {"status": "error", "message": ...}: 400 no 'image' field, not an image,
damaged, or over --max-pixels; 413 request over --max-upload-mb; 404/405 wrong path/method.
"""


@main.command("serve", epilog=SERVE_EPILOG, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--host",
    default=DEFAULT_SERVE_HOST,
    show_default=True,
    help="Address to listen on. Anything but loopback lets other machines use the model.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_SERVE_PORT,
    show_default=True,
    help="TCP port; 0 = any free port (the ready line says which).",
)
@model_options
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_SERVE_MAX_PIXELS,
    show_default=True,
    metavar="N",
    help="Refuse uploads with more pixels (width x height) than this (400).",
)
@click.option(
    "--max-upload-mb",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_UPLOAD_MB,
    show_default=True,
    metavar="N",
    help="Refuse requests over N MiB (413).",
)
def serve_command(
    host: str,
    port: int,
    model: str | None,
    weights: Path | None,
    precision: str,
    tile: int | None,
    tile_pad: int,
    max_pixels: int,
    max_upload_mb: int,
) -> None:
    """Serve the model over HTTP with the seed's REST API (POST /model/predict).

    The model is loaded once; requests take turns on it. Needs the serve extra:
    pip install 'srgan-cli[serve]'.
    """
    _require_flask()
    from srgan_cli import server

    if not server.is_loopback(host):
        click.echo(
            f"Warning: listening on {host}: anyone who can reach it can use the model "
            "(no authentication, no TLS)",
            err=True,
        )
    upscaler = load_upscaler(model, weights, precision, tile, tile_pad)

    def ready(url: str) -> None:
        click.echo(f"srgan: serving model {upscaler.name} on {url} (Ctrl-C to stop)", err=True)

    server.serve(
        upscaler,
        host,
        port,
        on_ready=ready,
        max_pixels=max_pixels,
        max_upload_bytes=max_upload_mb * 1024 * 1024,
    )


def _require_flask() -> None:
    """One-line SrganError (exit 1) when the optional serve extra is not installed."""
    try:
        import flask  # noqa: F401 - only checking that the extra is installed
    except ImportError as err:
        raise SrganError(SERVE_EXTRA_MISSING) from err


# -- train ----------------------------------------------------------------------------------

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
        func = click.option(flag, type=type(default), default=default, show_default=True)(func)
    return func


@main.command(epilog=TRAIN_EPILOG, context_settings=CONTEXT_SETTINGS)
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
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("weights"))
@click.option("--name", default=None, help="Exported model name [default: by stage].")
def train(
    resume: Path | None,
    export_run: Path | None,
    select_run: Path | None,
    reference: Path,
    max_drop: float,
    lpips_weights: Path,
    out: Path,
    name: str | None,
    blocks: int,
    channels: int,
    batch_norm: bool,
    **options: Any,
) -> None:
    """Train the generator: stage psnr -> srresnet, stage gan -> srgan (see README)."""
    from srgan_cli.train.config import TrainConfig

    with quiet_tensorflow_startup():
        if select_run is not None:
            from srgan_cli.lpips import LpipsAlex
            from srgan_cli.train.select import select_snapshot

            result = select_snapshot(select_run, reference, LpipsAlex(lpips_weights), max_drop)
            click.echo(json.dumps(result["selected"]))
            return
        if export_run is not None:
            from srgan_cli.train.export import export_run as export

            click.echo(f"exported {export(export_run, out, name)}")
            return
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


# -- eval and compare -----------------------------------------------------------------------

# Mirrors lpips.DEFAULT_LPIPS_WEIGHTS (importing lpips would pull in numpy for --help);
# tests/test_evaluate.py checks that they agree.
DEFAULT_LPIPS_WEIGHTS_HELP = "../shared/weights/lpips_alex.npz"
DEFAULT_COMPARE_MODELS = "srresnet,srgan"
DEFAULT_COMPARE_ZOOM = 2

if TYPE_CHECKING:
    from srgan_cli.evaluate import Box

EVAL_EPILOG = """\b
Examples:
  srgan eval ../shared/datasets/benchmark/Set5 --model srresnet
  srgan eval Set5 Set14 BSD100 --json eval.json --markdown
  srgan eval Set5 --weights runs/gan/best.weights.h5 --lpips-weights lpips_alex.npz

\b
Protocol: crop HR to a multiple of 4, Pillow bicubic x1/4, upscale (tiling included), then
PSNR and SSIM (Gaussian 11x11, sigma 1.5) on the Y channel (BT.601, 16-235) with a 4 px
border shaved, and LPIPS-Alex on RGB. Pillow bicubic x4 is scored alongside as the baseline.
"""

COMPARE_EPILOG = """\b
Examples:
  srgan compare photo.png -o sheet.png                  # the most detailed 96x96 crop
  srgan compare photo.png -o sheet.png --crop 120,64,96,96 --models srgan
  srgan compare photo.png -o sheet.png --models srgan,runs/gan/best.weights.h5
"""


@main.command("eval", epilog=EVAL_EPILOG, context_settings=CONTEXT_SETTINGS)
@click.argument(
    "directories",
    nargs=-1,
    required=True,
    metavar="DIR...",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@model_options
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Also write every image's scores and the set means to FILE.",
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
    from srgan_cli.imageio import write_atomic

    sets = evaluate.benchmark_sets(directories)
    upscaler = load_upscaler(model, weights, precision, tile, tile_pad)
    lpips, lpips_path = _load_lpips(lpips_weights)
    total = sum(len(bench.images) for bench in sets)
    with tqdm(total=total, unit="img", file=sys.stderr, disable=not _stderr_is_terminal()) as bar:
        result = evaluate.evaluate(sets, upscaler, lpips, on_image=lambda score: bar.update(1))
    if json_path is not None:
        content = result.to_dict(
            version=__version__,
            weights=str(upscaler.path),
            sha256=upscaler.card.sha256,
            precision=upscaler.precision_used,
            tile=upscaler.tile,
            tile_pad=upscaler.tile_pad,
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
        f"{upscaler.name} ({upscaler.precision_used}), {seconds:.1f} s",
        err=True,
    )


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


@main.command(epilog=COMPARE_EPILOG, context_settings=CONTEXT_SETTINGS)
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
@precision_option
def compare(
    image: Path, output: Path, crop: str | None, models: str, zoom: int, precision: str
) -> None:
    """Draw bicubic | each model | original side by side, for one crop of an HR IMAGE.

    IMAGE is taken as the ground truth: it is downscaled 4x as in 'srgan eval' and upscaled
    back each way, so the panels show how much of its detail each method recovers.
    """
    from srgan_cli import evaluate
    from srgan_cli.imageio import encode_png, write_atomic

    box = _parse_crop(crop)
    hr = evaluate.load_hr(image)
    upscalers = [_compare_upscaler(item, precision) for item in _model_list(models)]
    used, sheet = evaluate.comparison_sheet(hr, upscalers, box, zoom)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, encode_png(sheet, None, "RGB", compress_level=9))
    height, width = sheet.shape[:2]
    click.echo(
        f"srgan compare: {output} ({width}x{height}), crop {used.x},{used.y},{used.w},{used.h} "
        f"of {image}",
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
    """A shipped model name or a .weights.h5 path -> its loaded ``Upscaler``."""
    from srgan_cli.weights import WEIGHTS_SUFFIX

    if item in MODEL_NAMES:
        return load_upscaler(item, None, precision, None, DEFAULT_TILE_PAD)
    if item.endswith(WEIGHTS_SUFFIX):
        return load_upscaler(None, Path(item), precision, None, DEFAULT_TILE_PAD)
    raise UsageError(
        f"--models: {item!r} is neither a shipped model ({', '.join(MODEL_NAMES)}) "
        f"nor a {WEIGHTS_SUFFIX} file"
    )


# -- bench ----------------------------------------------------------------------------------


@main.command(context_settings=CONTEXT_SETTINGS)
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
    upscaler = load_upscaler(model, weights, precision, tile, tile_pad)
    from srgan_cli.bench import benchmark, report_lines

    result = benchmark(upscaler, size=size, repeats=repeats)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        for line in report_lines(result):
            click.echo(line)
