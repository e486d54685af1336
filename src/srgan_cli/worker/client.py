"""What ``srgan upscale`` tries first: hand the call to a running worker.

The call travels as its own command line (rebuilt from the parsed options), its absolute
working directory and umask, and whether its streams are terminals; the worker runs the
same command there and sends back stderr as it comes, stdout, the outputs it finished and
the exit code. ``forward`` returns None whenever the call should run in-process instead: no
worker, a stale socket (removed), a worker holding another model, or a worker that dies
mid-call (what it already wrote for the call is removed first, so the in-process run does
the whole call exactly as if no worker had been there). Standard library and click only:
this is the light path, it must not import numpy, Pillow or TensorFlow.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import socket
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from srgan_cli import __version__
from srgan_cli.errors import SrganError
from srgan_cli.streams import binary_stdin, binary_stdout
from srgan_cli.worker import protocol
from srgan_cli.worker.held import local_only_option
from srgan_cli.worker.paths import lock_path, log_path, private_dir, socket_path

WORKER_ENV = "SRGAN_WORKER"
"""``auto``: the first call starts a worker; ``off``: never use one; unset: use a running one."""
START_TIMEOUT_S = 300.0
_TERMINAL_ENV = ("COLUMNS", "LINES")


def forward(ctx: click.Context) -> int | None:
    """Run this ``srgan upscale`` call in a worker: its exit code, or None to run in-process.

    Ctrl-C while the worker runs it cancels the call there (the worker removes what it was
    writing) and then raises KeyboardInterrupt here, as the in-process command would.
    """
    mode = os.environ.get(WORKER_ENV, "").strip().lower()
    if mode in ("off", "0", "no", "false") or local_only_option(ctx.params) is not None:
        return None
    conn = connect()
    if conn is None and mode == "auto":
        conn = _start_for_call(ctx)
    if conn is None:
        return None
    with conn:
        call = _ForwardedCall(conn, ctx)
        code = call.run()
    if code is None and call.stdin_data is not None:
        ctx.with_resource(_replayed_stdin(call.stdin_data))
    return code


def connect() -> socket.socket | None:
    """A connection to this user's worker, or None; a socket nobody listens on is removed."""
    path = socket_path()
    if not os.path.lexists(path):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(os.fspath(path))
    except (ConnectionRefusedError, FileNotFoundError):
        sock.close()
        _remove_stale(path)
        return None
    except OSError:
        sock.close()
        return None
    return sock


def ask(op: str) -> dict[str, Any] | None:
    """Send a one-shot request (``status``, ``stop``); the reply, or None if no worker."""
    conn = connect()
    if conn is None:
        return None
    with conn:
        try:
            protocol.send_json(conn, protocol.REQUEST, {"op": op})
            frame = protocol.recv_frame(conn)
        except (OSError, protocol.ProtocolError):
            return None
    if frame is None or frame[0] != protocol.REPLY:
        return None
    return protocol.decode_json(frame[1])


def start_worker(model_args: list[str], idle_timeout: float | None = None) -> None:
    """Start a detached worker with these model options; return once it serves.

    The worker runs in its own session (a terminal's Ctrl-C does not reach it) from ``/``
    with its stderr in the log file, so ``model_args`` paths must be absolute. SrganError
    with the log's last line if it cannot start.
    """
    import select
    import subprocess

    private_dir()
    read_end, write_end = os.pipe()
    argv = [sys.executable, "-m", "srgan_cli", "worker", "run", *model_args]
    if idle_timeout is not None:
        argv += ["--idle-timeout", str(idle_timeout)]
    with open(log_path(), "ab") as log:
        subprocess.Popen(
            [*argv, "--ready-fd", str(write_end)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(write_end,),
            start_new_session=True,
            cwd="/",
        )
    os.close(write_end)
    with os.fdopen(read_end, "rb") as ready:
        answered, _, _ = select.select([ready], [], [], START_TIMEOUT_S)
        line = ready.readline().decode("utf-8", "replace").strip() if answered else ""
    if line != "ready":
        raise SrganError(f"the worker did not start: {line or _last_log_line()}")


def model_args(model: str | None, weights: Path | None, precision: str) -> list[str]:
    """The ``srgan worker run`` options for this model (weights made absolute)."""
    args = ["--precision", precision]
    if model is not None:
        args += ["--model", model]
    if weights is not None:
        args += ["--weights", os.path.abspath(weights)]
    return args


_lock_depth = 0
"""How many ``start_lock`` blocks this process is inside (flock would deadlock on itself)."""


@contextlib.contextmanager
def start_lock() -> Iterator[None]:
    """Held while one process checks for and starts the worker (``make -j`` starts one).

    Re-entrant within a process: checking for a worker under the lock may find a stale
    socket, whose removal takes the lock again.
    """
    import fcntl

    global _lock_depth
    if _lock_depth:
        _lock_depth += 1
        try:
            yield
        finally:
            _lock_depth -= 1
        return
    private_dir()
    with open(lock_path(), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        _lock_depth = 1
        try:
            yield
        finally:
            _lock_depth = 0
            fcntl.flock(handle, fcntl.LOCK_UN)


def call_argv(ctx: click.Context) -> list[str]:
    """The command line that parses back to ``ctx.params`` (options the user left at their
    defaults are left out), positional arguments after ``--``."""
    options: list[str] = []
    positional: list[str] = []
    for param in ctx.command.params:
        name = param.name
        if name is None or name not in ctx.params:
            continue
        if ctx.get_parameter_source(name) in (None, ParameterSource.DEFAULT):
            continue
        value = ctx.params[name]
        if isinstance(param, click.Argument):
            positional += _strings(value, param.nargs != 1)
        elif isinstance(param, click.Option):
            options += _option_args(param, value)
    return [*options, "--", *positional]


def _option_args(option: click.Option, value: Any) -> list[str]:
    if option.is_flag and isinstance(value, bool):
        if value:
            return [option.opts[0]]
        return [option.secondary_opts[0]] if option.secondary_opts else []
    if value is None:
        return []
    if option.multiple:
        return [arg for item in value for arg in (option.opts[0], *_strings(item, True))]
    return [option.opts[0], *_strings(value, option.nargs != 1)]


def _strings(value: Any, several: bool) -> list[str]:
    items = value if several else (value,)
    return [os.fspath(item) if isinstance(item, Path) else str(item) for item in items]


def _start_for_call(ctx: click.Context) -> socket.socket | None:
    """``SRGAN_WORKER=auto``: start a worker for this call's model, then connect to it."""
    params = ctx.params
    args = model_args(params.get("model"), params.get("weights"), params.get("precision", "auto"))
    try:
        with start_lock():
            conn = connect()  # another client may have started one while we waited
            if conn is None:
                start_worker(args)
                conn = connect()
    except (SrganError, OSError):
        return None  # the in-process run reports whatever is wrong with the model
    return conn


def _remove_stale(path: Path) -> None:
    """Remove a socket file of ours that nobody listens on (its worker was killed).

    Checked again under the start lock, so a worker that has bound but not yet listened
    (while another client starts it) is never mistaken for a dead one.
    """
    try:
        with start_lock():
            info = os.lstat(path)
            if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.getuid():
                return
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with probe:
                try:
                    probe.connect(os.fspath(path))
                    return
                except (ConnectionRefusedError, FileNotFoundError):
                    pass
            os.unlink(path)
    except (OSError, SrganError):
        return


def _last_log_line() -> str:
    try:
        lines = log_path().read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "no log"


class _ForwardedCall:
    """One call relayed through a worker connection."""

    def __init__(self, conn: socket.socket, ctx: click.Context) -> None:
        self.conn = conn
        self.ctx = ctx
        self.stdin_data: bytes | None = None
        self.written: list[str] = []
        self._stdout_parts: list[bytes] = []
        self._stderr_text = codecs.getincrementaldecoder("utf-8")("replace")

    def run(self) -> int | None:
        """The worker's exit code, or None: declined, or the worker died (outputs undone)."""
        try:
            protocol.send_json(self.conn, protocol.REQUEST, self._request())
            frame = protocol.recv_frame(self.conn)
            if frame is None or frame[0] != protocol.REPLY:
                return None
            if not protocol.decode_json(frame[1]).get("accept"):
                return None
            code = self._relay()
        except KeyboardInterrupt:
            self._cancel()
            raise
        except (OSError, protocol.ProtocolError):
            code = None
        if code is None:
            self._undo_written()
        return code

    def _request(self) -> dict[str, Any]:
        return {
            "op": "upscale",
            "version": __version__,
            "argv": call_argv(self.ctx),
            "cwd": os.getcwd(),
            "umask": _current_umask(),
            "stdin_tty": _isatty(sys.stdin),
            "stdout_tty": _isatty(sys.stdout),
            "stderr_tty": _isatty(sys.stderr),
            "terminal": _terminal_size(),
        }

    def _relay(self) -> int | None:
        """Pass frames on until the exit code; None if the worker goes away first."""
        while True:
            frame = protocol.recv_frame(self.conn)
            if frame is None:
                return None
            kind, payload = frame
            if kind == protocol.EXIT:
                self._flush_stdout()
                return int(protocol.decode_json(payload)["code"])
            self._handle(kind, payload)

    def _handle(self, kind: bytes, payload: bytes) -> None:
        if kind == protocol.STDERR:
            sys.stderr.write(self._stderr_text.decode(payload))
            sys.stderr.flush()
        elif kind == protocol.STDOUT:
            self._stdout_parts.append(payload)  # held back until the call succeeds or fails
        elif kind == protocol.WROTE:
            self.written.append(os.fsdecode(payload))
        elif kind == protocol.STDIN_WANTED:
            self._send_stdin()

    def _send_stdin(self) -> None:
        """The worker's command reads stdin: read ours (kept for a fallback) and send it."""
        self.stdin_data = binary_stdin().read()
        protocol.send_bytes(self.conn, protocol.STDIN, self.stdin_data)
        protocol.send_frame(self.conn, protocol.STDIN)  # empty frame: end of input

    def _flush_stdout(self) -> None:
        if self._stdout_parts:
            stream = binary_stdout()
            stream.write(b"".join(self._stdout_parts))
            stream.flush()

    def _cancel(self) -> None:
        """Ask the worker to stop the call and wait until it has (its files are cleaned up);
        a second Ctrl-C stops waiting."""
        try:
            protocol.send_frame(self.conn, protocol.CANCEL)
            while True:
                frame = protocol.recv_frame(self.conn)
                if frame is None or frame[0] == protocol.EXIT:
                    return
                if frame[0] == protocol.STDERR:
                    self._handle(*frame)
        except (OSError, protocol.ProtocolError, KeyboardInterrupt):
            return

    def _undo_written(self) -> None:
        """Remove what the worker wrote for this call, so the in-process rerun starts clean
        (without this, outputs it finished would count as existing)."""
        for name in self.written:
            with contextlib.suppress(OSError):
                os.unlink(name)
        self.written.clear()


@contextlib.contextmanager
def _replayed_stdin(data: bytes) -> Iterator[None]:
    """stdin for the in-process run after a worker already read ours."""
    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(data))
    try:
        yield
    finally:
        sys.stdin = saved


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _terminal_size() -> dict[str, int]:
    """COLUMNS/LINES for progress bars drawn in the worker (which has no terminal)."""
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except (AttributeError, ValueError, OSError):
        return {}
    return dict(zip(_TERMINAL_ENV, (size.columns, size.lines), strict=True))
