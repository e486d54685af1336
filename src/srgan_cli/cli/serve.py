"""``srgan serve``: the model over HTTP (the optional serve extra), a thin shell over
``srgan_cli.server``."""

from __future__ import annotations

from pathlib import Path

import click

from srgan_cli.cli.options import CONTEXT_SETTINGS, count_option, load_upscaler, model_options
from srgan_cli.errors import SrganError

# Mirror srgan_cli.server's defaults, which cannot be imported before flask is known to be
# installed; tests/test_server.py checks that they agree.
DEFAULT_SERVE_HOST = "127.0.0.1"
DEFAULT_SERVE_PORT = 5000
DEFAULT_SERVE_MAX_PIXELS = 4_000_000
DEFAULT_MAX_UPLOAD_MB = 32
DEFAULT_MAX_MODELS = 2
SERVE_EXTRA_MISSING = "srgan serve needs the serve extra: pip install 'srgan-cli[serve]'"

SERVE_EPILOG = """\b
Examples:
  srgan serve                                  # http://127.0.0.1:5000, model auto
  curl --fail -F "image=@examples/astronaut.png" -o astronaut_x4.png \\
       http://localhost:5000/model/predict     # ?model=real: one shipped model, forced
  curl http://localhost:5000/model/metadata    # JSON; the API is at /openapi.json
  srgan serve --host 0.0.0.0 --port 8080       # reachable from the network: no auth!

\b
Errors are JSON {"status": "error", "message": ...}: 400 no 'image' field, not an image,
damaged, over --max-pixels, or a ?model= this server cannot hold; 413 request over
--max-upload-mb; 404/405 wrong path/method.
"""


@click.command("serve", epilog=SERVE_EPILOG, context_settings=CONTEXT_SETTINGS)
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
@count_option(
    "--max-pixels",
    DEFAULT_SERVE_MAX_PIXELS,
    "Refuse uploads with more pixels (width x height) than this (400).",
)
@count_option("--max-upload-mb", DEFAULT_MAX_UPLOAD_MB, "Refuse requests over N MiB (413).")
@count_option(
    "--max-models",
    DEFAULT_MAX_MODELS,
    "Models held at once for ?model=NAME (loaded on first use, least recently used dropped; "
    "the server's own is kept); 1 = only the server's model.",
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
    max_models: int,
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
        max_models=max_models,
    )


def _require_flask() -> None:
    """One-line SrganError (exit 1) when the optional serve extra is not installed."""
    try:
        import flask  # noqa: F401 - only checking that the extra is installed
    except ImportError as err:
        raise SrganError(SERVE_EXTRA_MISSING) from err
