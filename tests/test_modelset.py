"""modelset: ``auto`` holds srgan and real once, and each image goes through its own model.

These use the shipped weights (the two models ``auto`` holds) on 16x16 images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import MIXED_MODELS, make_mixed_folder
from PIL import Image

from srgan_cli.errors import WeightsError
from srgan_cli.jobs import Job
from srgan_cli.modelset import ModelSet, load_model, members
from srgan_cli.pipeline import Upscaler, run_jobs
from srgan_cli.worker.held import HeldModel


@pytest.fixture(scope="module")
def auto() -> ModelSet:
    model = load_model(precision="fp32")
    assert isinstance(model, ModelSet)
    return model


@pytest.fixture(scope="module")
def forced() -> dict[str, Upscaler]:
    """Each member loaded on its own, as ``--model srgan`` / ``--model real`` would."""
    return {name: Upscaler(name, precision="fp32") for name in ("srgan", "real")}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mixed_folder(tmp_path_factory.mktemp("mixed"))


def jobs_into(folder: Path, out: Path) -> list[Job]:
    return [Job(folder / name, out / f"{name}.png", name) for name in sorted(MIXED_MODELS)]


def test_load_model_default_is_auto_and_names_force_one(auto):
    assert auto.name == "auto"
    assert sorted(members(auto)) == ["real", "srgan"]
    assert auto.precision_used == "fp32"
    with pytest.raises(WeightsError, match="load_model"):
        Upscaler("auto")


def test_mixed_batch_runs_each_image_through_its_own_model(auto, forced, mixed, tmp_path):
    results = run_jobs(auto, jobs_into(mixed, tmp_path / "auto"))
    assert {r.input: r.model for r in results} == MIXED_MODELS
    assert all(r.ok and r.out_size == [64, 64] for r in results)
    for name, model in MIXED_MODELS.items():
        (alone,) = run_jobs(forced[model], [Job(mixed / name, tmp_path / name, name)])
        assert alone.model == model
        assert (tmp_path / "auto" / f"{name}.png").read_bytes() == (tmp_path / name).read_bytes()


def test_stdin_is_chosen_from_its_bytes(auto, forced, mixed):
    outputs = {}
    for model in (auto, forced["real"]):
        stdout = _Sink()
        (result,) = run_jobs(
            model, [Job(None, None, "<stdin>")], stdin_bytes=(mixed / "q60.jpg").read_bytes(),
            stdout=stdout,
        )  # fmt: skip
        assert result.model == "real"
        outputs[model.name] = stdout.data
    assert outputs["auto"] == outputs["real"]


class _Sink:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def flush(self) -> None:
        pass


def test_library_upscale_chooses_from_a_pil_jpeg_and_arrays_go_clean(auto, forced, mixed):
    with Image.open(mixed / "q60.jpg") as image:
        assert np.array_equal(auto.upscale(image), forced["real"].upscale(image))
    pixels = np.asarray(Image.open(mixed / "clean.png"))
    assert np.array_equal(auto.upscale(pixels), forced["srgan"].upscale(pixels))
    assert auto.pick(None) is auto.members["srgan"]


def test_settings_reach_every_member(auto):
    auto.tile, auto.tile_pad, auto.tta = 8, 4, False
    assert {(m.tile, m.tile_pad) for m in auto.members.values()} == {(8, 4)}
    assert auto.tiles_for(16, 16) == 4
    auto.tile, auto.tile_pad = None, 32


def test_a_worker_holding_auto_serves_auto_and_either_member(auto):
    held = HeldModel(auto)
    assert held.take(None, None, "fp32", None, 32, False) is auto
    assert held.take("auto", None, "fp32", None, 32, False) is auto
    real = held.take("real", None, "fp32", None, 32, False)
    assert real is auto.members["real"]
    assert "asks for" in (held.refusal("srresnet", None, "fp32") or "")
    single = HeldModel(auto.members["srgan"])
    assert "asks for auto" in (single.refusal(None, None, "fp32") or "")
    assert single.refusal("srgan", None, "fp32") is None
