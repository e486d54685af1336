"""The ``srgan`` command: a thin click shell over ``srgan_cli.pipeline``.

This module holds the ``main`` group (error and signal handling, exit codes) and registers
one command per module: ``upscale``, ``info``, ``import``, ``serve``, ``train``, ``evaluate``
(``srgan eval``), ``compare``, ``bench``, ``completion`` and ``worker``; the options they share
are in ``options``. TensorFlow, numpy and Pillow are imported inside the commands, never at module
level, so ``srgan --help`` answers instantly.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from srgan_cli import __version__
from srgan_cli.cli import (
    bench,
    compare,
    completion,
    evaluate,
    import_model,
    info,
    serve,
    train,
    upscale,
    worker,
)
from srgan_cli.cli.options import CONTEXT_SETTINGS
from srgan_cli.errors import EXIT_INTERRUPTED, SrganError

MAIN_EPILOG = """\b
Examples:
  srgan upscale photo.jpg                    # writes photo_x4.png beside it
  srgan upscale photos/ -r -o big/           # a folder, subfolders kept under big/
  srgan upscale photo.jpg -o big.webp --outscale 2   # WebP (from the extension), 2x
  srgan upscale 'shots/**/*.png' -o big/     # a quoted glob, expanded by srgan
  srgan info                                 # models, weights, CPU features

\b
Makefile pattern rule (make redoes only stale outputs, so --overwrite):
  %_x4.png: %.png ; srgan upscale $< -o $@ --overwrite
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
    """Upscale photos 4x on the CPU with in-house SRGAN models or your own ESRGAN files."""
    _sigterm_as_interrupt(ctx)


main.add_command(upscale.upscale)
main.add_command(info.info)
main.add_command(import_model.import_command)
main.add_command(serve.serve_command)
main.add_command(train.train)
main.add_command(evaluate.eval_command)
main.add_command(compare.compare)
main.add_command(bench.bench)
main.add_command(completion.completion)
main.add_command(worker.worker)
