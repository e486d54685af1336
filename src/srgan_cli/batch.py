"""The three stages behind ``pipeline.run_jobs``, one class per concern.

``Reader`` (a helper thread) decides each job (output rules, decoding, the model picked for
it, what its format refuses) ahead of the model; ``TileRunner`` (the caller's thread) runs
the model tile by tile, releasing the GIL inside TensorFlow; ``Writer`` (a helper thread)
encodes and writes behind it, atomically, and reports each result in job order. ``Batch``
only wires them: two bounded ``Pipe`` s and the stop flag between them, the threads, and a
failure guard that stops every stage and re-raises a helper's bug in the caller's thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from srgan_cli.errors import ImageError
from srgan_cli.formats import OutputFormat
from srgan_cli.imageio import (
    DecodedImage,
    encode_image,
    open_source,
    read_image,
    save_image,
    write_atomic,
)
from srgan_cli.jobs import Job, OutputClaims
from srgan_cli.remote import Uri
from srgan_cli.resize import output_size
from srgan_cli.results import ImageResult, output_name

if TYPE_CHECKING:
    from srgan_cli.modelset import AnyUpscaler
    from srgan_cli.pipeline import Upscaler

QUEUE_DEPTH = 2
"""Images decoded ahead of / waiting behind the model: enough to hide I/O, bounded memory."""
POLL_S = 0.1
"""How often blocked helper threads look at the stop flag (bounds Ctrl-C latency)."""

OnImage = Callable[[ImageResult], None]
OnTileProgress = Callable[[int, int], None]


def format_refusal(job: Job, mode: str, size: tuple[int, int], outscale: float) -> str | None:
    """Why ``job``'s output format cannot hold an input of ``mode`` and ``size`` (width,
    height) upscaled ``outscale`` times, as one line naming the input; None when it can."""
    reason = OutputFormat(job.format).refusal(mode, output_size(*size, outscale))
    return None if reason is None else f"{job.display_name}: {reason}"


@dataclass(frozen=True)
class BatchOptions:
    """The per-batch knobs of ``run_jobs`` that the stages share."""

    compress_level: int
    quality: int
    outscale: float
    max_pixels: int
    overwrite: bool
    skip_existing: bool
    update: bool = False

    def __post_init__(self) -> None:
        self.output_format("png")  # a bad quality or level is a UsageError before any work

    def output_format(self, name: str) -> OutputFormat:
        return OutputFormat(name, self.quality, self.compress_level)


@dataclass
class Work:
    """A job travelling reader -> model -> writer; ``image`` is the input, then the output;
    ``model`` is the one chosen for it when it was read."""

    job: Job
    result: ImageResult
    image: DecodedImage | None = None
    model: Upscaler | None = None

    @property
    def runnable(self) -> bool:
        """Still worth the next stage: no error, not skipped, and an image to work on."""
        return self.result.ok and self.image is not None


DONE = object()
"""End-of-batch marker passed down the pipes."""


class Pipe:
    """A bounded queue between two stages whose blocking calls give up once ``stop`` is set,
    so a failed or interrupted batch never leaves a thread waiting forever."""

    def __init__(self, stop: threading.Event, depth: int = QUEUE_DEPTH) -> None:
        self.stop = stop
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)

    def put(self, item: Any) -> bool:
        """Hand ``item`` on; False (not handed on) once the batch is stopping."""
        while not self.stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> Any:
        """The next item, or ``DONE`` once the batch is stopping."""
        while True:
            try:
                return self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if self.stop.is_set():
                    return DONE


class Reader:
    """Reads ahead: each job's output decision, its decoded input, the model picked for it and
    its format refusal, so the model never waits on a decode or on an image it would refuse."""

    def __init__(
        self,
        upscaler: AnyUpscaler,
        jobs: Sequence[Job],
        options: BatchOptions,
        stdin_bytes: bytes | None,
        outbox: Pipe,
    ) -> None:
        self.upscaler = upscaler
        self.jobs = list(jobs)
        self.options = options
        self.stdin_bytes = stdin_bytes
        self.outbox = outbox
        self.claims = OutputClaims(
            self.jobs,
            overwrite=options.overwrite,
            skip_existing=options.skip_existing,
            update=options.update,
        )

    def run(self) -> None:
        for job in self.jobs:
            if self.outbox.stop.is_set() or not self.outbox.put(self.read(job)):
                return
        self.outbox.put(DONE)

    def read(self, job: Job) -> Work:
        """``job`` decided: refused, skipped, or decoded with its model and format notes."""
        work = Work(job, ImageResult(job.display_name, output_name(job)))
        decision = self.claims.check(job)  # outputs that are inputs, claimed, or existing
        work.result.error = decision.error
        work.result.skipped = decision.skip
        if work.result.ok:
            self._load(work)
        if work.runnable:
            self._check_format(work)
        return work

    def _source(self, job: Job) -> bytes | Path:
        """What ``read_image`` decodes: stdin's bytes, an object's bytes, or a local path."""
        if job.input is None:
            if self.stdin_bytes is None:
                raise ImageError(f"{job.display_name}: no data on standard input")
            return self.stdin_bytes
        return job.input.read_bytes() if isinstance(job.input, Uri) else job.input

    def _load(self, work: Work) -> None:
        job, result = work.job, work.result
        start = time.perf_counter()
        try:
            with open_source(self._source(job), job.display_name) as stream:
                image = read_image(
                    stream, max_pixels=self.options.max_pixels, name=job.display_name
                )
                stream.seek(0)  # the header again, from the same open file
                work.model = self.upscaler.pick(stream)  # the header only: no pixels looked at
        except ImageError as err:
            result.error = str(err)
        except OSError as err:
            result.error = f"{job.display_name}: cannot read: {err.strerror or err}"
        else:
            work.image = image
            result.in_size = list(image.size)
            result.notes = list(image.notes)
        result.load_s = time.perf_counter() - start

    def _check_format(self, work: Work) -> None:
        """Fail an image its output format cannot hold before the model spends time on it."""
        image, result = work.image, work.result
        assert image is not None
        reason = format_refusal(work.job, image.mode, image.size, self.options.outscale)
        if reason is not None:
            result.error = reason
            work.image = None
            return
        result.notes += self.options.output_format(work.job.format).notes(image.mode)


class TileRunner:
    """Runs the model: each runnable image through its own model, tile by tile, to
    ``outscale``; ``on_tile(done, total)`` after each tile."""

    def __init__(
        self, inbox: Pipe, outbox: Pipe, outscale: float, on_tile: OnTileProgress | None
    ) -> None:
        self.inbox = inbox
        self.outbox = outbox
        self.outscale = outscale
        self.on_tile = on_tile

    def run(self) -> None:
        while (work := self.inbox.get()) is not DONE:
            if work.runnable:
                self.upscale(work)
            if not self.outbox.put(work):
                break
        self.outbox.put(DONE)

    def upscale(self, work: Work) -> None:
        """Replace ``work.image`` by its upscaled image; record model, tiles and time."""
        image, result, model = work.image, work.result, work.model
        assert image is not None and model is not None
        height, width = image.pixels.shape[:2]
        result.model = model.name
        result.tiles = model.tiles_for(height, width)
        start = time.perf_counter()
        work.image = model.upscale_image(
            image, on_tile=self._progress(result.tiles), outscale=self.outscale
        )
        result.infer_s = time.perf_counter() - start
        result.out_size = list(work.image.size)

    def _progress(self, total: int) -> Callable[[], None]:
        """A per-tile callback counting this image's tiles into ``on_tile``."""
        done = 0

        def tile_finished() -> None:
            nonlocal done
            done += 1
            if self.on_tile is not None:
                self.on_tile(done, total)

        return tile_finished


class Writer:
    """Writes behind the model: encodes each output and writes it atomically (a file, an
    object, or stdout), then records and reports the result, in job order."""

    def __init__(
        self,
        inbox: Pipe,
        options: BatchOptions,
        stdout: BinaryIO | None,
        on_image: OnImage | None,
    ) -> None:
        self.inbox = inbox
        self.options = options
        self.stdout = stdout
        self.on_image = on_image
        self.results: list[ImageResult] = []

    def run(self) -> None:
        while not self.inbox.stop.is_set():
            work = self.inbox.get()
            if work is DONE:
                return
            if work.runnable:
                self.save(work)
            work.image = None
            result = work.result
            result.total_s = result.load_s + result.infer_s + result.save_s
            self.results.append(result)
            if self.on_image is not None:
                self.on_image(result)

    def save(self, work: Work) -> None:
        """Write ``work.image``; an OSError becomes the result's one-line error."""
        job, result, image = work.job, work.result, work.image
        assert image is not None
        start = time.perf_counter()
        output = self.options.output_format(job.format)
        try:
            if job.output is None:
                self._write_stdout(encode_image(image, output))
            elif isinstance(job.output, Uri):
                job.output.write_atomic(lambda fh: save_image(fh, image, output))
            else:
                job.output.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(job.output, lambda fh: save_image(fh, image, output))
        except OSError as err:
            result.error = f"{job.display_name}: cannot write {result.output}: {_reason(err)}"
        result.save_s = time.perf_counter() - start

    def _write_stdout(self, data: bytes) -> None:
        if self.stdout is None:
            raise OSError("no output stream given for stdout")
        self.stdout.write(data)
        self.stdout.flush()


def _reason(err: OSError) -> str:
    return err.strerror or str(err) or type(err).__name__


class Batch:
    """Wires the stages: reader and writer threads around the tile runner in the caller's
    thread, with the stop flag and failure guard shared by all three."""

    def __init__(
        self,
        upscaler: AnyUpscaler,
        jobs: Sequence[Job],
        options: BatchOptions,
        *,
        stdin_bytes: bytes | None = None,
        stdout: BinaryIO | None = None,
        on_image: OnImage | None = None,
        on_tile: OnTileProgress | None = None,
    ) -> None:
        self.stop = threading.Event()
        loaded, upscaled = Pipe(self.stop), Pipe(self.stop)
        self.reader = Reader(upscaler, jobs, options, stdin_bytes, loaded)
        self.runner = TileRunner(loaded, upscaled, options.outscale, on_tile)
        self.writer = Writer(upscaled, options, stdout, on_image)
        self.failures: list[BaseException] = []

    def run(self) -> list[ImageResult]:
        """Every job's result in job order; a helper's unexpected exception is re-raised here,
        and an exception here (Ctrl-C) stops the helpers before it propagates."""
        threads = [
            threading.Thread(target=self._guard, args=(self.reader.run,), name="srgan-reader"),
            threading.Thread(target=self._guard, args=(self.writer.run,), name="srgan-writer"),
        ]
        for thread in threads:
            thread.start()
        finished = False
        try:
            self.runner.run()
            finished = True
        finally:
            if not finished:
                self.stop.set()
            self._join(threads)
        if self.failures:
            raise self.failures[0]
        return self.writer.results

    def _join(self, threads: Iterable[threading.Thread]) -> None:
        """Wait for the helpers; a second Ctrl-C while waiting still stops them."""
        try:
            for thread in threads:
                thread.join()
        except BaseException:
            self.stop.set()
            raise

    def _guard(self, stage: Callable[[], None]) -> None:
        """Run a helper stage; an unexpected exception (a bug) stops the batch and is re-raised
        in the caller's thread by ``run``."""
        try:
            stage()
        except BaseException as err:
            self.failures.append(err)
            self.stop.set()
