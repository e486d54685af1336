"""Imported architectures against outputs of the PyTorch references (tests/make_arch_fixtures.py).

The fixtures hold small random networks in every key layout and scale, with the reference's
output on a random input; CI needs no torch. A real-size check runs where torch is installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from srgan_cli import archs
from srgan_cli.archs import ModelSpec, srresnet
from srgan_cli.errors import ModelFileError
from srgan_cli.modelfile import read_state

FIXTURES = Path(__file__).parent / "fixtures" / "archs"
TOLERANCE = 1e-4

# file -> (arch, key layout, scale, input multiple)
CASES = {
    "rrdb_basicsr_x4.pth": ("RRDBNet", "BasicSR", 4, 1),
    "rrdb_basicsr_x2.safetensors": ("RRDBNet", "BasicSR", 2, 2),
    "rrdb_basicsr_x1.pth": ("RRDBNet", "BasicSR", 1, 4),
    "rrdb_basicsr_x8.safetensors": ("RRDBNet", "BasicSR", 8, 1),
    "rrdb_esrgan_x4.pth": ("RRDBNet", "ESRGAN", 4, 1),
    "rrdb_esrgan_x2.pth": ("RRDBNet", "ESRGAN", 2, 1),
    "rrdb_bsrgan_x4.safetensors": ("RRDBNet", "BSRGAN", 4, 1),
    "rrdb_bsrgan_x2.pth": ("RRDBNet", "BSRGAN", 2, 1),
    "srvgg_x4.pth": ("SRVGGNetCompact", None, 4, 1),
    "srvgg_x2.safetensors": ("SRVGGNetCompact", None, 2, 1),
    "srvgg_x1.pth": ("SRVGGNetCompact", None, 1, 1),
    "msrresnet_x4.pth": ("MSRResNet", None, 4, 1),
    "msrresnet_x3.safetensors": ("MSRResNet", None, 3, 1),
    "msrresnet_x2.pth": ("MSRResNet", None, 2, 1),
}


def test_every_fixture_is_checked():
    on_disk = {p.name for p in FIXTURES.iterdir() if p.suffix != ".npz"}
    assert on_disk == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_reference(name: str):
    arch, layout, scale, multiple = CASES[name]
    model, spec = archs.convert(read_state(FIXTURES / name))
    assert (spec.arch, spec.params.get("layout"), spec.scale) == (arch, layout, scale)
    assert spec.input_multiple == multiple
    ref = np.load((FIXTURES / name).with_suffix(".npz"))
    out = np.asarray(model(ref["x"]))
    assert out.shape == ref["y"].shape == (1, 4 * scale, 8 * scale, 3)
    assert np.abs(out - ref["y"]).max() <= TOLERANCE


def test_layouts_share_one_keras_model():
    """The three RRDBNet layouts of one network infer the same spec apart from the layout."""
    specs = [archs.identify(read_state(FIXTURES / f))[1] for f in CASES if "rrdb_" in f]
    x4 = [s for s in specs if s.scale == 4]
    assert {s.params["layout"] for s in x4} == {"BasicSR", "ESRGAN", "BSRGAN"}
    assert len({(s.params["num_feat"], s.params["num_block"], s.num_params) for s in x4}) == 1


def test_wrong_shape_names_key_and_shapes():
    state = read_state(FIXTURES / "msrresnet_x4.pth")
    state["body.1.conv2.weight"] = np.zeros((8, 8, 5, 5), np.float32)
    with pytest.raises(ModelFileError) as err:
        archs.convert(state)
    msg = str(err.value)
    assert "body.1.conv2.weight" in msg and "(8, 8, 5, 5)" in msg and "(8, 8, 3, 3)" in msg
    assert "\n" not in msg


def test_unused_tensor_is_refused():
    """An ESRGAN+ style extra conv would change the forward pass: refuse, don't ignore."""
    state = read_state(FIXTURES / "rrdb_esrgan_x4.pth")
    state["model.1.sub.0.RDB1.conv1x1.weight"] = np.zeros((3, 4, 1, 1), np.float32)
    with pytest.raises(ModelFileError, match=r"RRDBNet does not use: .*conv1x1"):
        archs.convert(state)


def test_missing_tensor_is_named():
    state = read_state(FIXTURES / "srvgg_x2.safetensors")
    del state["body.2.bias"]
    with pytest.raises(ModelFileError, match=r"lacks body\.2\.bias \(expected shape \(8,\)\)"):
        archs.convert(state)
    msr = read_state(FIXTURES / "msrresnet_x2.pth")
    del msr["conv_last.weight"]
    with pytest.raises(ModelFileError, match=r"lacks conv_last\.weight"):
        archs.identify(msr)
    del state["body.3.weight"]  # a hole in the numbering: a damaged file, not a smaller net
    with pytest.raises(ModelFileError, match=r"not numbered 0\.\.7: \[0, 1, 2, 4,"):
        archs.identify(state)


def test_unknown_architecture_lists_archs_and_keys():
    state = {"encoder.weight": np.zeros((2, 2)), "decoder.bias": np.zeros(2)}
    with pytest.raises(ModelFileError) as err:
        archs.identify(state)
    msg = str(err.value)
    assert msg.startswith("unknown architecture: supported RRDBNet, SRVGGNetCompact, MSRResNet")
    assert "first keys: encoder.weight, decoder.bias" in msg and "\n" not in msg


def test_rrdbnet_refuses_odd_input_channels():
    state = read_state(FIXTURES / "rrdb_basicsr_x4.pth")
    state["conv_first.weight"] = np.zeros((4, 5, 3, 3), np.float32)
    with pytest.raises(ModelFileError, match="takes 5 channels; need 3, 12 or 48"):
        archs.identify(state)


def test_srvgg_refuses_non_rgb_output():
    state = read_state(FIXTURES / "srvgg_x1.pth")
    state["body.8.weight"] = np.zeros((10, 8, 3, 3), np.float32)
    with pytest.raises(ModelFileError, match="10 channels, not 3 x scale"):
        archs.identify(state)


def test_spec_round_trip_and_description():
    _, spec = archs.identify(read_state(FIXTURES / "rrdb_basicsr_x4.pth"))
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert spec.describe() == "RRDBNet (BasicSR keys) 2 blocks, 4 feat, 3 growth, x4, 9.9 k params"
    assert archs.arch_named("MSRResNet").name == "MSRResNet"
    with pytest.raises(ModelFileError, match="unknown architecture 'EDSR'"):
        archs.arch_named("EDSR")


def test_dtype_policy_applies():
    model, _ = archs.convert(read_state(FIXTURES / "srvgg_x4.pth"), "mixed_bfloat16")
    assert model.get_layer("body_2").dtype_policy.name == "mixed_bfloat16"
    ref = np.load(FIXTURES / "srvgg_x4.npz")
    out = np.asarray(model(ref["x"]), dtype=np.float32)
    assert np.abs(out - ref["y"]).max() < 0.05  # bf16 keeps ~3 significant digits


def test_srvgg_prelu_slopes_above_one_and_negative():
    """MaxPReLU is PReLU only for slopes <= 1; others are sign-folded into the convs."""
    import keras

    state = read_state(FIXTURES / "srvgg_x1.pth")
    n = 2 * archs.identify(state)[1].params["num_conv"] + 2  # the last conv's body index
    for i in range(1, n, 2):
        state[f"body.{i}.weight"] = np.linspace(-0.7, 2.5, state[f"body.{i}.weight"].size)
    model, _ = archs.convert(state)
    x = np.random.default_rng(5).random((1, 6, 7, 3), dtype=np.float32)
    y = x
    for i in range(0, n + 1, 2):  # plain Keras PReLU, weights straight from the file
        conv = keras.layers.Conv2D(state[f"body.{i}.bias"].size, 3, padding="same")
        conv.build(y.shape)
        conv.set_weights([state[f"body.{i}.weight"].transpose(2, 3, 1, 0), state[f"body.{i}.bias"]])
        y = conv(y)
        if i < n:
            act = keras.layers.PReLU(shared_axes=[1, 2])
            act.build(y.shape)
            act.set_weights([state[f"body.{i + 1}.weight"].reshape(1, 1, -1)])
            y = act(y)
    assert np.abs(np.asarray(model(x)) - (np.asarray(y) + x)).max() <= TOLERANCE


def _interpolate_bilinear(x: np.ndarray, factor: int) -> np.ndarray:
    """PyTorch's ``F.interpolate(bilinear, align_corners=False)`` written out (NHWC, numpy):
    source = max((o + 0.5) / factor - 0.5, 0), its two neighbours clamped to the edge."""

    def along(a: np.ndarray, axis: int) -> np.ndarray:
        n = a.shape[axis]
        src = np.maximum((np.arange(n * factor) + 0.5) / factor - 0.5, 0.0)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, n - 1)
        shape = [1] * a.ndim
        shape[axis] = -1
        lam = (src - i0).reshape(shape)
        return np.take(a, i0, axis) * (1 - lam) + np.take(a, i1, axis) * lam

    return along(along(x.astype(np.float64), 1), 2)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_bilinear_upsample_equals_pytorch_formula_at_unknown_sizes(factor: int):
    """MSRResNet's skip: a fixed-kernel layer that compiles with H and W unknown (Keras'
    bilinear UpSampling2D raised OperatorNotAllowedInGraphError in predict_on_batch)."""
    import keras

    from srgan_cli.archs.layers import BilinearUpsample

    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, BilinearUpsample(factor)(inputs))
    rng = np.random.default_rng(factor)
    for height, width in ((1, 1), (5, 9), (12, 7)):
        x = rng.random((1, height, width, 3), dtype=np.float32)
        out = model.predict_on_batch(x)
        assert out.shape == (1, height * factor, width * factor, 3)
        assert np.abs(out - _interpolate_bilinear(x, factor)).max() <= 1e-6


def test_srresnet_spec_counts_parameters():
    from srgan_cli.model import GeneratorConfig

    for cfg in (GeneratorConfig(2, 8, False), GeneratorConfig(1, 4, True)):
        spec = srresnet.spec_for(cfg)
        model = archs.arch_named("SRResNet").build(spec)
        assert (spec.scale, spec.num_params) == (4, model.count_params())
    assert archs.arch_named("SRResNet").matches(read_state(FIXTURES / "srvgg_x1.pth")) is False


def _reference_script():
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("spandrel") is None:
        pytest.skip("torch and spandrel are not installed (only make_arch_fixtures.py needs them)")
    spec = importlib.util.spec_from_file_location(
        "make_arch_fixtures", Path(__file__).with_name("make_arch_fixtures.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_real_size_rrdbnet_matches_reference():
    """RRDBNet at ESRGAN's size (23 blocks, 64 feat, growth 32), x4 and x1, on a tiny image."""
    ref = _reference_script()
    for scale in (4, 1):
        model, state = ref.rrdbnet(scale, 64, 23, 32, seed=5)
        x = np.random.default_rng(scale).random((1, 8, 12, 3), dtype=np.float32)
        mine, spec = ref.keras_output(state, x)
        assert spec.params["num_block"] == 23 and spec.num_params > 16_000_000
        assert np.abs(mine - ref.reference(model, x)).max() <= TOLERANCE
