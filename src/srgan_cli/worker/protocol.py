"""Frames on the worker's socket: a kind byte, a 4-byte big-endian length, the payload.

JSON frames carry requests and replies; raw frames carry a call's stdin, stdout and stderr
bytes as they are, so binary image data never goes through JSON. Standard library only.

A call, seen from the client::

    client -> REQUEST {"op": "upscale", argv, cwd, ...}
    worker -> REPLY {"accept": true} | {"accept": false, "reason": ...}
    worker -> STDERR / STDOUT / WROTE ... (and STDIN_WANTED -> client sends STDIN chunks, then
              an empty STDIN frame for end of input)
    worker -> EXIT {"code": N}
    client -> CANCEL at any time after the request (Ctrl-C); the worker still ends with EXIT.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

REQUEST = b"Q"
REPLY = b"R"
STDIN_WANTED = b"N"
STDIN = b"I"
STDOUT = b"O"
STDERR = b"E"
WROTE = b"W"
EXIT = b"X"
CANCEL = b"C"

_HEADER = struct.Struct(">cI")
MAX_FRAME = 64 << 20
"""Larger payloads are sent as several frames (stdin, stdout); a bigger header is an error."""
CHUNK = 1 << 20


class ProtocolError(ConnectionError):
    """The other side sent something that is not a frame of this protocol."""


def send_frame(sock: socket.socket, kind: bytes, payload: bytes = b"") -> None:
    """Send one frame; payloads over ``MAX_FRAME`` must be split by the caller."""
    sock.sendall(_HEADER.pack(kind, len(payload)) + payload)


def send_bytes(sock: socket.socket, kind: bytes, data: bytes) -> None:
    """Send ``data`` as ``CHUNK``-sized frames of ``kind`` (nothing for empty data)."""
    view = memoryview(data)
    for start in range(0, len(view), CHUNK):
        send_frame(sock, kind, bytes(view[start : start + CHUNK]))


def send_json(sock: socket.socket, kind: bytes, message: dict[str, Any]) -> None:
    send_frame(sock, kind, json.dumps(message).encode("utf-8"))


def recv_frame(sock: socket.socket) -> tuple[bytes, bytes] | None:
    """The next (kind, payload), or None when the peer closed the connection cleanly."""
    header = _recv_exactly(sock, _HEADER.size)
    if header is None:
        return None
    kind, length = _HEADER.unpack(header)
    if length > MAX_FRAME:
        raise ProtocolError(f"frame of {length} bytes is over the {MAX_FRAME}-byte limit")
    payload = _recv_exactly(sock, length) if length else b""
    if payload is None:
        raise ProtocolError("connection closed inside a frame")
    return kind, payload


def decode_json(payload: bytes) -> dict[str, Any]:
    try:
        message = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ProtocolError(f"bad JSON frame: {err}") from err
    if not isinstance(message, dict):
        raise ProtocolError("JSON frame is not an object")
    return message


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    """``size`` bytes, or None if the peer closed before the first byte."""
    parts: list[bytes] = []
    remaining = size
    while remaining:
        chunk = sock.recv(min(remaining, CHUNK))
        if not chunk:
            if remaining == size:
                return None
            raise ProtocolError("connection closed inside a frame")
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)
