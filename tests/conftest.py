"""Shared fixtures: tiny synthetic images and a tiny generator's weights (built once)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image


def make_image(path: Path, mode: str = "RGB", size: tuple[int, int] = (12, 10), seed: int = 0):
    """Write a random image of ``size`` (width, height) in ``mode`` to ``path``; return path.

    RGBA gets a real mask (opaque left half, a ramp on the right) so alpha handling shows.
    """
    rng = np.random.default_rng(seed)
    width, height = size
    if mode == "RGB":
        array = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    elif mode == "RGBA":
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        alpha = np.full((height, width), 255, dtype=np.uint8)
        alpha[:, width // 2 :] = np.linspace(0, 255, width - width // 2, dtype=np.uint8)
        array = np.dstack((rgb, alpha))
    elif mode == "L":
        array = rng.integers(0, 256, (height, width), dtype=np.uint8)
    else:
        raise ValueError(f"unsupported test mode {mode}")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


MIXED_MODELS: dict[str, str] = {
    "q60.jpg": "real",
    "q90.jpg": "real",
    "q95.jpg": "srgan",
    "clean.png": "srgan",
    "lossy.webp": "real",
    "lossless.webp": "srgan",
}
"""The files ``make_mixed_folder`` writes and the model ``--model auto`` gives each (JPEGs
at quality <= 90 and lossy WebPs get real)."""


def make_mixed_folder(folder: Path, size: tuple[int, int] = (16, 16)) -> Path:
    """One random photo saved as each of ``MIXED_MODELS``' files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(30)
    photo = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    photo.save(folder / "clean.png")
    for quality in (60, 90, 95):
        photo.save(folder / f"q{quality}.jpg", quality=quality)
    photo.save(folder / "lossy.webp", quality=80)
    photo.save(folder / "lossless.webp", lossless=True)
    return folder


@pytest.fixture
def rgb_png(tmp_path: Path) -> Path:
    return make_image(tmp_path / "rgb.png", "RGB", seed=1)


@pytest.fixture
def rgba_png(tmp_path: Path) -> Path:
    return make_image(tmp_path / "rgba.png", "RGBA", seed=2)


@pytest.fixture
def gray_png(tmp_path: Path) -> Path:
    return make_image(tmp_path / "gray.png", "L", seed=3)


@pytest.fixture
def corrupt_png(tmp_path: Path) -> Path:
    """A file with a PNG name and signature whose data is cut short."""
    path = tmp_path / "corrupt.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    return path


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-block, 8-channel generator with a fixed seed, exported with its card."""
    keras = pytest.importorskip("keras")
    from srgan_cli.model import GeneratorConfig, build_generator
    from srgan_cli.weights import WeightCard, export

    keras.utils.set_random_seed(1234)
    model = build_generator(blocks=2, channels=8)
    card = WeightCard(
        name="tiny",
        architecture=GeneratorConfig(2, 8, False).to_dict(),
        sha256="",
        training={"note": "test"},
    )
    return export(model, card, tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session", autouse=True)
def private_worker_dir():
    """Point the worker's runtime directory at an empty private folder for the whole run, so
    no test is served by (or disturbs) a worker the developer has running."""
    import os
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="srgan-test-run-")  # short: socket paths are limited
    saved = {name: os.environ.get(name) for name in ("XDG_RUNTIME_DIR", "SRGAN_WORKER")}
    os.environ["XDG_RUNTIME_DIR"] = folder
    os.environ.pop("SRGAN_WORKER", None)
    yield Path(folder)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(folder, ignore_errors=True)


def modules_loaded_by(imports: str, candidates: tuple[str, ...]) -> list[str]:
    """Which of ``candidates`` a fresh interpreter has loaded after ``import <imports>``.

    A fresh process, because this test process has long imported numpy and TensorFlow.
    """
    code = f"import sys, {imports}; print(sorted(m for m in {candidates!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return ast.literal_eval(out.stdout)


@pytest.fixture
def run(tiny_weights):
    """``srgan upscale ... --weights <tiny>`` in-process; returns click's Result."""
    from srgan_cli.cli import main

    def invoke(*args: object, input: bytes | None = None):
        argv = ["upscale", *map(str, args), "--weights", str(tiny_weights)]
        return CliRunner().invoke(main, argv, input=input, catch_exceptions=False)

    return invoke
