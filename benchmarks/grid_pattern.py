"""The period-4 grid measure: how strong a fixed 4x4 sub-pixel pattern a model paints.

A generator with pixel-shuffle stages can learn a checkerboard that repeats every 4 output
pixels whatever the picture. Averaged over many images, the high-pass residual at each of
the 16 sub-pixel phases cancels out for real photos but not for such a pattern, so its RMS
over the phases (in grey levels, 0-255) is the measure. Issue 11 asks for <= 0.5; the HR
photos themselves are printed alongside as the floor (their phases only reflect chance).

    python benchmarks/grid_pattern.py ../shared/datasets/benchmark/BSD100 --models srgan,real
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

PERIOD = 4


def phase_sums(image: np.ndarray) -> tuple[np.ndarray, int]:
    """Sum of the 3x3 high-pass residual at each (row % 4, col % 4, channel), and its count.

    The residual is ``networks.lattice_pattern``'s, the quantity ``--grid-weight`` trains
    against, so the benchmark and the training term measure the same thing. Sums (not
    means) so that images of different sizes add up with equal weight per pixel.
    """
    from srgan_cli.train.networks import lattice_pattern

    h, w = (image.shape[0] // PERIOD) * PERIOD, (image.shape[1] // PERIOD) * PERIOD
    pixels = image[:h, :w].astype(np.float32).reshape(1, h, w, -1)
    count = (h // PERIOD) * (w // PERIOD)
    return np.asarray(lattice_pattern(pixels), dtype=np.float64)[0] * count, count


def pattern_rms(images: list[np.ndarray]) -> float:
    """RMS over the 4x4 phases and channels of the per-phase mean residual (grey levels)."""
    total, count = None, 0
    for image in images:
        sums, n = phase_sums(image)
        total = sums if total is None else total + sums
        count += n
    mean = total / count
    mean -= mean.mean(axis=(0, 1), keepdims=True)  # a constant offset is not a pattern
    return float(np.sqrt(np.mean(mean**2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--models", default="srgan,srresnet,real")
    parser.add_argument("--weights", action="append", default=[], help="extra .weights.h5")
    args = parser.parse_args()

    from srgan_cli import evaluate
    from srgan_cli.degrade import PROTOCOL_CHAIN
    from srgan_cli.pipeline import Upscaler

    (bench,) = evaluate.benchmark_sets([args.directory])
    hrs = [evaluate.load_hr(path) for path in bench.images]
    lrs = [PROTOCOL_CHAIN.apply(hr) for hr in hrs]
    print(f"HR photos ({bench.name}): {pattern_rms(hrs):.2f} grey levels RMS")
    models = [(name, Upscaler(name)) for name in args.models.split(",") if name]
    models += [(path, Upscaler(weights=path)) for path in args.weights]
    for name, upscaler in models:
        outputs = [upscaler.upscale(lr) for lr in lrs]
        print(f"{name}: {pattern_rms(outputs):.2f} grey levels RMS", flush=True)


if __name__ == "__main__":
    main()
