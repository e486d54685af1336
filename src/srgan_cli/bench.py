"""How fast the generator runs on this machine: the core of ``srgan bench``.

Everything returns plain JSON-ready dicts; the CLI prints them (``report_lines`` renders the
text form). Rates come from the fastest timed repeat, the one least disturbed by other
processes; one untimed warm-up run comes first (graph tracing, memory allocation). GFLOP/s
counts the convolutions' multiply-adds x2 (``model.generator_flops_per_input_pixel``) and is
compared with numpy's float32 matmul rate on this machine, a practical ceiling for fp32
convolutions on the same cores. numpy has no bf16 matmul, so bf16 runs are compared with the
fp32 peak too (they can exceed 100% of it).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from srgan_cli import SCALE
from srgan_cli.model import GeneratorConfig, generator_flops_per_input_pixel
from srgan_cli.pipeline import Upscaler, inference_threads
from srgan_cli.tiling import plan_tiles
from srgan_cli.weights import OWN_ARCH

DEFAULT_SIZE = 128
"""Side of the square test input in LR pixels (the CLI's ``--size`` default)."""
DEFAULT_REPEATS = 5
"""Timed runs after the warm-up (the CLI's ``--repeats`` default)."""
PEAK_MATRIX = 2048
PEAK_REPEATS = 5


def _seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _timings(call: Callable[[], object], repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` calls, after one untimed warm-up call."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    call()
    return [_seconds(call) for _ in range(repeats)]


def matmul_peak_gflops(n: int = PEAK_MATRIX, repeats: int = PEAK_REPEATS) -> float:
    """numpy float32 ``n x n @ n x n`` (sgemm) rate in GFLOP/s, best of ``repeats``.

    Counts 2 n^3 FLOP per product. numpy's BLAS uses all the cores it may, as TensorFlow does.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    best = min(_timings(lambda: np.matmul(a, b, out=out), repeats))
    return 2.0 * n**3 / best / 1e9


def measure_model(
    target: Upscaler | keras.Model, size: int = DEFAULT_SIZE, repeats: int = DEFAULT_REPEATS
) -> dict[str, Any]:
    """Time upscaling one random ``size`` x ``size`` RGB image, ``repeats`` times.

    ``target`` is an ``Upscaler``, timed end to end through ``upscale`` on uint8 pixels
    (tiling, float conversion and rounding included, as ``srgan upscale`` runs), or a
    generator ``keras.Model`` from ``model.build_generator``, timed through
    ``predict_on_batch`` on float32 input. ``gflop_per_image`` counts the pixels the model
    actually sees, tile context included; ``input_px_per_s`` counts the image's pixels only.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    config: GeneratorConfig | None
    if isinstance(target, Upscaler):
        tiles = plan_tiles(size, size, target.tile_size(size, size), target.pad)
        seen_px = sum((t.py1 - t.py0) * (t.px1 - t.px0) for t in tiles)
        own = target.spec.arch == OWN_ARCH
        config = GeneratorConfig.from_dict(target.card.architecture) if own else None
        architecture = config.to_dict() if config else target.spec.to_dict()
        name, precision, tile_count = target.name, target.precision_used, len(tiles)
        scale = target.scale
        times = _timings(lambda: target.upscale(pixels), repeats)
    else:
        batch = (pixels.astype(np.float32) / 255.0)[None]
        seen_px, tile_count, scale = size * size, 1, SCALE
        config, name, precision = _keras_config(target), target.name, _keras_precision(target)
        architecture = config.to_dict()
        times = _timings(lambda: target.predict_on_batch(batch), repeats)
    best = min(times)
    # FLOPs are counted for our SRResNet only; other architectures report times alone.
    flop = None if config is None else generator_flops_per_input_pixel(config) * seen_px
    return {
        "model": name,
        "architecture": architecture,
        "precision": precision,
        "threads": inference_threads(),
        "input_size": [size, size],
        "output_size": [size * scale, size * scale],
        "tiles": tile_count,
        "repeats": repeats,
        "seconds_best": best,
        "seconds_median": statistics.median(times),
        "input_px_per_s": size * size / best,
        "output_mpx_per_s": (size * scale) ** 2 / best / 1e6,
        "gflop_per_image": None if flop is None else flop / 1e9,
        "gflops": None if flop is None else flop / best / 1e9,
    }


def _keras_config(model: keras.Model) -> GeneratorConfig:
    """The architecture of a ``build_generator`` model, read from its layer names."""
    names = {layer.name for layer in model.layers}
    if "head_conv" not in names:
        raise ValueError(f"{model.name} is not a build_generator model (no head_conv layer)")
    blocks = sum(1 for name in names if name.startswith("res") and name.endswith("_conv1"))
    channels = int(model.get_layer("head_conv").filters)
    return GeneratorConfig(blocks, channels, batch_norm="body_bn" in names)


def _keras_precision(model: keras.Model) -> str:
    return "bf16" if any(layer.compute_dtype == "bfloat16" for layer in model.layers) else "fp32"


def benchmark(
    upscaler: Upscaler, size: int = DEFAULT_SIZE, repeats: int = DEFAULT_REPEATS
) -> dict[str, Any]:
    """``measure_model`` plus the machine's matmul peak and the model's share of it (%)."""
    result = measure_model(upscaler, size, repeats)
    peak = matmul_peak_gflops()
    return {
        **result,
        "matmul_peak_gflops": peak,
        "matmul_peak_dtype": "float32",
        "percent_of_peak": None if result["gflops"] is None else 100.0 * result["gflops"] / peak,
    }


def report_lines(result: dict[str, Any]) -> list[str]:
    """The text form of a ``benchmark`` result, one line per figure."""
    arch = result["architecture"]
    width, height = result["input_size"]
    out_w, out_h = result["output_size"]
    tiles = result["tiles"]
    caveat = " (numpy has no bf16 matmul)" if result["precision"] == "bf16" else ""
    if "arch" in arch:
        from srgan_cli.archs import ModelSpec

        what = ModelSpec.from_dict(arch).describe()
    else:
        what = f"{arch['blocks']} blocks, {arch['channels']} channels"
    lines = [
        f"model     {result['model']} ({what}), {result['precision']}, {result['threads']} threads",
        f"image     {width}x{height} -> {out_w}x{out_h}, {tiles} tile{'' if tiles == 1 else 's'}, "
        f"best of {result['repeats']} after 1 warm-up",
        f"time      {result['seconds_best']:.3f} s (median {result['seconds_median']:.3f} s)",
        f"input     {result['input_px_per_s']:,.0f} px/s",
        f"output    {result['output_mpx_per_s']:.3f} Mpx/s",
    ]
    if result["gflops"] is None:
        return lines
    return [
        *lines,
        f"compute   {result['gflops']:.1f} GFLOP/s ({result['gflop_per_image']:.2f} GFLOP/image)",
        f"peak      {result['matmul_peak_gflops']:.1f} GFLOP/s numpy float32 matmul{caveat}: "
        f"{result['percent_of_peak']:.0f}% of the fp32 peak",
    ]
