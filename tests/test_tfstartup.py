"""``srgan_cli.tfstartup``: TensorFlow's start-up notices are dropped, nothing else is."""

from __future__ import annotations

import os
import sys

from srgan_cli import tfstartup

NOTICES = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796398185.820135    9728 port.cc:153] oneDNN custom operations are on.\n"
    "I0000 00:00:1796398185.820841    9728 cudart_stub.cc:31] Could not find cuda drivers\n"
    "E0000 00:00:1796398195.930309   11163 cuda_platform.cc:52] failed call to cuInit: CUDA\n"
    "This TensorFlow binary is optimized to use available CPU instructions in performance\n"
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow "
    "with the appropriate compiler flags.\n"
)


def test_only_tensorflow_notices_are_dropped():
    ours = "a warning of the caller's own\nI0000 is not absl's format\n"
    assert tfstartup._others(NOTICES + ours) == ours


def test_fd_2_is_held_back_and_passed_on(capfd, monkeypatch):
    """TensorFlow is loaded in this process already, so pretend it is not."""
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    monkeypatch.delenv(tfstartup.LOG_LEVEL_ENV, raising=False)
    monkeypatch.delenv(tfstartup.DEBUG_ENV, raising=False)
    with tfstartup.quiet_tensorflow_startup():
        os.write(2, NOTICES.encode() + b"kept\n")
    assert capfd.readouterr().err == "kept\n"
    assert os.environ[tfstartup.LOG_LEVEL_ENV] == tfstartup.QUIET_LEVEL


def test_debug_and_a_users_level_are_left_alone(capfd, monkeypatch):
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    monkeypatch.setenv(tfstartup.DEBUG_ENV, "1")
    monkeypatch.delenv(tfstartup.LOG_LEVEL_ENV, raising=False)
    with tfstartup.quiet_tensorflow_startup():
        os.write(2, NOTICES.encode())
    assert capfd.readouterr().err == NOTICES
    assert tfstartup.LOG_LEVEL_ENV not in os.environ
    monkeypatch.delenv(tfstartup.DEBUG_ENV)
    monkeypatch.setenv(tfstartup.LOG_LEVEL_ENV, "0")
    with tfstartup.quiet_tensorflow_startup():
        os.write(2, NOTICES.encode())
    assert capfd.readouterr().err == NOTICES


def test_a_crash_shows_everything(capfd, monkeypatch):
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    monkeypatch.delenv(tfstartup.DEBUG_ENV, raising=False)
    try:
        with tfstartup.quiet_tensorflow_startup():
            os.write(2, NOTICES.encode())
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert capfd.readouterr().err == NOTICES
