"""Imported architectures against outputs of the PyTorch references (tests/make_arch_fixtures.py).

The fixtures hold small random networks in every key layout and scale, with the reference's
output on a random input; CI needs no torch. A real-size check runs where torch is installed.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import compact_x1_state

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
    with pytest.raises(ModelFileError, match=r"takes 5 channels; need 1 or 3 .* x4 or x16"):
        archs.identify(state)
    state["conv_first.weight"] = np.zeros((4, 12, 3, 3), np.float32)
    state["conv_last.weight"] = np.zeros((1, 4, 3, 3), np.float32)  # RGB unshuffled, gray out?
    with pytest.raises(ModelFileError, match="takes 12 channels"):
        archs.identify(state)


def test_srvgg_refuses_non_rgb_output():
    state = read_state(FIXTURES / "srvgg_x1.pth")
    state["body.8.weight"] = np.zeros((10, 8, 3, 3), np.float32)
    with pytest.raises(ModelFileError, match="10 channels, not 3 x scale"):
        archs.identify(state)


LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as PIL's convert("L")

# fixtures whose networks are cut to one channel, and their first and last convs
ENDS = {"rrdb_esrgan_x2.pth": "model.0 model.7", "srvgg_x2.safetensors": "body.0 body.8"}
GRAY_CASES = (
    "rrdb_basicsr_x4.pth",
    "rrdb_basicsr_x1.pth",
    "rrdb_bsrgan_x2.pth",
    "msrresnet_x3.safetensors",
    *ENDS,
)


def _gray_keys(name: str) -> tuple[str, str, int, int]:
    """First conv, last conv, pixel-unshuffle factor, output channels per colour."""
    arch, _, scale, multiple = CASES[name]
    first, last = ENDS.get(name, "conv_first conv_last").split()
    return first, last, multiple, scale * scale if arch == "SRVGGNetCompact" else 1


def _gray(state: dict, first: str, last: str, factor: int, phases: int) -> dict:
    """The fixture's network cut to one channel in and out (its red channel's weights)."""
    return {
        **state,
        f"{first}.weight": state[f"{first}.weight"][:, : factor * factor],
        f"{last}.weight": state[f"{last}.weight"][:phases],
        f"{last}.bias": state[f"{last}.bias"][:phases],
    }


def _rgb_twin(gray: dict, first: str, last: str, factor: int, phases: int) -> dict:
    """An RGB network that computes ``gray`` on the luma and gives it in all 3 channels
    (pixel_unshuffle and pixel_shuffle number channels colour-major, c * phases + p)."""
    return {
        **gray,
        f"{first}.weight": np.concatenate([gray[f"{first}.weight"] * w for w in LUMA], axis=1),
        f"{last}.weight": np.concatenate([gray[f"{last}.weight"]] * 3),
        f"{last}.bias": np.concatenate([gray[f"{last}.bias"]] * 3),
    }


def _colour_and_luma(seed: int) -> tuple[np.ndarray, np.ndarray]:
    colour = np.random.default_rng(seed).random((1, 4, 8, 3), dtype=np.float32)
    return colour, np.repeat(colour @ LUMA[:, None], 3, axis=-1)


@pytest.mark.parametrize("name", GRAY_CASES)
def test_grayscale_model_sees_luma_and_gives_gray(name: str):
    """A 1-channel model (in_nc = out_nc = 1) runs on the image's luma, as chaiNNer does;
    its output is replicated to R = G = B. Checked against an RGB twin computing the same."""
    keys = _gray_keys(name)
    gray = _gray(read_state(FIXTURES / name), *keys)
    model, spec = archs.convert(gray)
    assert (spec.in_nc, spec.out_nc) == (1, 1) and ", grayscale" in spec.describe()
    twin, twin_spec = archs.convert(_rgb_twin(gray, *keys))
    assert (twin_spec.scale, twin_spec.input_multiple) == (spec.scale, spec.input_multiple)
    colour, luma = _colour_and_luma(spec.scale)
    out = np.asarray(model(colour))
    assert out.shape == (1, 4 * spec.scale, 8 * spec.scale, 3) and out.std() > 1e-3
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    assert np.abs(out - np.asarray(model(luma))).max() <= 1e-5  # only the luma counts
    assert np.abs(out - np.asarray(twin(luma))).max() <= TOLERANCE


def test_rrdbnet_between_gray_and_rgb():
    """RRDBNet has no input skip, so gray -> RGB and RGB -> gray models run too."""
    state = read_state(FIXTURES / "rrdb_basicsr_x4.pth")
    colour, luma = _colour_and_luma(9)
    rgb, _ = archs.convert(state)
    gray_in = {**state, "conv_first.weight": state["conv_first.weight"][:, :1]}
    model, spec = archs.convert(gray_in)
    assert (spec.in_nc, spec.out_nc) == (1, 3) and ", 1 -> 3 channels" in spec.describe()
    twin = {**state, "conv_first.weight": gray_in["conv_first.weight"] * LUMA[:, None, None]}
    expected = np.asarray(archs.convert(twin)[0](colour))
    assert np.abs(np.asarray(model(colour)) - expected).max() <= TOLERANCE
    gray_out = {**state, "conv_last.weight": state["conv_last.weight"][:1]}
    gray_out["conv_last.bias"] = state["conv_last.bias"][:1]
    model, spec = archs.convert(gray_out)
    assert (spec.in_nc, spec.out_nc) == (3, 1)
    out = np.asarray(model(colour))
    assert np.abs(out - np.asarray(rgb(colour))[..., :1]).max() <= TOLERANCE
    np.testing.assert_array_equal(out[..., 2], out[..., 0])
    assert np.abs(out - np.asarray(model(luma))).max() > 0.01  # colour matters here


@pytest.mark.parametrize(
    ("name", "first", "last", "phases", "message"),
    [
        ("rrdb_basicsr_x4.pth", "conv_first", "conv_last", 4, "4 output channels; need 1"),
        ("srvgg_x2.safetensors", "body.0", "body.8", 16, "takes 4 channels; need 1 or 3"),
        ("msrresnet_x2.pth", "conv_first", "conv_last", 1, "3 input and 1 output channels"),
        ("srvgg_x2.safetensors", None, "body.8", 4, "gives 4 channels, not 3 x scale"),
    ],
)
def test_unsupported_channels_are_named(name, first, last, phases, message):
    """RGBA models (4 channels), and a different channel count out than in where the
    architecture adds its input to its output: one line naming the counts."""
    state = read_state(FIXTURES / name)
    nf = state[f"{last}.weight"].shape[1]
    state[f"{last}.weight"] = np.zeros((phases, nf, 3, 3), np.float32)
    state[f"{last}.bias"] = np.zeros(phases, np.float32)
    if first is not None and phases == 16:  # 4 x scale**2: RGBA in and out
        state[f"{first}.weight"] = np.zeros((nf, 4, 3, 3), np.float32)
    with pytest.raises(ModelFileError, match=message) as err:
        archs.identify(state)
    assert "\n" not in str(err.value)


def test_network_inside_a_wrapper_module_is_found():
    """Lightning keeps a module's networks under their attribute names (``model.``,
    ``net_g.``...) beside losses and discriminators: the one generator found is used; of
    a network and its EMA copy, the EMA, as for ``params_ema``."""
    state = read_state(FIXTURES / "rrdb_esrgan_x4.pth")  # keys model.0..., already "model."
    extras = {"loss.vgg.0.weight": np.ones((2, 3, 3, 3), np.float32)}
    wrapped = {**{f"model.{k}": v for k, v in state.items()}, **extras}
    model, spec = archs.convert(wrapped)
    assert spec.params["layout"] == "ESRGAN"
    ref = np.load(FIXTURES / "rrdb_esrgan_x4.npz")
    assert np.abs(np.asarray(model(ref["x"])) - ref["y"]).max() <= TOLERANCE
    ema = {
        **{f"net_g.{k}": v * 0 for k, v in state.items()},
        **{f"net_g_ema.{k}": v for k, v in state.items()},
    }
    model, _ = archs.convert(ema)
    assert np.abs(np.asarray(model(ref["x"])) - ref["y"]).max() <= TOLERANCE
    two = {
        **{f"gen_a.{k}": v for k, v in state.items()},
        **{f"gen_b.{k}": v for k, v in state.items()},
    }
    with pytest.raises(ModelFileError, match=r"several networks \(gen_a\., gen_b\.\)"):
        archs.identify(two)


def _rrdb_state(dense: str, others: dict, nb: int, nf: int, gc: int, seed: int = 0) -> dict:
    """A random RRDBNet state dict: ``dense`` formats a dense conv's prefix from the block,
    dense block and conv numbers; ``others`` maps the other convs' prefixes to (out, in)."""
    rng = np.random.default_rng(seed)
    shapes = {
        dense.format(b, r, c): (nf if c == 5 else gc, nf + (c - 1) * gc)
        for b in range(nb)
        for r in (1, 2, 3)
        for c in range(1, 6)
    }
    state = {}
    for prefix, (cout, cin) in {**shapes, **others}.items():
        std = 1 / np.sqrt(9 * cin)
        state[f"{prefix}.weight"] = rng.normal(0, std, (cout, cin, 3, 3)).astype(np.float32)
        state[f"{prefix}.bias"] = rng.normal(0, 0.02, cout).astype(np.float32)
    return state


@pytest.mark.parametrize(("nb", "nf", "gc"), [(6, 64, 32), (3, 32, 16)])
def test_rrdbnet_sizes_come_from_shapes(nb: int, nf: int, gc: int):
    """Real-ESRGAN's RealESRGAN_x4plus_anime_6B (6 blocks), a narrower net (32 feat, 16)."""
    convs = ("conv_body", "conv_up1", "conv_up2", "conv_hr")
    others = {"conv_first": (nf, 3), **dict.fromkeys(convs, (nf, nf)), "conv_last": (3, nf)}
    spec = archs.identify(_rrdb_state("body.{}.rdb{}.conv{}", others, nb, nf, gc))[1]
    p = spec.params
    assert (p["num_block"], p["num_feat"], p["num_grow_ch"], spec.scale) == (nb, nf, gc, 4)


def test_old_esrgan_x1_without_upsampling():
    """Old-arch 1x files (OpenModelDB's 1x_ restoration models): conv, trunk, HR conv at
    model.2, LeakyReLU, last conv at model.4; no up stage, no unshuffle. The same weights
    under BasicSR names give the same network."""
    nb, nf, gc = 2, 8, 4
    trunk = f"model.1.sub.{nb}"
    names = {
        "model.0": "conv_first",
        trunk: "conv_body",
        "model.2": "conv_hr",
        "model.4": "conv_last",
    }
    others = {"model.0": (nf, 3), trunk: (nf, nf), "model.2": (nf, nf), "model.4": (3, nf)}
    old = _rrdb_state("model.1.sub.{}.RDB{}.conv{}.0", others, nb, nf, gc, seed=3)
    model, spec = archs.convert(old)
    assert (spec.params["layout"], spec.params["num_block"], spec.scale) == ("ESRGAN", nb, 1)
    basicsr = {}
    for key, value in old.items():
        head, kind = key.rsplit(".", 1)
        dense = re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0", head)
        head = "body.{}.rdb{}.conv{}".format(*dense.groups()) if dense else names[head]
        basicsr[f"{head}.{kind}"] = value
    twin, twin_spec = archs.convert(basicsr)
    assert twin_spec.params["layout"] == "BasicSR" and twin_spec.scale == 1
    x = np.random.default_rng(4).random((1, 5, 7, 3), dtype=np.float32)
    out = np.asarray(model(x))
    assert out.shape == x.shape and out.std() > 1e-3
    np.testing.assert_array_equal(out, np.asarray(twin(x)))


def test_srvgg_release_shapes():
    """realesr-animevideov3 (64 feat, 16 convs) and realesr-general-x4v3 (64, 32), x4."""
    for num_conv in (16, 32):
        state = compact_x1_state(nf=64, num_conv=num_conv)
        last = 2 * num_conv + 2
        state[f"body.{last}.weight"] = np.zeros((48, 64, 3, 3), np.float32)
        state[f"body.{last}.bias"] = np.zeros(48, np.float32)
        spec = archs.identify(state)[1]
        assert (spec.params["num_feat"], spec.params["num_conv"], spec.scale) == (64, num_conv, 4)


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
