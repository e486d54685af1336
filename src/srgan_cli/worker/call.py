"""One forwarded call inside the worker: its connection, and the client's streams.

While a call runs, the worker's ``sys.stdin``, ``sys.stdout`` and ``sys.stderr`` are
stand-ins that read and write frames on the call's connection, report the client's
``isatty()`` (so progress bars and the refusal to write PNG to a terminal behave as they
would in the client's process) and ask for stdin only when the command reads it.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from srgan_cli.worker import protocol


class Call:
    """One forwarded ``srgan upscale`` call: its request and its connection.

    The connection thread fills ``stdin_chunks`` and sets ``cancelled`` (``interrupted``
    once the worker has acted on it); the main thread runs the call and sends frames.
    Sending never raises: a vanished client just cancels.
    """

    def __init__(self, conn: socket.socket, request: dict[str, Any]) -> None:
        self.conn = conn
        self.request = request
        self.cancelled = threading.Event()
        self.interrupted = False
        self.stdin_chunks: queue.Queue[bytes | None] = queue.Queue()
        self._send_lock = threading.Lock()

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        with self._send_lock:
            try:
                if payload:
                    protocol.send_bytes(self.conn, kind, payload)
                else:
                    protocol.send_frame(self.conn, kind)
            except OSError:
                self.cancelled.set()

    def send_json(self, kind: bytes, message: dict[str, Any]) -> None:
        with self._send_lock:
            try:
                protocol.send_json(self.conn, kind, message)
            except OSError:
                self.cancelled.set()

    def decline(self, reason: str) -> None:
        self.send_json(protocol.REPLY, {"accept": False, "reason": reason})

    def wrote(self, path: Path) -> None:
        self.send(protocol.WROTE, os.fsencode(os.path.abspath(path)))


class _Sink(io.RawIOBase):
    """A write-only stream that sends what is written as frames of one kind."""

    def __init__(self, call: Call, kind: bytes, tty: bool) -> None:
        self._call = call
        self._kind = kind
        self._tty = tty

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._tty

    def write(self, data: Any) -> int:
        payload = bytes(data)
        if payload:  # click probes streams with empty writes
            self._call.send(self._kind, payload)
        return len(payload)


class _StdinSource(io.RawIOBase):
    """The client's stdin, asked for on first read (as the command reads it in-process)."""

    def __init__(self, call: Call, tty: bool) -> None:
        self._call = call
        self._tty = tty
        self._asked = False
        self._pending = b""
        self._ended = False

    def readable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._tty

    def readinto(self, buffer: Any) -> int:
        if not self._asked:
            self._asked = True
            self._call.send(protocol.STDIN_WANTED)
        while not self._pending and not self._ended:
            chunk = self._call.stdin_chunks.get()
            if self._call.cancelled.is_set():
                raise KeyboardInterrupt
            if chunk is None:
                self._ended = True
            else:
                self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


@contextlib.contextmanager
def call_streams(call: Call) -> Iterator[None]:
    """stdin/stdout/stderr of this process become the client's for the call."""
    request = call.request
    saved = sys.stdin, sys.stdout, sys.stderr
    saved_env = {name: os.environ.get(name) for name in ("COLUMNS", "LINES")}
    sys.stdin = io.TextIOWrapper(
        io.BufferedReader(_StdinSource(call, request.get("stdin_tty", False)))
    )
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(_Sink(call, protocol.STDOUT, request.get("stdout_tty", False))),
        encoding="utf-8",
        line_buffering=True,
    )
    sys.stderr = io.TextIOWrapper(
        io.BufferedWriter(_Sink(call, protocol.STDERR, request.get("stderr_tty", False))),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
    )
    for name, value in (request.get("terminal") or {}).items():
        if name in saved_env:
            os.environ[name] = str(value)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        sys.stdin, sys.stdout, sys.stderr = saved
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
