"""``srgan_cli.bench``: result shape and the FLOP count (no assertion on measured speed)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from srgan_cli import bench
from srgan_cli.cli import main
from srgan_cli.model import GeneratorConfig, build_generator, generator_flops_per_input_pixel
from srgan_cli.pipeline import Upscaler

RESULT_KEYS = {
    "model",
    "architecture",
    "precision",
    "threads",
    "input_size",
    "output_size",
    "tiles",
    "repeats",
    "seconds_best",
    "seconds_median",
    "input_px_per_s",
    "output_mpx_per_s",
    "gflop_per_image",
    "gflops",
}
PEAK_KEYS = {"matmul_peak_gflops", "matmul_peak_dtype", "percent_of_peak"}
RATES = ("seconds_best", "seconds_median", "input_px_per_s", "output_mpx_per_s", "gflops")


def counted_flops_per_input_pixel(model, side: int = 8) -> float:
    """Independent count: run the model on a side x side input, and for every Conv2D add
    kh * kw * cin * cout * 2 FLOP per pixel of its actual output."""
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    probe = keras.Model(model.input, [layer.output for layer in convs])
    outputs = probe(np.zeros((1, side, side, 3), dtype=np.float32))
    total = 0
    for layer, out in zip(convs, outputs, strict=True):
        kh, kw, cin, cout = layer.kernel.shape
        total += 2 * kh * kw * cin * cout * out.shape[1] * out.shape[2]
    return total / side**2


@pytest.mark.parametrize(("blocks", "channels"), [(2, 8), (16, 64)])
def test_flop_formula_matches_a_count_of_the_conv_layers(blocks, channels):
    model = build_generator(blocks, channels)
    expected = counted_flops_per_input_pixel(model)
    assert generator_flops_per_input_pixel(GeneratorConfig(blocks, channels)) == expected


@pytest.fixture(scope="module")
def tiny_upscaler(tiny_weights):
    return Upscaler(weights=tiny_weights, precision="fp32")


def test_measure_upscaler_returns_positive_rates(tiny_upscaler):
    result = bench.measure_model(tiny_upscaler, size=16, repeats=2)
    assert set(result) == RESULT_KEYS
    assert result["model"] == "tiny"
    assert result["architecture"] == GeneratorConfig(2, 8).to_dict()
    assert result["precision"] == "fp32"
    assert (result["input_size"], result["output_size"]) == ([16, 16], [64, 64])
    assert (result["tiles"], result["repeats"]) == (1, 2)
    assert result["threads"] >= 1
    assert all(result[key] > 0 for key in RATES)
    assert result["seconds_best"] <= result["seconds_median"]
    per_px = generator_flops_per_input_pixel(GeneratorConfig(2, 8))
    assert result["gflop_per_image"] == pytest.approx(per_px * 16 * 16 / 1e9)
    assert json.loads(json.dumps(result)) == result


def test_tiled_flops_count_the_context_pixels(tiny_weights):
    # 16x16 in 8 px tiles with 4 px of context: 4 tiles, each 12x12 px after clamping.
    upscaler = Upscaler(weights=tiny_weights, precision="fp32", tile=8, tile_pad=4)
    result = bench.measure_model(upscaler, size=16, repeats=1)
    per_px = generator_flops_per_input_pixel(GeneratorConfig(2, 8))
    assert result["tiles"] == 4
    assert result["gflop_per_image"] == pytest.approx(per_px * 4 * 12 * 12 / 1e9)
    assert result["input_px_per_s"] == pytest.approx(16 * 16 / result["seconds_best"])


@pytest.mark.parametrize(("policy", "precision"), [(None, "fp32"), ("mixed_bfloat16", "bf16")])
def test_measure_keras_model_reads_its_architecture(policy, precision):
    model = build_generator(blocks=3, channels=8, dtype_policy=policy)
    result = bench.measure_model(model, size=8, repeats=1)
    assert result["architecture"] == GeneratorConfig(3, 8).to_dict()
    assert result["precision"] == precision
    assert result["output_size"] == [32, 32]
    assert all(result[key] > 0 for key in RATES)


def test_measure_rejects_bad_arguments(tiny_upscaler):
    with pytest.raises(ValueError, match="repeats"):
        bench.measure_model(tiny_upscaler, size=8, repeats=0)
    with pytest.raises(ValueError, match="size"):
        bench.measure_model(tiny_upscaler, size=0, repeats=1)
    with pytest.raises(ValueError, match="head_conv"):
        bench.measure_model(keras.Sequential([keras.Input((4, 4, 3))]), size=4, repeats=1)


def test_matmul_peak_is_positive():
    assert bench.matmul_peak_gflops(n=128, repeats=2) > 0


def test_benchmark_adds_the_peak_and_renders(tiny_upscaler):
    result = bench.benchmark(tiny_upscaler, size=8, repeats=1)
    assert set(result) == RESULT_KEYS | PEAK_KEYS
    assert result["matmul_peak_dtype"] == "float32"
    share = 100 * result["gflops"] / result["matmul_peak_gflops"]
    assert result["percent_of_peak"] == pytest.approx(share)
    lines = bench.report_lines(result)
    assert lines[0].startswith("model     tiny (2 blocks, 8 channels), fp32")
    assert "of the fp32 peak" in lines[-1] and "bf16" not in lines[-1]
    bf16_lines = bench.report_lines({**result, "precision": "bf16"})
    assert "numpy has no bf16 matmul" in bf16_lines[-1]


@pytest.fixture
def bench_command():
    command = main.commands.get("bench")
    if command is None:
        pytest.skip("srgan bench is not registered in srgan_cli.cli")
    return command


def test_cli_bench_json(bench_command, tiny_weights):
    argv = ["bench", "--weights", str(tiny_weights), "--size", "8", "--repeats", "1", "--json"]
    result = CliRunner().invoke(main, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == RESULT_KEYS | PEAK_KEYS
    assert data["input_size"] == [8, 8]


def test_cli_bench_text_and_defaults(bench_command, tiny_weights):
    argv = ["bench", "--weights", str(tiny_weights), "--size", "8", "--repeats", "1"]
    result = CliRunner().invoke(main, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "GFLOP/s" in result.stdout and "px/s" in result.stdout
    defaults = {param.name: param.default for param in bench_command.params}
    assert (defaults["size"], defaults["repeats"]) == (bench.DEFAULT_SIZE, bench.DEFAULT_REPEATS)
