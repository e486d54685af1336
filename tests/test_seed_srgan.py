"""The seed's TF1 generator: read its checkpoint, fold it, and match the original graph."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import seed_variables, write_tf1_checkpoint

from srgan_cli import archs
from srgan_cli.archs import seed_srgan
from srgan_cli.archs.layers import DepthToSpace
from srgan_cli.errors import ModelFileError
from srgan_cli.modelfile.tfckpt import checkpoint_files, checkpoint_prefix, read_checkpoint

tf = pytest.importorskip("tensorflow")

UNIT = "generator/generator_unit/"


def seed_pixel_shuffle(x: np.ndarray) -> np.ndarray:
    """The seed's shuffler, re-derived: each run of 4 channels 2i+j becomes one output
    channel's 2x2 phases (row i, column j)."""
    b, h, w, c = x.shape
    groups = x.reshape(b, h, w, c // 4, 2, 2)  # (..., group, i, j)
    return groups.transpose(0, 1, 4, 2, 5, 3).reshape(b, 2 * h, 2 * w, c // 4)


def reference(v: dict[str, np.ndarray], lr: np.ndarray, blocks: int, stages: int) -> np.ndarray:
    """The seed graph written out directly (conv, inference BN, PReLU, its shuffle), [0, 1]."""

    def conv(x, scope):
        y = tf.nn.conv2d(x, v[f"{UNIT}{scope}/Conv/weights"], 1, "SAME").numpy()
        bias = v.get(f"{UNIT}{scope}/Conv/biases")
        return y if bias is None else y + bias

    def bn(x, scope):
        get = lambda leaf: v.get(f"{UNIT}{scope}/{leaf}")  # noqa: E731
        return tf.nn.batch_normalization(
            x, get("moving_mean"), get("moving_variance"), get("beta"), get("gamma"), 1e-3
        ).numpy()

    def prelu(x, scope):
        return np.maximum(x, 0) + v[f"{UNIT}{scope}/Prelu/alpha"] * (x - np.abs(x)) * 0.5

    head = prelu(conv(lr, "input_stage/conv"), "input_stage")
    net = head
    for i in range(1, blocks + 1):
        r = f"resblock_{i}"
        y = prelu(bn(conv(net, f"{r}/conv_1"), f"{r}/BatchNorm"), r)
        net = net + bn(conv(y, f"{r}/conv_2"), f"{r}/BatchNorm_1")
    net = head + bn(conv(net, "resblock_output/conv"), "resblock_output/BatchNorm")
    for k in range(1, stages + 1):
        s = f"subpixelconv_stage{k}"
        net = prelu(seed_pixel_shuffle(conv(net, f"{s}/conv")), s)
    return (conv(net, "output_stage/conv") + 1.0) / 2.0


def test_checkpoint_reader_keeps_weights_only(seed_checkpoint):
    prefix, variables = seed_checkpoint
    state = read_checkpoint(prefix)
    assert set(state) == set(variables) | {"discriminator/conv/weights"}
    for name, value in variables.items():
        np.testing.assert_array_equal(state[name], value)
    assert checkpoint_prefix(str(prefix) + ".index") == prefix
    assert checkpoint_prefix(prefix) == prefix
    assert [p.name for p in checkpoint_files(prefix)] == [
        "model.index",
        "model.data-00000-of-00001",
    ]


def test_identify_infers_blocks_channels_scale(seed_checkpoint):
    arch, spec = archs.identify(read_checkpoint(seed_checkpoint[0]))
    assert arch.name == "SeedSRGAN"
    assert (spec.scale, spec.params["num_block"], spec.params["num_feat"]) == (4, 2, 8)
    assert spec.describe() == "SeedSRGAN 2 blocks, 8 feat, x4, 11.5 k params"


@pytest.mark.parametrize("stages", [2, 1])
def test_import_matches_the_seed_graph(tmp_path, seed_checkpoint, stages):
    if stages == 2:
        prefix, variables = seed_checkpoint
    else:  # an x2 variant: the arch takes the scale from the stage count
        variables = seed_variables(blocks=3, channels=8, stages=1, seed=5)
        prefix = write_tf1_checkpoint(tmp_path / "x2", variables)
    model, spec = archs.convert(read_checkpoint(prefix))
    assert spec.scale == 2**stages
    shuffles = [model.get_layer(f"up{k}_shuffle") for k in range(stages)]
    assert all(isinstance(layer, DepthToSpace) for layer in shuffles)  # native, as the others
    assert model.count_params() == spec.num_params
    lr = np.random.default_rng(3).uniform(0, 1, (1, 13, 11, 3)).astype(np.float32)
    expected = reference(variables, lr, spec.params["num_block"], stages)
    got = np.asarray(model.predict_on_batch(lr))
    assert got.shape == (1, 13 * 2**stages, 11 * 2**stages, 3)
    assert np.std(expected) > 0.05  # a meaningful comparison, not two flat images
    assert np.max(np.abs(got - expected)) <= 1e-4


def test_wrong_shape_names_key_and_both_shapes(seed_checkpoint):
    state = dict(read_checkpoint(seed_checkpoint[0]))
    key = UNIT + "resblock_2/Prelu/alpha"
    state[key] = np.zeros(5, np.float32)
    with pytest.raises(
        ModelFileError, match=r"resblock_2/Prelu/alpha has shape \(5,\), expected \(8,\)"
    ):
        seed_srgan.spec(state)


def test_missing_block_is_refused(seed_checkpoint):
    state = read_checkpoint(seed_checkpoint[0])
    state = {k: v for k, v in state.items() if "resblock_1/" not in k}
    with pytest.raises(ModelFileError, match="scopes numbered"):
        seed_srgan.spec(state)


def test_damaged_checkpoint_is_one_model_file_error(tmp_path, seed_checkpoint):
    prefix = seed_checkpoint[0]
    for source in checkpoint_files(prefix):
        data = source.read_bytes()
        (tmp_path / source.name).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="damaged TF checkpoint") as info:
        read_checkpoint(tmp_path / "model")
    assert "\n" not in str(info.value)


def test_real_size_import_matches_the_seed_graph():
    """The service's size (16 blocks, 64 channels, x4): residual branches scaled down as in
    trained generators, so activations stay O(1) through 16 blocks and 1e-4 means something."""
    variables = seed_variables(blocks=16, channels=64, stages=2, seed=11)
    for key in variables:
        if key.endswith("conv_2/Conv/weights"):
            variables[key] = variables[key] * np.float32(0.1)
    model, spec = archs.convert(variables)
    assert spec.describe() == "SeedSRGAN 16 blocks, 64 feat, x4, 1.5 M params"
    lr = np.random.default_rng(12).uniform(0, 1, (1, 12, 10, 3)).astype(np.float32)
    expected = reference(variables, lr, 16, 2)
    assert 0.05 < np.std(expected) < 10
    assert np.max(np.abs(np.asarray(model.predict_on_batch(lr)) - expected)) <= 1e-4


@pytest.mark.parametrize("stages", [2, 1])
def test_fast_tail_computes_the_same_function(stages):
    """model.for_inference (the 9x9 tail as a 5x5 conv before the last shuffle) fits the
    seed's twin too: same output as the imported model, borders included."""
    from srgan_cli.model import for_inference, has_subpixel_tail

    variables = seed_variables(blocks=2, channels=8, stages=stages, seed=21)
    model, _ = archs.convert(variables)
    assert has_subpixel_tail(model)
    fast = for_inference(model)
    assert "subpixel_tail" in {layer.name for layer in fast.layers}
    lr = np.random.default_rng(22).uniform(0, 1, (2, 7, 9, 3)).astype(np.float32)
    want = np.asarray(model(lr))
    assert np.max(np.abs(np.asarray(fast(lr)) - want)) <= 1e-5
    assert np.max(np.abs(want - reference(variables, lr, 2, stages))) <= 1e-4
