"""``srgan worker start|status|stop|run``: keep the model loaded in a background process.

``srgan upscale`` hands its call to the worker when it holds the model the call asks for
(``srgan_cli.worker.client``), so a Makefile rule that runs srgan once per file pays for
the image, not for starting TensorFlow. ``run`` is the worker itself in the foreground;
``start`` runs it detached and returns once it serves.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import click

from srgan_cli.cli.options import (
    CONTEXT_SETTINGS,
    DEFAULT_TILE_PAD,
    check_model_choice,
    load_upscaler,
    model_option,
    precision_option,
    weights_option,
)
from srgan_cli.errors import SrganError

DEFAULT_IDLE_TIMEOUT_S = 600
STOP_WAIT_S = 60.0

WORKER_EPILOG = """\b
Examples:
  srgan worker start                   # load auto (srgan and real), serve until 10 min idle
  srgan upscale a.png -o a_x4.png      # served by the worker (same output as without)
  srgan worker status                  # exit 0 with pid, model, uptime, jobs done; 1 if none
  srgan worker stop

\b
In a Makefile, one line starts the worker with the first call:
  export SRGAN_WORKER=auto
  %_x4.png: %.png ; srgan upscale $< -o $@ --overwrite

\b
SRGAN_WORKER=auto starts a worker when none runs, =off never uses one; unset, srgan upscale
uses a running worker that holds the same model and precision. --no-worker runs in-process.
"""

idle_timeout_option = click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_IDLE_TIMEOUT_S,
    show_default=True,
    metavar="SECONDS",
    help="Exit after this long without a call.",
)


@click.group("worker", epilog=WORKER_EPILOG, context_settings=CONTEXT_SETTINGS)
def worker() -> None:
    """A background process that keeps the model loaded for fast one-file calls."""


@worker.command("start", context_settings=CONTEXT_SETTINGS)
@model_option
@weights_option
@precision_option
@idle_timeout_option
def start(model: str | None, weights: Path | None, precision: str, idle_timeout: float) -> None:
    """Start a worker in the background; return once it is ready."""
    from srgan_cli.worker import client

    check_model_choice(model, weights)
    with client.start_lock():
        running = client.ask("status")
        if running is None:
            client.start_worker(client.model_args(model, weights, precision), idle_timeout)
            running = client.ask("status")
    if running is None:
        raise SrganError("the worker exited right after starting; see srgan worker status")
    _check_holds(running, model, weights, precision)
    click.echo(_describe(running))


def _check_holds(
    status: dict[str, Any], model: str | None, weights: Path | None, precision: str
) -> None:
    """A running worker with other weights or precision is an error, not silently kept."""
    from srgan_cli.weights import resolve_all

    wanted = ", ".join(os.path.realpath(path) for path in resolve_all(model, weights))
    if wanted != status["weights"] or precision not in ("auto", status["precision"]):
        raise SrganError(
            f"a worker holding {status['weights']} ({status['precision']}) is already "
            "running; srgan worker stop first"
        )


@worker.command("status", context_settings=CONTEXT_SETTINGS)
@click.pass_context
def status(ctx: click.Context) -> None:
    """Show the running worker (exit 0), or say there is none (exit 1)."""
    from srgan_cli.worker import client

    running = client.ask("status")
    if running is None:
        click.echo("srgan worker: not running")
        ctx.exit(1)
    click.echo(_describe(running))


@worker.command("stop", context_settings=CONTEXT_SETTINGS)
def stop() -> None:
    """Stop the worker: new calls run in-process, the ones already waiting finish first."""
    from srgan_cli.worker import client
    from srgan_cli.worker.paths import socket_path

    reply = client.ask("stop")
    if reply is None:
        click.echo("srgan worker: not running")
        return
    deadline = time.monotonic() + STOP_WAIT_S
    while os.path.lexists(socket_path()) and time.monotonic() < deadline:
        time.sleep(0.05)
    click.echo(f"srgan worker: stopped (pid {reply.get('pid')})")


@worker.command("run", context_settings=CONTEXT_SETTINGS)
@model_option
@weights_option
@precision_option
@idle_timeout_option
@click.option("--ready-fd", type=int, default=None, hidden=True)
def run(
    model: str | None,
    weights: Path | None,
    precision: str,
    idle_timeout: float,
    ready_fd: int | None,
) -> None:
    """Run the worker in the foreground (what start runs detached)."""
    from srgan_cli.cli.upscale import upscale
    from srgan_cli.worker.held import HeldModel
    from srgan_cli.worker.paths import socket_path
    from srgan_cli.worker.server import Worker

    held = HeldModel(load_upscaler(model, weights, precision, None, DEFAULT_TILE_PAD))
    held.warm_up()
    server = Worker(held, socket_path(), idle_timeout, upscale)
    server.listen()
    if ready_fd is None:
        click.echo(f"srgan worker: ready on {server.socket_path} (pid {os.getpid()})", err=True)
    else:
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
    server.serve()


def _describe(status: dict[str, Any]) -> str:
    """The status reply as a few lines a person reads."""
    return "\n".join(
        [
            f"srgan worker: running (pid {status['pid']}, srgan {status['version']})",
            f"model: {status['model']} ({status['weights']}), precision {status['precision']}",
            f"uptime: {status['uptime_s']:.0f} s, jobs done: {status['jobs_done']}, "
            f"queued: {status['queued']}, idle timeout: {status['idle_timeout_s']:g} s",
            f"socket: {status['socket']}",
        ]
    )
