"""Planned jobs as a Ray Data pipeline: ``srgan upscale SRC... -o DST --ray ADDRESS``.

The same ``Job`` list the single-process path runs (``jobs.plan_jobs``, optionally one
``--shard``) becomes a dataset of one row per image; ``map_batches`` sends the rows through a
pool of actors, each of which builds one ``Upscaler`` (the model is loaded once per actor,
not per image) and does each row with ``pipeline.run_jobs``, so decoding, tiling, encoding
and the atomic write are exactly the single-process code. The output rules (an input is never
overwritten, an existing output is skipped or refused) are decided once on the driver with
``jobs.OutputClaims`` (``results.decide_outputs``) before any worker writes, so a task Ray
retries after a worker died redoes the same write instead of tripping over its own
half-finished run.

Paths must name the same files on every node (a shared filesystem); they are made absolute
on the driver. Inputs and outputs given as URIs (``s3://``, ``file:///``: ``remote.Uri``) are
read and written by each actor through pyarrow, so they need no shared mount. A row that
fails records a one-line error naming the file and the run goes on.
Ray is imported only here, only when ``--ray`` is used (``pip install "srgan-cli[ray]"``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from srgan_cli.errors import SrganError, UsageError
from srgan_cli.jobs import Job, OutputClaims, location
from srgan_cli.pipeline import DEFAULT_MEMORY_BUDGET, ImageResult, run_jobs
from srgan_cli.remote import Uri
from srgan_cli.results import decide_outputs
from srgan_cli.tfstartup import LOG_LEVEL_ENV, QUIET_LEVEL

LOCAL = "local"
"""``--ray local``: start a private Ray on this machine for the run (shut down afterwards)."""

_RAY_ENV = {LOG_LEVEL_ENV: os.environ.get(LOG_LEVEL_ENV, QUIET_LEVEL)}
"""TensorFlow's start-up notices (the CUDA probe's error too) from every actor would bury
the progress bar; a level of the user's own is passed on (``tfstartup``)."""


@dataclass(frozen=True)
class RaySettings:
    """Where and how wide to run.

    ``address`` is "local", "auto" (the cluster this machine belongs to) or "HOST:PORT" /
    "ray://HOST:PORT". ``cpus_per_actor`` is both the Ray CPU request of each actor and its
    TensorFlow thread count. ``actors`` None = per node, as many as fit in its CPUs minus one
    (left for Ray Data's own tasks: a pool that takes every CPU starves them and the run
    hangs) and in its memory at ``memory_per_actor`` bytes each; at least one in all.
    """

    address: str = LOCAL
    actors: int | None = None
    cpus_per_actor: float = 1.0
    memory_per_actor: int = DEFAULT_MEMORY_BUDGET

    def __post_init__(self) -> None:
        if self.cpus_per_actor <= 0:
            raise UsageError(f"--ray-cpus-per-actor must be > 0, got {self.cpus_per_actor}")
        if self.actors is not None and self.actors < 1:
            raise UsageError(f"--ray-actors must be >= 1, got {self.actors}")

    @property
    def threads(self) -> int:
        """TensorFlow threads per actor: its CPU share, rounded up."""
        return max(1, math.ceil(self.cpus_per_actor))


@dataclass
class RayRun:
    """What came back: one result per job in job order, plus what the report's header needs."""

    results: list[ImageResult]
    precision: str
    actors: int


def run_on_ray(
    jobs: Sequence[Job],
    settings: RaySettings,
    *,
    upscaler_kwargs: dict[str, Any],
    run_kwargs: dict[str, Any] | None = None,
    overwrite: bool = False,
    skip_existing: bool = False,
    update: bool = False,
    on_image: Callable[[ImageResult], None] | None = None,
) -> RayRun:
    """Run ``jobs`` on Ray; ``ImageResult``s in job order, each with the ``node`` that did it.

    ``upscaler_kwargs`` build each actor's ``Upscaler`` (paths in them must be reachable from
    every node); ``run_kwargs`` go to ``run_jobs`` (compress level, max pixels, format...).
    ``on_image`` is called on the driver as results arrive, in completion order. Connects
    with ``ray.init`` unless this process is already connected (then that connection is
    used and left open).
    """
    check_reachable(jobs)
    claims = OutputClaims(jobs, overwrite=overwrite, skip_existing=skip_existing, update=update)
    results, todo = decide_outputs(jobs, claims, on_image)
    precisions: set[str] = set()
    actors = 0
    if todo:
        with _connection(settings.address) as ray:
            check_actor_fits(ray.nodes(), settings)
            actors = settings.actors or default_actor_count(ray.nodes(), settings)
            worker_args = {"upscaler_kwargs": upscaler_kwargs, "run_kwargs": run_kwargs or {}}
            dataset = _dataset(ray, todo, settings, actors, worker_args)
            for index, result, precision in _rows(ray, dataset, jobs):
                precisions.add(precision)
                results[index] = _report(result, on_image)
    precision = ",".join(sorted(precisions)) or str(upscaler_kwargs.get("precision", "auto"))
    return RayRun([results[i] for i in range(len(jobs))], precision, actors)


def _rows(ray: Any, dataset: Any, jobs: Sequence[Job]) -> Iterator[tuple[int, ImageResult, str]]:
    """(job index, result, precision used) as the dataset's rows arrive on the driver."""
    try:
        for row in dataset.iter_rows():
            index = int(row["index"])
            yield index, _result_from(row, jobs[index]), str(row["precision"])
    except ray.exceptions.RayError as err:  # e.g. no actor could load the model
        raise SrganError(f"Ray run failed: {_cause(err)}") from err


def _report(result: ImageResult, on_image: Callable[[ImageResult], None] | None) -> ImageResult:
    if on_image is not None:
        on_image(result)
    return result


def check_reachable(jobs: Sequence[Job]) -> None:
    """Workers cannot read our stdin or write our stdout: refuse '-' up front (exit 2)."""
    if any(job.input is None or job.output is None for job in jobs):
        raise UsageError("--ray needs input files and output paths every node can reach, not '-'")


def default_actor_count(nodes: Sequence[dict[str, Any]], settings: RaySettings) -> int:
    """Actors for the cluster ``ray.nodes()`` describes: per alive node, the CPUs minus one
    over ``cpus_per_actor``, capped by memory over ``memory_per_actor``; at least 1."""
    total = 0
    for node in nodes:
        if not node.get("Alive", False):
            continue
        resources = node.get("Resources", {})
        by_cpu = int((resources.get("CPU", 0) - 1) // settings.cpus_per_actor)
        by_memory = int(resources.get("memory", 0) // settings.memory_per_actor)
        total += max(0, min(by_cpu, by_memory))
    return max(1, total)


def check_actor_fits(nodes: Sequence[dict[str, Any]], settings: RaySettings) -> None:
    """UsageError unless some alive node has the CPUs one actor asks for; Ray would
    otherwise wait for such a node forever and the run would hang silently.

    Memory is only used to size the default pool, not requested from Ray: a reservation
    no node can meet (small CI machines) would hang the same way.
    """
    for node in nodes:
        if node.get("Alive", False) and node.get("Resources", {}).get("CPU", 0) >= (
            settings.cpus_per_actor
        ):
            return
    raise UsageError(
        f"no Ray node has {settings.cpus_per_actor:g} CPUs for one actor "
        "(lower --ray-cpus-per-actor, or add bigger nodes)"
    )


class _connection:
    """``with _connection(address) as ray``: connect (or reuse a connection), then let go.

    Only a connection made here is shut down at the end, so a caller (a test, a notebook)
    that called ``ray.init`` itself keeps its Ray.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self.started = False

    def __enter__(self) -> Any:
        try:
            import ray
        except ImportError as err:
            raise UsageError('--ray needs Ray: pip install "srgan-cli[ray]"') from err
        if not ray.is_initialized():
            _init(ray, self.address)
            self.started = True
        _quiet_ray_data()
        return ray

    def __exit__(self, *exc: object) -> None:
        if self.started:
            import ray

            ray.shutdown()


def _init(ray: Any, address: str) -> None:
    """``ray.init`` for "local" (a private instance) or a cluster address; one-line errors."""
    options: dict[str, Any] = {
        "log_to_driver": False,
        "runtime_env": {"env_vars": dict(_RAY_ENV)},
        "logging_level": "warning",
    }
    if address == LOCAL:
        options["include_dashboard"] = False
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as err:
        hint = "" if address == LOCAL or os.environ.get("RAY_AUTH_MODE") else _AUTH_HINT
        raise SrganError(f"cannot connect to Ray at {address}: {_first_line(err)}{hint}") from err


_AUTH_HINT = " (a cluster with token authentication also needs RAY_AUTH_MODE=token)"
"""Ray >= 2.5x turns token authentication on for 'ray start' clusters but sends the token
only to a cluster it found by itself, not to an address given (or in RAY_ADDRESS): that
refusal reads as a plain connection failure."""


def _quiet_ray_data() -> None:
    """Our progress bar instead of Ray Data's (two bars fighting over stderr help no one);
    Ray Data's INFO lines off, its warnings (a stalled pool, say) kept."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "bars disabled"


def _dataset(
    ray: Any,
    todo: Sequence[tuple[int, Job]],
    settings: RaySettings,
    actors: int,
    worker_args: dict[str, Any],
) -> Any:
    """One row per job (one block each, so a retried task redoes one image), mapped by a
    fixed pool of ``actors`` ``_UpscaleRows``.

    Ray Data creates pool actors with ``max_restarts=-1`` and ``max_task_retries=-1``: an
    actor whose process dies (OOM killer, pre-empted node) is restarted and its row retried,
    so no output goes missing (tests/test_ray_engine.py kills one mid-run). We rely on that
    default rather than pass them, which Ray 2.5x deprecates as loose ``ray_remote_args``.
    """
    rows = [{"index": index, "job": _job_to_json(job)} for index, job in todo]
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
    return dataset.map_batches(
        _UpscaleRows,
        fn_constructor_kwargs={**worker_args, "threads": settings.threads},
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=settings.cpus_per_actor,
    )


def _job_to_json(job: Job) -> str:
    """A job as JSON with absolute paths (workers do not share the driver's cwd); URIs as
    written."""
    data = {f.name: getattr(job, f.name) for f in fields(job)}
    for key in ("input", "output"):
        place = data[key]
        data[key] = str(place) if isinstance(place, Uri) else os.path.abspath(place)
    return json.dumps(data)


def _job_from_json(text: str) -> Job:
    data = json.loads(text)
    return Job(**{**data, "input": location(data["input"]), "output": location(data["output"])})


def _result_from(row: dict[str, Any], job: Job) -> ImageResult:
    """The worker's result, with the driver's names (as the user typed them) put back."""
    data = json.loads(row["result"])
    result = ImageResult(**data)
    result.input, result.output = job.display_name, str(job.output)
    return result


class _UpscaleRows:
    """One Ray actor: loads the ``Upscaler`` (for ``auto``, both models) once, then upscales
    row after row.

    Everything that can go wrong with one image (bad bytes, an unwritable folder, a bug hit
    by one odd file) becomes that row's ``error``, so one file never stops the dataset.
    """

    def __init__(
        self, upscaler_kwargs: dict[str, Any], run_kwargs: dict[str, Any], threads: int
    ) -> None:
        from srgan_cli.tfstartup import quiet_tensorflow_startup

        with quiet_tensorflow_startup():
            import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        from srgan_cli.modelset import load_model

        self.upscaler = load_model(**upscaler_kwargs)  # auto: both models, once per actor
        self.run_kwargs = run_kwargs
        self.node = node_name()

    def __call__(self, batch: Any) -> dict[str, list[Any]]:
        """numpy batch with ``index`` and ``job`` -> ``index``, ``result`` (JSON), ``precision``."""
        out: dict[str, list[Any]] = {"index": [], "result": [], "precision": []}
        for index, text in zip(batch["index"], batch["job"], strict=True):
            job = _job_from_json(text)
            result = self._run(job)
            result.node = self.node
            out["index"].append(int(index))
            out["result"].append(json.dumps(asdict(result)))
            out["precision"].append(self.upscaler.precision_used)
        return out

    def _run(self, job: Job) -> ImageResult:
        """``run_jobs`` on one job; overwrite because the driver already decided to write."""
        try:
            (result,) = run_jobs(self.upscaler, [job], **self.run_kwargs, overwrite=True)
        except Exception as err:  # recorded as this row's failure, not swallowed
            result = ImageResult(job.display_name, str(job.output))
            result.error = f"{job.display_name}: {type(err).__name__}: {_first_line(err)}"
        return result


def node_name() -> str:
    """'host/1a2b3c4d': the host name and the start of the Ray node id (simulated and
    containerised nodes can share a host name)."""
    import ray

    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"


def _cause(err: BaseException) -> str:
    """The actionable line of a Ray error: our own error's message when an actor raised one
    (say, weights missing on a node that lacks the shared path), else Ray's first line."""
    ours = re.findall(r"srgan_cli\.errors\.\w+: (.+)", str(err))
    return ours[-1] if ours else _first_line(err)


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
