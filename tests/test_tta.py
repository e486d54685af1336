"""Self-ensemble: the 8 views invert exactly, the mean is right, and tiling still agrees."""

from __future__ import annotations

import numpy as np
import pytest

from srgan_cli import tta


def _nearest_x4(batch: np.ndarray) -> np.ndarray:
    """An exactly flip/rotation-equivariant 'model': nearest-neighbour x4."""
    return batch.repeat(4, axis=1).repeat(4, axis=2)


def _lopsided_x4(batch: np.ndarray) -> np.ndarray:
    """A model that is not equivariant: adds a left-to-right ramp to the x4 output."""
    out = _nearest_x4(batch)
    return out + np.linspace(0.0, 1.0, out.shape[2])[None, None, :, None]


def test_views_are_the_eight_symmetries_and_invert():
    batch = np.random.default_rng(0).random((1, 3, 5, 3))
    views = [tta.to_view(batch, k, f) for k, f in tta.VIEWS]
    assert len({v.tobytes() for v in views}) == 8
    for (k, f), view in zip(tta.VIEWS, views, strict=True):
        np.testing.assert_array_equal(tta.from_view(view, k, f), batch)


def test_equivariant_model_is_unchanged():
    batch = np.random.default_rng(1).random((1, 6, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(tta.self_ensemble(_nearest_x4, batch), _nearest_x4(batch), 1e-6)


def test_mean_cancels_what_is_not_equivariant():
    """The ramp's mean over the 8 views is 0.5 everywhere: the ensemble averages it out."""
    batch = np.zeros((1, 4, 4, 3), np.float32)
    out = tta.self_ensemble(_lopsided_x4, batch)
    assert out.dtype == np.float32 and out.shape == (1, 16, 16, 3)
    np.testing.assert_allclose(out, 0.5, atol=1e-6)


@pytest.mark.slow
def test_upscaler_tta_is_tiling_safe_and_differs_from_a_single_pass(tiny_weights):
    from srgan_cli.pipeline import Upscaler

    image = np.random.default_rng(2).integers(0, 256, (40, 36, 3), dtype=np.uint8)
    whole = Upscaler(weights=tiny_weights, precision="fp32", tile=0, tta=True).upscale(image)
    tiled = Upscaler(weights=tiny_weights, precision="fp32", tile=16, tta=True).upscale(image)
    single = Upscaler(weights=tiny_weights, precision="fp32", tile=0).upscale(image)
    assert whole.shape == (160, 144, 3)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1
    assert np.abs(whole.astype(int) - single.astype(int)).max() > 0


@pytest.mark.slow
def test_upscale_command_tta(tiny_weights, rgb_png, tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from srgan_cli.cli import main

    outputs = {}
    for name, extra in [("plain", []), ("tta", ["--tta"]), ("tta_tiled", ["--tta", "--tile", "4"])]:
        out = tmp_path / f"{name}.png"
        argv = ["upscale", str(rgb_png), "-o", str(out), "--weights", str(tiny_weights), *extra]
        result = CliRunner().invoke(main, [*argv, "--precision", "fp32", "-q"])
        assert result.exit_code == 0, result.output
        with Image.open(out) as img:
            outputs[name] = np.asarray(img).astype(int)
    assert outputs["tta"].shape == outputs["plain"].shape == (40, 48, 3)
    assert np.abs(outputs["tta"] - outputs["tta_tiled"]).max() <= 1
    assert np.abs(outputs["tta"] - outputs["plain"]).max() > 0
