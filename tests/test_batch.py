"""batch: the stages of run_jobs on their own (pipes, reader decisions, runner, writer)."""

from __future__ import annotations

import builtins
import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import MIXED_MODELS, make_image, make_mixed_folder

from srgan_cli.batch import (
    DONE,
    BatchOptions,
    Pipe,
    Reader,
    TileRunner,
    Writer,
)
from srgan_cli.jobs import Job
from srgan_cli.pipeline import Upscaler
from srgan_cli.results import ImageResult


@pytest.fixture(scope="module")
def upscaler(tiny_weights):
    return Upscaler(weights=tiny_weights, precision="fp32")


def options() -> BatchOptions:
    return BatchOptions(
        compress_level=1,
        quality=90,
        outscale=4.0,
        max_pixels=10**8,
        overwrite=False,
        skip_existing=False,
    )


def test_pipe_hands_items_on_in_order_and_gives_up_once_stopped():
    stop = threading.Event()
    pipe = Pipe(stop, depth=1)
    assert pipe.put("a")
    assert pipe.get() == "a"
    assert pipe.put("b")
    stop.set()
    started = time.perf_counter()
    assert pipe.put("c") is False  # full and stopping: gives up instead of blocking
    assert pipe.get() == "b"  # what was handed on is still delivered
    assert pipe.get() is DONE  # empty and stopping
    assert time.perf_counter() - started < 2


def test_reader_decides_each_job_before_the_model(tmp_path, upscaler):
    rgb = make_image(tmp_path / "rgb.png", "RGB")
    rgba = make_image(tmp_path / "rgba.png", "RGBA")
    (tmp_path / "taken.png").write_bytes(b"old")
    jobs = [
        Job(rgb, tmp_path / "out.png", "rgb.png"),
        Job(rgba, tmp_path / "a.jpg", "rgba.png", "jpeg"),
        Job(rgb, rgb, "self.png"),
        Job(rgb, tmp_path / "taken.png", "again.png"),
        Job(tmp_path / "missing.png", tmp_path / "m.png", "missing.png"),
    ]
    outbox = Pipe(threading.Event(), depth=len(jobs) + 1)
    Reader(upscaler, jobs, options(), None, outbox).run()
    read = [outbox.get() for _ in jobs]
    assert outbox.get() is DONE
    assert [work.job for work in read] == jobs
    ready, refused_format, own_input, existing, missing = read
    assert ready.runnable and ready.model is upscaler and ready.result.in_size == [12, 10]
    assert not refused_format.runnable and "rgba.png" in refused_format.result.error
    assert "refusing to overwrite input" in own_input.result.error
    assert own_input.model is None and own_input.result.load_s == 0  # never decoded
    assert existing.result.error.startswith("again.png: ") and "exists" in existing.result.error
    assert missing.result.error == "missing.png: cannot open: No such file or directory"
    assert not any(work.runnable for work in read[1:])


def test_runner_and_writer_upscale_and_write_in_order(tmp_path, upscaler):
    source = make_image(tmp_path / "in.png", "RGB")
    jobs = [Job(source, tmp_path / f"out{i}.png", f"in{i}.png") for i in range(2)]
    stop = threading.Event()
    loaded, upscaled = Pipe(stop, depth=4), Pipe(stop, depth=4)
    Reader(upscaler, jobs, options(), None, loaded).run()
    ticks: list[tuple[int, int]] = []
    TileRunner(loaded, upscaled, 4.0, lambda done, total: ticks.append((done, total))).run()
    seen: list[ImageResult] = []
    writer = Writer(upscaled, options(), None, seen.append)
    writer.run()
    assert [r.input for r in writer.results] == ["in0.png", "in1.png"] and seen == writer.results
    assert all(r.ok and r.out_size == [48, 40] and r.tiles == 1 for r in writer.results)
    assert ticks == [(1, 1), (1, 1)]
    assert all((tmp_path / f"out{i}.png").stat().st_size > 0 for i in range(2))


def test_writer_records_a_write_error_and_goes_on(tmp_path, upscaler):
    source = make_image(tmp_path / "in.png", "RGB")
    (tmp_path / "file").write_bytes(b"")
    jobs = [
        Job(source, tmp_path / "file" / "out.png", "blocked.png"),
        Job(source, None, "to-stdout.png"),
        Job(source, tmp_path / "fine.png", "fine.png"),
    ]
    reader = Reader(upscaler, jobs, options(), None, Pipe(threading.Event()))
    inbox = Pipe(threading.Event(), depth=len(jobs) + 1)
    for job in jobs:
        work = reader.read(job)
        TileRunner(inbox, inbox, 4.0, None).upscale(work)
        inbox.put(work)
    inbox.put(DONE)
    writer = Writer(inbox, options(), None, None)
    writer.run()
    blocked, to_stdout, fine = writer.results
    assert blocked.error.startswith("blocked.png: cannot write")
    assert "no output stream given for stdout" in to_stdout.error
    assert fine.ok and (tmp_path / "fine.png").is_file()
    assert not (tmp_path / "file" / "out.png").exists()


def test_reader_opens_each_input_once_for_auto(tmp_path, monkeypatch):
    """``--model auto`` picks from the header of the file already open for decoding: no
    second open (nor a third, by Pillow, for a JPEG's tables), and the same choice."""
    from srgan_cli.modelset import ModelSet

    auto = ModelSet(precision="fp32")
    folder = make_mixed_folder(tmp_path / "in")
    jobs = [Job(folder / name, tmp_path / f"{name}.png", name) for name in MIXED_MODELS]
    opened: Counter[str] = Counter()
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and Path(file).parent == folder:
            opened[Path(file).name] += 1
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    outbox = Pipe(threading.Event(), depth=len(jobs) + 1)
    Reader(auto, jobs, options(), None, outbox).run()
    read = [outbox.get() for _ in jobs]
    assert {work.job.display_name: work.model.name for work in read} == MIXED_MODELS
    assert opened == dict.fromkeys(MIXED_MODELS, 1)
