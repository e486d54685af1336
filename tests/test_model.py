"""The generator: shapes, sub-pixel order, configuration switches, precision policy."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from srgan_cli.model import GeneratorConfig, PixelShuffle, build_generator  # noqa: E402


def _depth_to_space_reference(x: np.ndarray, f: int) -> np.ndarray:
    """Channel (dy*f + dx)*C + c of input pixel (y, x) -> output pixel (y*f+dy, x*f+dx), c."""
    n, h, w, cf = x.shape
    c = cf // (f * f)
    out = np.empty((n, h * f, w * f, c), x.dtype)
    for dy in range(f):
        for dx in range(f):
            k = (dy * f + dx) * c
            out[:, dy::f, dx::f, :] = x[:, :, :, k : k + c]
    return out


def test_pixel_shuffle_matches_depth_to_space_order():
    x = np.random.default_rng(0).random((2, 3, 5, 12)).astype("float32")
    got = np.asarray(PixelShuffle(2)(x))
    np.testing.assert_array_equal(got, _depth_to_space_reference(x, 2))


@pytest.mark.parametrize(("h", "w"), [(1, 1), (7, 13), (16, 9)])
def test_output_is_four_times_any_input(h, w):
    model = build_generator(blocks=1, channels=8)
    out = np.asarray(model(np.zeros((1, h, w, 3), "float32")))
    assert out.shape == (1, 4 * h, 4 * w, 3)
    assert out.dtype == np.float32


def test_batch_norm_switch_adds_batch_norm_layers():
    with_bn = build_generator(blocks=2, channels=8, batch_norm=True)
    without = build_generator(blocks=2, channels=8, batch_norm=False)
    count = lambda m: sum(isinstance(layer, keras.layers.BatchNormalization) for layer in m.layers)  # noqa: E731
    assert count(with_bn) == 2 * 2 + 1
    assert count(without) == 0


def test_bf16_policy_keeps_float32_output_and_restores_global_policy():
    before = keras.config.dtype_policy().name
    model = build_generator(blocks=1, channels=8, dtype_policy="mixed_bfloat16")
    assert keras.config.dtype_policy().name == before
    assert model.get_layer("res0_conv1").compute_dtype == "bfloat16"
    assert model.get_layer("tail_conv").compute_dtype == "float32"
    out = model(np.random.default_rng(1).random((1, 6, 6, 3)).astype("float32"))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


def test_config_round_trip():
    cfg = GeneratorConfig(3, 16, True)
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(("h", "w"), [(1, 1), (5, 9), (12, 7)])
def test_inference_model_computes_the_same_function(h, w):
    """The fast sub-pixel tail must equal up1_shuffle -> up1_prelu -> tail_conv, borders too."""
    from srgan_cli.model import for_inference

    keras.utils.set_random_seed(7)
    model = build_generator(blocks=1, channels=8)
    rng = np.random.default_rng(h * w)
    for layer in model.layers:  # random slopes and biases, so every weight matters
        layer.set_weights([rng.normal(0, 0.3, v.shape).astype("float32") for v in layer.weights])
    fast = for_inference(model)
    x = rng.random((2, h, w, 3)).astype("float32")
    want = np.asarray(model(x))
    scale = np.abs(want).max()
    np.testing.assert_allclose(np.asarray(fast(x)), want, atol=1e-5 * scale, rtol=1e-3)


@pytest.mark.parametrize("name", ["rrdb_basicsr_x4.pth", "srvgg_x4.pth", "msrresnet_x4.pth"])
def test_fast_tail_only_where_it_fits(name):
    """Networks that do not end conv -> shuffle -> PReLU -> 9x9 conv to RGB keep their own."""
    from pathlib import Path

    from srgan_cli import archs
    from srgan_cli.model import for_inference, has_subpixel_tail
    from srgan_cli.modelfile import read_state

    model, _ = archs.convert(read_state(Path(__file__).parent / "fixtures" / "archs" / name))
    assert not has_subpixel_tail(model)
    with pytest.raises(ValueError, match="sub-pixel tail"):
        for_inference(model)
    assert has_subpixel_tail(build_generator(blocks=1, channels=8))
