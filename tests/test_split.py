"""Upsamplers in row strips (``split``) against the whole network, real Keras models.

The fixtures (tests/make_arch_fixtures.py) are small random RRDBNets (2 blocks, 8 feat,
growth 4) at every scale: x4 and x8 (2 and 3 up stages), x2 and x1 (pixel-unshuffle in),
plus variants cut here: no up stage (old ESRGAN 1x) and grayscale out. Our SRResNet and the
seed's network (x4 and x2) are built small with random weights (2 blocks, 8 channels).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest

from srgan_cli import archs
from srgan_cli.modelfile import read_state
from srgan_cli.split import MIN_STRIP_ROWS, SplitNetwork, for_arch, strip_windows

FIXTURES = Path(__file__).parent / "fixtures" / "archs"
ROUND_OFF = 1e-5


def _state(name: str) -> dict:
    """A fixture's state dict; ``+noup``: without its up stages, ``+gray``: one channel out."""
    base, *variants = name.split("+")
    state = read_state(FIXTURES / base)
    if "noup" in variants:
        state = {k: v for k, v in state.items() if not k.startswith("conv_up")}
    if "gray" in variants:
        state["conv_last.weight"] = state["conv_last.weight"][:1]
        state["conv_last.bias"] = state["conv_last.bias"][:1]
    return state


MODELS = (
    "rrdb_basicsr_x4.pth",
    "rrdb_basicsr_x8.safetensors",
    "rrdb_basicsr_x2.safetensors",
    "rrdb_basicsr_x1.pth",
    "rrdb_bsrgan_x2.pth",
    "rrdb_basicsr_x4.pth+noup",
    "rrdb_basicsr_x4.pth+gray",
)
# (height, width) in feature rows and columns: tiny, not divisible by the strips, one
# strip's window covering everything, exact multiples
SHAPES = ((1, 1), (1, 5), (2, 3), (5, 4), (7, 3), (10, 6), (13, 5), (24, 7), (31, 9))


def _converted(name: str, precision: str):
    """The model and spec, its ``predict_on_batch`` traced for any shape: a first trace is for
    its exact input shape, and in bf16 its graph's round-off can differ from the general
    one's (5e-5 on a 1x1 input) before the split network is even involved."""
    policy = "mixed_bfloat16" if precision == "bf16" else None
    model, spec = archs.convert(_state(name), policy)
    for side in (4, 8):  # multiples of any unshuffle factor
        model.predict_on_batch(np.zeros((1, side, 2 * side, 3), np.float32) + 0.5)
    return model, spec


@pytest.mark.parametrize(
    ("height", "strips", "margin"),
    [(h, s, m) for h in (1, 2, 3, 5, 9, 10, 17, 40, 101) for s in (1, 2, 3, 4, 7) for m in (0, 2)],
)
def test_windows_keep_every_row_once_with_its_margin(height: int, strips: int, margin: int):
    windows = strip_windows(height, strips, margin)
    kept = [row for _, _, k0, k1 in windows for row in range(k0, k1)]
    assert kept == list(range(height))
    assert len({w1 - w0 for w0, w1, _, _ in windows}) == 1  # one shape per tile
    assert len(windows) <= strips
    for w0, w1, k0, k1 in windows:
        assert 0 <= w0 <= k0 < k1 <= w1 <= height
        assert w0 == 0 or w0 <= k0 - margin
        assert w1 == height or w1 >= k1 + margin


def test_windows_refuse_nonsense():
    with pytest.raises(ValueError):
        strip_windows(0, 4, 2)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("name", MODELS)
def test_split_equals_whole(name: str, precision: str):
    """Same output as the whole network in the same precision, to float round-off, for
    several tile shapes through one ``SplitNetwork`` (its graphs take any shape)."""
    model, spec = _converted(name, precision)
    network = for_arch(model, spec, strips=3, min_rows=1)
    assert isinstance(network, SplitNetwork)
    assert network.tail.factor == spec.scale * spec.input_multiple  # output rows per feature row
    rng = np.random.default_rng(7)
    for height, width in SHAPES:
        m = spec.input_multiple  # an unshuffled model's features are 1/m of its input
        batch = rng.random((1, height * m, width * m, 3), dtype=np.float32)
        whole = np.asarray(model.predict_on_batch(batch), dtype=np.float32)
        split = network(batch)
        assert split.shape == whole.shape == (1, *(spec.scale * n * m for n in (height, width)), 3)
        assert np.abs(split - whole).max() <= ROUND_OFF, (height, width)


@pytest.mark.parametrize("name", ["rrdb_basicsr_x4.pth", "rrdb_basicsr_x4.pth+noup"])
def test_one_row_less_margin_changes_the_output(name: str):
    """The margin is needed: x4 reaches 1.25 feature rows, no up stage (conv_hr and
    conv_last on the LR grid) 2, so a margin of 1 leaves wrong rows at the seams."""
    model, spec = _converted(name, "fp32")
    network = for_arch(model, spec, strips=3, min_rows=1)
    assert network.tail.margin == 2
    short = SplitNetwork(dataclasses.replace(network.tail, margin=1), strips=3, min_rows=1)
    batch = np.random.default_rng(8).random((1, 24, 7, 3), dtype=np.float32)
    whole = np.asarray(model.predict_on_batch(batch), dtype=np.float32)
    assert np.abs(network(batch) - whole).max() <= ROUND_OFF
    assert np.abs(short(batch) - whole).max() > 1e-3


def test_parts_share_the_model_weights():
    """Trunk and upsampler hold the model's own variables: no second copy of the weights."""
    model, spec = _converted("rrdb_basicsr_x4.pth", "bf16")
    tail = for_arch(model, spec).tail
    own = {id(v) for v in model.weights}
    parts = [id(v) for part in (tail.trunk, tail.upsampler) for v in part.weights]
    assert set(parts) == own and len(parts) == len(own)
    policy = {layer.name: layer.dtype_policy.name for layer in model.layers}
    assert policy["conv_first"] == policy["conv_last"] == "float32"  # kept in float32
    assert policy["conv_hr"] == "mixed_bfloat16"


@pytest.mark.parametrize("name", ["srvgg_x4.pth", "msrresnet_x3.safetensors"])
def test_other_archs_run_whole(name: str):
    model, spec = archs.convert(read_state(FIXTURES / name))
    predict = for_arch(model, spec)
    assert not isinstance(predict, SplitNetwork)
    assert archs.arch_named(spec.arch).tail(model, spec) is None
    batch = np.random.default_rng(9).random((1, 6, 9, 3), dtype=np.float32)
    out = predict(batch)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.asarray(model.predict_on_batch(batch)))


def test_many_shapes_trace_once(caplog: pytest.LogCaptureFixture):
    """Tiles of many sizes: each part is traced once, and TensorFlow never warns of
    retracing. Through ``predict_on_batch`` each part was traced 3 times here (the first
    shape, then the width relaxed, then the height too) and TensorFlow warned."""
    model, spec = _converted("rrdb_basicsr_x4.pth", "fp32")
    network = for_arch(model, spec)
    with caplog.at_level(logging.WARNING):
        for i in range(12):
            height, width = 5 + 3 * (i // 2), 17 - i
            batch = np.zeros((1, height, width, 3), np.float32)
            assert network(batch).shape == (1, 4 * height, 4 * width, 3)
    assert "retracing" not in caplog.text
    assert [graph.experimental_get_tracing_count() for graph in network.graphs] == [1, 1]


def test_small_tiles_run_the_upsampler_whole():
    """Strips keep at least MIN_STRIP_ROWS rows: no margin work where memory is no issue."""
    model, spec = _converted("rrdb_basicsr_x4.pth", "fp32")
    network = for_arch(model, spec)
    assert isinstance(network, SplitNetwork) and network.min_rows == MIN_STRIP_ROWS == 64
    counts = {rows: len(network.windows(rows)) for rows in (1, 63, 64, 127, 128, 255, 256, 400)}
    assert counts == {1: 1, 63: 1, 64: 1, 127: 1, 128: 2, 255: 3, 256: 4, 400: 4}
    assert network.windows(100) == [(0, 100, 0, 100)]


# Our SRResNet generator and the seed's network, as ``pipeline.inference_function`` runs
# them: ``model.for_inference`` (5x5 SubpixelTail), then cut at ``long_skip``.
FAST = ("srresnet", "seed_x4", "seed_x2")


def _generator(name: str, precision: str):
    """A small generator as built or imported (2 blocks, 8 channels) and its spec."""
    from conftest import seed_variables

    from srgan_cli.archs.srresnet import spec_for
    from srgan_cli.model import GeneratorConfig, build_generator

    policy = "mixed_bfloat16" if precision == "bf16" else None
    if name == "srresnet":
        keras = pytest.importorskip("keras")
        keras.utils.set_random_seed(5)
        return build_generator(2, 8, dtype_policy=policy), spec_for(GeneratorConfig(2, 8))
    stages = 2 if name == "seed_x4" else 1
    return archs.convert(seed_variables(blocks=2, channels=8, stages=stages, seed=3), policy)


def _fast(name: str, precision: str):
    """``_generator`` with its fast tail, traced for any shape (see ``_converted``)."""
    from srgan_cli.model import for_inference

    generator, spec = _generator(name, precision)
    model = for_inference(generator)
    for side in (4, 8):
        model.predict_on_batch(np.zeros((1, side, 2 * side, 3), np.float32) + 0.5)
    return model, spec


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("name", FAST)
def test_fast_tail_split_equals_whole(name: str, precision: str):
    """The sub-pixel stages in strips give the whole for_inference model's output, float32."""
    model, spec = _fast(name, precision)
    network = for_arch(model, spec, strips=3, min_rows=1)
    assert isinstance(network, SplitNetwork)
    assert (network.tail.factor, network.tail.margin) == (spec.scale, 3)
    assert network.tail.upsampler.outputs[0].dtype == "float32"
    rng = np.random.default_rng(7)
    for height, width in SHAPES:
        batch = rng.random((1, height, width, 3), dtype=np.float32)
        whole = np.asarray(model.predict_on_batch(batch), dtype=np.float32)
        split = network(batch)
        assert split.dtype == np.float32
        assert split.shape == whole.shape == (1, spec.scale * height, spec.scale * width, 3)
        assert np.abs(split - whole).max() <= ROUND_OFF, (height, width)


@pytest.mark.parametrize("name", FAST)
def test_fast_tail_needs_its_margin(name: str):
    """x4 reaches 1 + 0.5 + 1 = 2.5 feature rows (3: an output row at 4x sits in a 2x row
    pair), x2 1 + 2 = 3, so a margin of 2 leaves wrong rows at the seams."""
    model, spec = _fast(name, "fp32")
    network = for_arch(model, spec, strips=3, min_rows=1)
    short = SplitNetwork(dataclasses.replace(network.tail, margin=2), strips=3, min_rows=1)
    batch = np.random.default_rng(8).random((1, 24, 7, 3), dtype=np.float32)
    whole = np.asarray(model.predict_on_batch(batch), dtype=np.float32)
    assert np.abs(network(batch) - whole).max() <= ROUND_OFF
    assert np.abs(short(batch) - whole).max() > 1e-3


@pytest.mark.parametrize("name", ["srresnet", "seed_x4"])
def test_fast_tail_parts_share_the_weights(name: str):
    """Trunk and upsampler hold the for_inference model's own variables, no copies."""
    model, spec = _fast(name, "bf16")
    tail = for_arch(model, spec).tail
    own = {id(v) for v in model.weights}
    parts = [id(v) for part in (tail.trunk, tail.upsampler) for v in part.weights]
    assert set(parts) == own and len(parts) == len(own)
    policy = {layer.name: layer.dtype_policy.name for layer in tail.upsampler.layers}
    assert policy["up0_conv"] == "mixed_bfloat16" and policy["subpixel_tail"] == "float32"


@pytest.mark.parametrize("name", ["srresnet", "seed_x2"])
def test_generator_without_fast_tail_runs_whole(name: str):
    """A generator as trained (9x9 tail_conv, no SubpixelTail) is not cut: it runs whole."""
    model, spec = _generator(name, "fp32")
    assert archs.arch_named(spec.arch).tail(model, spec) is None
    assert not isinstance(for_arch(model, spec), SplitNetwork)


@pytest.mark.parametrize("name", ["srresnet", "seed_x4"])
def test_inference_function_splits_the_fast_model(name: str):
    """``pipeline.inference_function`` hands ``for_arch`` the for_inference model."""
    from srgan_cli.pipeline import inference_function

    generator, spec = _generator(name, "fp32")
    network = inference_function(generator, spec)
    assert isinstance(network, SplitNetwork)
    assert "subpixel_tail" in {layer.name for layer in network.tail.upsampler.layers}
    batch = np.random.default_rng(9).random((1, 9, 6, 3), dtype=np.float32)
    whole = np.asarray(generator.predict_on_batch(batch), dtype=np.float32)
    assert np.abs(network(batch) - whole).max() <= ROUND_OFF
