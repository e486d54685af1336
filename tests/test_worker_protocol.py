"""Frames on the worker socket, over a real socket pair (no worker needed)."""

from __future__ import annotations

import socket
import threading

import pytest

from srgan_cli.worker import protocol


@pytest.fixture
def pair():
    left, right = socket.socketpair()
    yield left, right
    left.close()
    right.close()


def test_json_and_raw_frames_round_trip(pair) -> None:
    left, right = pair
    protocol.send_json(left, protocol.REQUEST, {"op": "status", "argv": ["-", "é"]})
    protocol.send_frame(left, protocol.STDIN)
    kind, payload = protocol.recv_frame(right)
    assert kind == protocol.REQUEST
    assert protocol.decode_json(payload) == {"op": "status", "argv": ["-", "é"]}
    assert protocol.recv_frame(right) == (protocol.STDIN, b"")


def test_large_data_is_split_into_chunks_and_rejoined(pair) -> None:
    left, right = pair
    data = bytes(range(256)) * (3 * protocol.CHUNK // 256 + 7)
    sender = threading.Thread(target=protocol.send_bytes, args=(left, protocol.STDOUT, data))
    sender.start()
    parts = []
    while sum(map(len, parts)) < len(data):
        kind, payload = protocol.recv_frame(right)
        assert kind == protocol.STDOUT and len(payload) <= protocol.CHUNK
        parts.append(payload)
    sender.join()
    assert b"".join(parts) == data and len(parts) == 4


def test_clean_close_is_none_and_a_cut_frame_is_an_error(pair) -> None:
    left, right = pair
    left.sendall(b"O\x00\x00\x00\x10abc")  # announces 16 bytes, sends 3
    left.close()
    with pytest.raises(protocol.ProtocolError, match="inside a frame"):
        protocol.recv_frame(right)
    assert protocol.recv_frame(right) is None


def test_oversized_or_non_object_frames_are_refused(pair) -> None:
    left, right = pair
    left.sendall(b"Q" + (protocol.MAX_FRAME + 1).to_bytes(4, "big"))
    with pytest.raises(protocol.ProtocolError, match="limit"):
        protocol.recv_frame(right)
    with pytest.raises(protocol.ProtocolError, match="not an object"):
        protocol.decode_json(b"[1, 2]")
