"""``srgan serve``: the seed's REST API over one loaded ``Upscaler``.

The project descends from a Docker REST service, and its users' scripts post images with
``curl -F "image=@food.png" -XPOST http://localhost:5000/model/predict > food_high_res.png``.
This module keeps that contract: ``POST /model/predict`` (multipart field ``image``) answers
the 4x image as ``image/png`` (the query parameter ``outscale``, 0 < F <= 4, asks for another
size, as ``srgan upscale --outscale`` does; ``model`` names another shipped model, loaded on
first use and kept while at most ``max_models`` are held), ``GET /model/metadata``
describes the model in the seed's keys, and ``GET /openapi.json`` describes both.

Why Flask: it is small, well kept and synchronous, and it is what the seed was built on.
An async framework would buy nothing here: there is one model, and it must run one request
at a time anyway (``_ModelGate`` serialises it). werkzeug's threaded server gives each
connection a thread, so while one request holds the model, others upload, decode and encode
PNGs. Flask is an optional extra (``pip install 'srgan-cli[serve]'``); only this module
imports it, and ``srgan_cli.cli`` checks for it before importing this module.

Each request takes the same path as ``srgan upscale``: ``read_image`` (pixel limit, modes,
alpha, EXIF, ICC) -> ``Upscaler.upscale_image`` (tiling) -> ``encode_png``. Refusals are
JSON ``{"status": "error", "message": ...}``:

* 400: no ``image`` field, a bad ``outscale``, a ``model`` this server cannot hold, or the
  upload is not an image we can use: not an image, damaged or truncated, or over
  ``max_pixels``. The pixel count is a property of the
  content, not of the request size, and ``read_image`` refuses all of these the same way.
* 413: the request body is over ``max_upload_bytes`` (Flask's ``MAX_CONTENT_LENGTH``).
* 404 / 405: unknown path / wrong method (405 carries the ``Allow`` header).
* 500: a bug, logged with its traceback on the server; bad input never leads here.
"""

from __future__ import annotations

import html
import ipaddress
import json
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError
from werkzeug.serving import BaseWSGIServer, get_sockaddr, make_server, select_address_family
from werkzeug.utils import secure_filename

from srgan_cli import SCALE, __version__
from srgan_cli.errors import ImageError, SrganError, UsageError
from srgan_cli.imageio import DEFAULT_COMPRESS_LEVEL, DecodedImage, encode_png, read_image
from srgan_cli.jobs import default_suffix
from srgan_cli.resize import check_outscale
from srgan_cli.weights import MODEL_CHOICES

if TYPE_CHECKING:
    from srgan_cli.modelset import AnyUpscaler

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
"""The seed's port, so existing scripts keep their URL."""

DEFAULT_MAX_PIXELS: int = 4_000_000
"""Input pixels (width * height) accepted per request: the seed's 2000x2000 limit. Lower
than the CLI's 50 MP because a request holds the model for its whole run: at ~0.5 s per
128x128 input (16x64 generator, 2 cores, see ``Upscaler._infer``) 4 MP takes about two
minutes, 50 MP would keep every other client waiting for over 25 minutes."""

DEFAULT_MAX_UPLOAD_MB: int = 32
"""Request body limit in MiB: a 4 MP RGBA PNG stored without compression is about 16 MiB."""

MIB = 1024 * 1024
IMAGE_FIELD = "image"
"""The multipart form field holding the upload (the seed's name)."""
OUTSCALE_PARAM = "outscale"
"""Query parameter for the output scale (``srgan upscale --outscale``); default 4."""
MODEL_PARAM = "model"
"""Query parameter naming a shipped model or ``auto`` (``srgan upscale --model``); default:
the server's."""
MODEL_HEADER = "X-Srgan-Model"
"""Response header naming the model that upscaled the image (with ``auto``, the one the
upload's header asked for: ``real`` for JPEGs at or below the threshold and lossy WebPs)."""
DEFAULT_MAX_MODELS: int = 2
"""Models held at once, the server's own included (``auto`` counts as one: its members are
the server's): each costs its weights and its graphs (tens of MB for the 16x64 generator),
and loading one takes a second or two."""

LISTEN_BACKLOG = 64
"""Connections the kernel holds until the accept loop takes them (werkzeug alone: 5)."""

METADATA_ID = "srgan-cli"
METADATA_TYPE = "Image-To-Image Translation Or Transformation"
"""The seed's ``type`` string, kept so scripts that group models by type still match."""
METADATA_LICENSE = "MIT"


class _ModelGate:
    """The model runs one request at a time; the others wait here for it.

    TensorFlow already spreads one inference over all cores, so running two at once would
    only make both slower and double the activation memory. ``?model=NAME`` models are
    loaded here on first use (``load``), at most ``max_models`` held with the server's own,
    which is never dropped; the least recently used other one goes first.
    """

    def __init__(
        self,
        upscaler: AnyUpscaler,
        max_models: int = DEFAULT_MAX_MODELS,
        load: Callable[[str], AnyUpscaler] | None = None,
    ) -> None:
        from srgan_cli.modelset import members

        self._default = upscaler
        self._members = members(upscaler)
        self._others: OrderedDict[str, AnyUpscaler] = OrderedDict()
        self._max_others = max(0, max_models - 1)
        self._load = load or _loader_like(upscaler)
        self._lock = threading.Lock()

    @property
    def choices(self) -> tuple[str, ...]:
        """The model names ``?model=`` accepts: the server's own (and, for ``auto``, its
        members), then ``auto`` and the shipped ones when others may be loaded."""
        own = (self._default.name, *self._members)
        if not self._max_others:
            return tuple(dict.fromkeys(own))
        return tuple(dict.fromkeys((*own, *MODEL_CHOICES)))

    def scale_of(self, name: str | None) -> int:
        """The scale of the model ``name`` names (see ``choices``), without loading it: the
        server's own model's, or x4 (``auto`` and the shipped models are all x4)."""
        return self._default.scale if name is None else SCALE

    def upscale(
        self, image: DecodedImage, data: bytes, outscale: float, model: str | None = None
    ) -> tuple[DecodedImage, str]:
        """``image`` through the model ``model`` names (None: the server's); with ``auto``,
        the member its upload's header (``data``) asks for. Also gives that model's name."""
        with self._lock:
            chosen = self._upscaler(model).pick(data)  # the header only: no pixels looked at
            return chosen.upscale_image(image, outscale=outscale), chosen.name

    def _upscaler(self, name: str | None) -> AnyUpscaler:
        if name is None or name == self._default.name:
            return self._default
        if name in self._members:  # a member of the server's auto: already loaded
            return self._members[name]
        if name in self._others:
            self._others.move_to_end(name)
            return self._others[name]
        upscaler = self._load(name)
        self._others[name] = upscaler
        while len(self._others) > self._max_others:
            self._others.popitem(last=False)
        return upscaler


def _loader_like(upscaler: AnyUpscaler) -> Callable[[str], AnyUpscaler]:
    """Load shipped models (or ``auto``) with the server model's precision and tiling."""

    def load(name: str) -> AnyUpscaler:
        from srgan_cli.modelset import load_model

        return load_model(
            name,
            precision=getattr(upscaler, "precision_used", "auto"),
            tile=getattr(upscaler, "tile", None),
            tile_pad=getattr(upscaler, "tile_pad", 32),
        )

    return load


def create_app(
    upscaler: AnyUpscaler,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * MIB,
    compress_level: int = DEFAULT_COMPRESS_LEVEL,
    max_models: int = DEFAULT_MAX_MODELS,
    load: Callable[[str], AnyUpscaler] | None = None,
) -> Flask:
    """The Flask app serving ``upscaler`` (see the module docstring for the API).

    ``max_pixels`` caps width * height of an upload (400 above it); ``max_upload_bytes``
    caps the request body (413 above it); ``compress_level`` is the zlib level of the PNG
    answers. ``max_models`` (1 = only ``upscaler``) bounds the models ``?model=`` loads,
    with ``load(name)`` (default: a shipped model, or ``auto``, at ``upscaler``'s precision
    and tiling). ``upscaler`` may be an ``auto`` ``ModelSet``: each upload then goes
    through the model its own header asks for, named in the ``X-Srgan-Model`` header. The
    app owns the lock that serialises the model, so build one app per ``Upscaler``. Safe
    for a threaded server.
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_upload_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = max_upload_bytes  # text fields: same limit, same 413
    gate = _ModelGate(upscaler, max_models, load)
    metadata = model_metadata(upscaler, max_pixels=max_pixels, max_upload_bytes=max_upload_bytes)
    metadata["models"] = list(gate.choices)
    spec = openapi_spec(
        max_pixels=max_pixels, max_upload_bytes=max_upload_bytes, scale=upscaler.scale
    )

    @app.post("/model/predict")
    def predict() -> Response:
        upload = request.files.get(IMAGE_FIELD)
        if upload is None:
            raise BadRequest(
                f"missing file field {IMAGE_FIELD!r}: send the image as multipart/form-data, "
                f'e.g. curl -F "{IMAGE_FIELD}=@photo.png" -XPOST {request.base_url}'
            )
        model = _model(request.args.get(MODEL_PARAM), gate.choices)
        outscale = _outscale(request.args.get(OUTSCALE_PARAM), gate.scale_of(model))
        name = upload.filename or IMAGE_FIELD
        data = upload.read()
        try:
            image = read_image(data, max_pixels=max_pixels, name=name)
        except ImageError as err:
            raise BadRequest(str(err)) from err
        try:
            result, used = gate.upscale(image, data, outscale, model)
        except SrganError as err:  # a shipped model that cannot be loaded here
            raise BadRequest(f"model {model}: {err}") from err
        data = encode_png(
            result.pixels, result.alpha, result.mode, result.icc_profile, compress_level
        )
        response = Response(data, mimetype="image/png")
        disposition = f'inline; filename="{_output_name(name, outscale)}"'
        response.headers["Content-Disposition"] = disposition
        response.headers[MODEL_HEADER] = used
        return response

    @app.get("/model/metadata")
    def get_metadata() -> Response:
        return jsonify(metadata)

    @app.get("/openapi.json")
    def get_openapi() -> Response:
        return jsonify(spec)

    @app.get("/")
    def index() -> Response:
        return Response(_index_html(upscaler.name, upscaler.scale), mimetype="text/html")

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Response:
        message = err.description or err.name
        if err.code == 413:
            message = f"upload is over the server's limit of {max_upload_bytes:,} bytes"
        response = err.get_response()
        response.set_data(_error_json(message))
        response.content_type = "application/json"
        return response

    @app.errorhandler(Exception)
    def unexpected_error(err: Exception) -> Response:
        app.logger.error("%s %s failed", request.method, request.path, exc_info=err)
        response = InternalServerError().get_response()
        response.set_data(_error_json("internal server error (details are in the server log)"))
        response.content_type = "application/json"
        return response

    return app


def _outscale(raw: str | None, scale: int) -> float:
    """The ``outscale`` query parameter (default: the model's ``scale``); BadRequest (400)
    for a bad value."""
    if raw is None:
        return float(scale)
    try:
        return check_outscale(float(raw), scale)
    except ValueError:
        raise BadRequest(f"{OUTSCALE_PARAM} must be a number, got {raw!r}") from None
    except UsageError as err:
        raise BadRequest(str(err)) from err


def _model(raw: str | None, choices: tuple[str, ...]) -> str | None:
    """The ``model`` query parameter (None: the server's model); 400 for one not held here."""
    if raw is None or raw == choices[0]:
        return None
    if raw in choices:
        return raw
    if len(choices) == 1:
        raise BadRequest(
            f"{MODEL_PARAM} {raw!r}: this server holds only model {choices[0]} "
            "(srgan serve --max-models 2 or more loads others on demand)"
        )
    raise BadRequest(f"unknown {MODEL_PARAM} {raw!r}; choose one of {', '.join(choices)}")


def _error_json(message: str) -> str:
    return json.dumps({"status": "error", "message": message}) + "\n"


def _output_name(upload_name: str, outscale: float) -> str:
    """'food.png' -> 'food_x4.png' ('food_x2.png' at outscale 2), as ``srgan upscale`` names
    it (``jobs.default_suffix``), reduced to safe ASCII for the Content-Disposition header."""
    stem = secure_filename(PurePath(upload_name).stem) or "result"
    return f"{stem}{default_suffix(outscale)}.png"


def model_metadata(
    upscaler: AnyUpscaler, *, max_pixels: int, max_upload_bytes: int
) -> dict[str, Any]:
    """``GET /model/metadata``: the seed's keys (id, name, description, type, source,
    license) describing our model, plus ``version``, ``model``, ``scale`` and the limits."""
    from srgan_cli.modelset import members

    scale = upscaler.scale
    cards = [(name, member.card) for name, member in members(upscaler).items()]
    descriptions = [
        card.description or f"{name}: x{scale} super-resolution generator" for name, card in cards
    ]
    if len(cards) > 1:
        descriptions.insert(0, f"{upscaler.name}: each image gets the model its file asks for.")
    hashes = ", ".join(f"{name} sha256 {card.sha256[:12]}" for name, card in cards)
    source = f"srgan-cli {__version__}, weights trained in-house ({hashes})"
    license_ = METADATA_LICENSE
    imported = cards[0][1].source if len(cards) == 1 else None  # auto: shipped models only
    if imported:
        source = f"imported from {imported['file']} (sha256 {imported['sha256'][:12]})"
        license_ = cards[0][1].license
    return {
        "id": METADATA_ID,
        "name": f"{upscaler.spec.arch} x{scale} generator ({upscaler.name})",
        "description": " ".join(descriptions),
        "type": METADATA_TYPE,
        "source": source,
        "license": license_,
        "version": __version__,
        "model": upscaler.name,
        "arch": upscaler.spec.arch,
        "scale": scale,
        "limits": {"max_pixels": max_pixels, "max_upload_bytes": max_upload_bytes},
    }


def openapi_spec(*, max_pixels: int, max_upload_bytes: int, scale: int = SCALE) -> dict[str, Any]:
    """A hand-written OpenAPI 3.0 description of the endpoints, served at ``/openapi.json``."""
    error = {"$ref": "#/components/schemas/Error"}

    def error_response(why: str) -> dict[str, Any]:
        return {"description": why, "content": {"application/json": {"schema": error}}}

    predict = {
        "summary": f"Upscale an image {scale}x",
        "description": (
            "Upload one image (PNG, JPEG, BMP, TIFF, WebP or GIF) as the multipart field "
            f"'{IMAGE_FIELD}'. The answer is a PNG {scale}x the width and height (or "
            f"'{OUTSCALE_PARAM}' times), in the input's mode (RGBA, grayscale and 16-bit "
            "grayscale are kept; alpha is upscaled bicubically). At most "
            f"{max_pixels:,} input pixels and {max_upload_bytes:,} bytes per request. "
            f"Requests queue for the model. The '{MODEL_HEADER}' response header names "
            "the model used."
        ),
        "parameters": [
            {
                "name": MODEL_PARAM,
                "in": "query",
                "required": False,
                "description": (
                    "A shipped model (see /model/metadata 'models'), loaded on first use; "
                    "default: the server's model"
                ),
                "schema": {"type": "string"},
            },
            {
                "name": OUTSCALE_PARAM,
                "in": "query",
                "required": False,
                "description": (
                    f"Output scale F, 0 < F <= {scale}: the model's {scale}x, then a "
                    "Lanczos resize to F times the input size (rounded)"
                ),
                "schema": {
                    "type": "number",
                    "minimum": 0,
                    "exclusiveMinimum": True,
                    "maximum": scale,
                    "default": scale,
                },
            },
        ],
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [IMAGE_FIELD],
                        "properties": {IMAGE_FIELD: {"type": "string", "format": "binary"}},
                    }
                }
            },
        },
        "responses": {
            "200": {
                "description": f"The {scale}x image (or outscale times)",
                "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
            },
            "400": error_response(
                f"No '{IMAGE_FIELD}' field, a bad '{OUTSCALE_PARAM}' or '{MODEL_PARAM}', or "
                "not a usable image: not an image, damaged or truncated, or over the pixel limit"
            ),
            "413": error_response("Request body over the upload limit"),
        },
    }
    metadata = {
        "summary": "Describe the model",
        "responses": {
            "200": {
                "description": "Model metadata",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Metadata"}}
                },
            }
        },
    }
    text = {"type": "string"}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "srgan",
            "version": __version__,
            "description": f"{scale}x photo upscaling with a super-resolution generator",
        },
        "paths": {
            "/model/predict": {"post": predict},
            "/model/metadata": {"get": metadata},
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["status", "message"],
                    "properties": {
                        "status": {"type": "string", "enum": ["error"]},
                        "message": text,
                    },
                },
                "Metadata": {
                    "type": "object",
                    "required": ["id", "name", "description", "type", "source", "license"],
                    "properties": {
                        **{key: text for key in ("id", "name", "description", "type")},
                        **{key: text for key in ("source", "license", "version", "model")},
                        "arch": text,
                        "scale": {"type": "integer"},
                        "limits": {"type": "object"},
                        "models": {"type": "array", "items": text},
                    },
                },
            }
        },
    }


def _index_html(model_name: str, scale: int) -> str:
    """A minimal landing page: what this is, how to call it, where the API description is."""
    name = html.escape(model_name)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>srgan serve</title></head>
<body>
<h1>srgan {html.escape(__version__)}: {scale}x upscaling with model {name}</h1>
<p><code>curl -F "image=@photo.png" -XPOST http://HOST:PORT/model/predict &gt; big.png</code></p>
<ul>
<li><a href="openapi.json">openapi.json</a>: the API (OpenAPI 3)</li>
<li><a href="model/metadata">model/metadata</a>: the model</li>
</ul>
</body></html>
"""


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_server(
    upscaler: AnyUpscaler,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    **app_options: Any,
) -> BaseWSGIServer:
    """A threaded werkzeug server for ``create_app(upscaler, **app_options)``, listening.

    Port 0 picks a free port (``server.port`` says which). We bind the socket ourselves so
    that a busy port or an unknown host is one SrganError line (werkzeug would print
    several and exit), and to queue more than werkzeug's 5 pending connections.
    """
    app = create_app(upscaler, **app_options)
    listener = _listen(host, port)
    try:
        return make_server(host, port, app, threaded=True, fd=listener.fileno())
    finally:
        listener.close()  # werkzeug keeps its own duplicate of the descriptor


def _listen(host: str, port: int) -> socket.socket:
    family = select_address_family(host, port)
    try:
        address = get_sockaddr(host, port, family)
        listener = socket.socket(family, socket.SOCK_STREAM)
    except OSError as err:
        raise SrganError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(LISTEN_BACKLOG)
    except OSError as err:
        listener.close()
        raise SrganError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err
    return listener


def server_url(server: BaseWSGIServer) -> str:
    """'http://127.0.0.1:5000' for a server (IPv6 hosts in brackets)."""
    host = server.host
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{server.port}"


def serve(
    upscaler: AnyUpscaler,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    on_ready: Callable[[str], None] | None = None,
    **app_options: Any,
) -> None:
    """Serve ``upscaler`` on ``host:port`` until Ctrl-C (or SIGTERM made into one).

    ``on_ready(url)`` is called once the port is open; ``app_options`` go to ``create_app``.
    Returns normally when interrupted: werkzeug's ``serve_forever`` takes the
    KeyboardInterrupt and closes the socket.
    """
    server = create_server(upscaler, host, port, **app_options)
    if on_ready is not None:
        on_ready(server_url(server))
    server.serve_forever()
