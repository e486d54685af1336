"""What happened to each job (``ImageResult``), decided before any model runs or after.

``decide_outputs`` applies ``jobs.OutputClaims`` to a whole job list up front: the jobs that
are refused or skipped get their result here, and only the rest go to a model. The CLI
does this before it imports TensorFlow (so a run with nothing to do never loads it), the
Ray engine on its driver before any worker writes. The ``--report`` file is written from
these results. Standard library only (numpy is imported only to write a report file).
"""

from __future__ import annotations

import io
import json
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from srgan_cli.errors import UsageError
from srgan_cli.jobs import Job, OutputClaims

REPORT_SUFFIXES: tuple[str, ...] = (".json", ".csv")


@dataclass
class ImageResult:
    """What happened to one job; sizes are [width, height] in pixels, times in seconds.

    ``total_s`` is load + infer + save for this image (time waiting in queues excluded);
    the batch's wall time is the report's ``total_s``. ``error`` is one line naming the file.
    ``node`` is the machine that did the work (a Ray run names the Ray node, see
    ``ray_engine.node_name``), so a report merged from many machines says where each ran.
    ``model`` names the model that upscaled it (with ``auto``, the one its file asked for);
    empty when no model ran.
    """

    input: str
    output: str
    model: str = ""
    in_size: list[int] | None = None
    out_size: list[int] | None = None
    tiles: int = 0
    load_s: float = 0.0
    infer_s: float = 0.0
    save_s: float = 0.0
    total_s: float = 0.0
    error: str | None = None
    skipped: bool = False
    notes: list[str] = field(default_factory=list)
    node: str = field(default_factory=socket.gethostname)

    @property
    def ok(self) -> bool:
        """Neither failed nor skipped (so far: later stages may still record an error)."""
        return self.error is None and not self.skipped


OnResult = Callable[[ImageResult], None]


def decide_outputs(
    jobs: Sequence[Job],
    claims: OutputClaims,
    on_image: OnResult | None = None,
) -> tuple[dict[int, ImageResult], list[tuple[int, Job]]]:
    """``claims`` over every job, in job order: results for the refused and skipped ones
    (each also passed to ``on_image``), and the (index, job) pairs left to do."""
    results: dict[int, ImageResult] = {}
    todo: list[tuple[int, Job]] = []
    for index, job in enumerate(jobs):
        decision = claims.check(job)
        if decision.error is None and not decision.skip:
            todo.append((index, job))
            continue
        result = ImageResult(
            job.display_name, output_name(job), error=decision.error, skipped=decision.skip
        )
        results[index] = result
        if on_image is not None:
            on_image(result)
    return results, todo


def failed(job: Job, error: str) -> ImageResult:
    """The result of a job refused before it ran (``error`` is one line naming the input)."""
    return ImageResult(job.display_name, output_name(job), error=error)


def output_name(job: Job) -> str:
    """How a result names a job's output: its path, or '-' for stdout."""
    return "-" if job.output is None else str(job.output)


# -- report --------------------------------------------------------------------------------

_RESULT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ImageResult))
_TIMES = ("load_s", "infer_s", "save_s", "total_s")


def result_dict(result: ImageResult) -> dict[str, Any]:
    """JSON-ready dict of one result: times rounded to 0.1 ms, ``error`` only when failed."""
    data = asdict(result)
    for key in _TIMES:
        data[key] = round(data[key], 4)
    if data["error"] is None:
        del data["error"]
    return data


def build_report(
    results: Sequence[ImageResult],
    *,
    version: str,
    model: str,
    precision: str,
    threads: int,
    startup_s: float,
    total_s: float,
    arch: str | None = None,
    scale: int | None = None,
) -> dict[str, Any]:
    """The ``--report`` content: run settings (the model, its architecture and scale), model
    load and wall time, one entry per image."""
    return {
        "version": version,
        "model": model,
        **({} if arch is None else {"arch": arch}),
        **({} if scale is None else {"scale": scale}),
        "precision": precision,
        "threads": threads,
        "startup_s": round(startup_s, 4),
        "total_s": round(total_s, 4),
        "images": [result_dict(result) for result in results],
    }


def check_report_path(path: str | os.PathLike[str]) -> str:
    """The report format ("json" or "csv") from the suffix; UsageError for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        raise UsageError(f"report {os.fspath(path)!r} must end in .json or .csv")
    return suffix[1:]


def write_report(report: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write ``report`` atomically: ``.json`` as one object, ``.csv`` as one row per image.

    CSV cells: sizes as "WxH", notes joined by "; ", ``error`` empty when the image succeeded,
    ``skipped`` as true/false.
    """
    from srgan_cli.imageio import write_atomic  # numpy: only once a report is written

    is_json = check_report_path(path) == "json"
    data = json.dumps(report, indent=2) + "\n" if is_json else _csv_text(report["images"])
    write_atomic(path, data.encode("utf-8"))


def _csv_text(images: Sequence[dict[str, Any]]) -> str:
    import csv  # only for a .csv report: the CLI's start stays quick

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(_RESULT_FIELDS), lineterminator="\n")
    writer.writeheader()
    for image in images:
        writer.writerow({name: _csv_cell(name, image.get(name)) for name in _RESULT_FIELDS})
    return buffer.getvalue()


def _csv_cell(name: str, value: Any) -> str:
    """One CSV cell: "WxH" sizes, "; "-joined notes, true/false, empty for None."""
    if value is None:
        return ""
    if name in ("in_size", "out_size"):
        return "x".join(str(v) for v in value)
    if name == "notes":
        return "; ".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
