"""The client's light parts: the forwarded command line and the private directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from srgan_cli.cli.upscale import upscale
from srgan_cli.errors import SrganError
from srgan_cli.worker import client
from srgan_cli.worker.paths import private_dir, runtime_dir


@pytest.mark.parametrize(
    "argv",
    [
        ["a.png"],
        ["-"],
        ["--", "-odd name.png", "b.png"],
        ["dir", "-r", "-o", "out", "--suffix", "_big", "--format", "webp", "--quality", "80"],
        ["a.png", "-o", "b.jpg", "--outscale", "2.5", "--tile", "0", "--tile-pad", "8"],
        ["a.png", "--precision", "fp32", "--tta", "--overwrite", "-q", "--report", "r.json"],
        ["a.png", "--skip-existing", "--max-pixels", "100", "--compress-level", "9"],
    ],
)
def test_call_argv_parses_back_to_the_same_call(argv: list[str]) -> None:
    first = upscale.make_context("upscale", list(argv))
    rebuilt = client.call_argv(first)
    again = upscale.make_context("upscale", rebuilt)
    assert again.params == first.params


def test_private_dir_is_made_0700_and_tightened(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    made = private_dir()
    assert made == runtime_dir() == tmp_path / "srgan"
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    made.chmod(0o755)
    private_dir()
    assert stat.S_IMODE(made.stat().st_mode) == 0o700


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give the folder away")
def test_private_dir_of_another_user_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "srgan").mkdir(mode=0o700)
    os.chown(tmp_path / "srgan", 65534, 65534)
    with pytest.raises(SrganError, match="not a directory owned by this user"):
        private_dir()


def test_no_worker_means_in_process(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert client.connect() is None
    assert client.ask("status") is None
