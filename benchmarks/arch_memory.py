"""Imported RRDBNet x4 (23 blocks, 64 feat, growth 32): peak RSS on a big input, tiled vs whole.

Issue 27's target: a 2000x2000 input through RRDBNet x4 stays under 2.5 GB peak RSS, with
output equal to the whole-image output within 1 grey level. No real file is needed: random
weights with BasicSR's init (dense-block convs kaiming x0.1, the others PyTorch's default)
are written as a BasicSR-layout ``.safetensors``, which ``srgan upscale --weights`` imports
like any downloaded model (converted once into a private cache, ``$SRGAN_CACHE_DIR``).
``conv_last`` is scaled by 0.25 and biased by 0.3 so the outputs sit mid-range (mean ~0.5,
std ~0.1) rather than saturating, and the tiled-vs-whole comparison is not flattered by
clipping (the step-1 result reports the saturated fraction).

1. Tiled vs whole: a ``--check`` px synthetic photo upscaled in one tile (``tile=0``) and in
   ``--check-tile`` px tiles (default pad) by ``Upscaler`` in this process; max abs
   difference in grey levels. This also fills the cache, so step 2 times inference only.
2. Memory: ``srgan upscale`` on ``--size`` px synthetic photos in a fresh process, default
   settings (automatic tiles, precision auto); its peak RSS from ``os.wait4`` and wall time
   (``benchmarks/memory.py``'s ``measure``). Minutes per size on 2 cores. Printed with it:
   the tiles the pipeline plans and the pixels they put through the network (tile context
   included), and what ``--before`` bytes per pixel (the whole network's table value before
   ``split``) planned.

    python benchmarks/arch_memory.py [--size 2000] [--check 200] [--check-tile 48]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from memory import GB, measure, synthetic_photo  # benchmarks/memory.py

if TYPE_CHECKING:
    from srgan_cli.pipeline import Upscaler

NUM_FEAT, NUM_BLOCK, GROWTH, SCALE = 64, 23, 32, 4


def _conv(rng: np.random.Generator, out_ch: int, in_ch: int, dense: bool) -> list[np.ndarray]:
    """OIHW weight and bias: BasicSR's dense-block init (kaiming normal x0.1, zero bias) or
    PyTorch's default Conv2d init (uniform +-1/sqrt(fan_in))."""
    fan_in = in_ch * 9
    if dense:
        weight = rng.normal(0.0, 0.1 * np.sqrt(2.0 / fan_in), (out_ch, in_ch, 3, 3))
        return [weight.astype(np.float32), np.zeros(out_ch, np.float32)]
    bound = 1.0 / np.sqrt(fan_in)
    weight = rng.uniform(-bound, bound, (out_ch, in_ch, 3, 3))
    return [weight.astype(np.float32), rng.uniform(-bound, bound, out_ch).astype(np.float32)]


def rrdbnet_state(seed: int = 0) -> dict[str, np.ndarray]:
    """A BasicSR-layout RRDBNet x4 state dict with random weights (see the module docstring)."""
    rng = np.random.default_rng(seed)
    convs = {"conv_first": _conv(rng, NUM_FEAT, 3, False)}
    for b in range(NUM_BLOCK):
        for r in (1, 2, 3):
            for c in range(1, 6):
                out_ch = NUM_FEAT if c == 5 else GROWTH
                convs[f"body.{b}.rdb{r}.conv{c}"] = _conv(
                    rng, out_ch, NUM_FEAT + (c - 1) * GROWTH, True
                )
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        convs[name] = _conv(rng, NUM_FEAT, NUM_FEAT, False)
    convs["conv_last"] = _conv(rng, 3, NUM_FEAT, False)
    weight, _ = convs["conv_last"]
    convs["conv_last"] = [weight * np.float32(0.25), np.full(3, 0.3, np.float32)]
    return {
        f"{name}.{kind}": array
        for name, pair in convs.items()
        for kind, array in zip(("weight", "bias"), pair, strict=True)
    }


def tiled_vs_whole(path: Path, size: int, tile: int) -> dict:
    """Max abs difference (grey levels) between a tiled and a whole-image upscale."""
    from srgan_cli.pipeline import Upscaler

    image = synthetic_photo(size, seed=1)
    whole_upscaler = Upscaler(weights=path, tile=0)
    start = time.perf_counter()
    whole = whole_upscaler.upscale(image)
    whole_s = time.perf_counter() - start
    tiled_upscaler = Upscaler(weights=path, tile=tile)
    start = time.perf_counter()
    tiled = tiled_upscaler.upscale(image)
    tiled_s = time.perf_counter() - start
    diff = np.abs(tiled.astype(np.int16) - whole.astype(np.int16))
    return {
        "input": size,
        "tile": tile,
        "tiles": tiled_upscaler.tiles_for(size, size),
        "pad": tiled_upscaler.pad,
        "precision": tiled_upscaler.precision_used,
        "max_diff": int(diff.max()),
        "pixels_differing": int((diff > 0).any(axis=-1).sum()),
        "output_mean": float(whole.mean()),
        "output_std": float(whole.std()),
        "saturated_fraction": float(((whole == 0) | (whole == 255)).mean()),
        "whole_s": whole_s,
        "tiled_s": tiled_s,
    }


def planned(upscaler: Upscaler, size: int, bytes_per_px: float | None = None) -> dict:
    """The tiles ``upscaler`` plans for a ``size`` px square (at ``bytes_per_px`` if given)
    and the input pixels they put through the network, context included."""
    from srgan_cli.tiling import plan_tiles

    upscaler = copy.copy(upscaler)  # shares the model; only the estimate changes
    if bytes_per_px is not None:
        upscaler.bytes_per_px = bytes_per_px
    tile = upscaler.tile_size(size, size)
    tiles = plan_tiles(size, size, tile, upscaler.pad)
    network_px = sum((t.py1 - t.py0) * (t.px1 - t.px0) for t in tiles)
    return {
        "bytes_per_px": upscaler.bytes_per_px,
        "tile": tile,
        "tiles": len(tiles),
        "network_px": network_px,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--size", type=int, nargs="*", default=[2000], metavar="N")
    parser.add_argument("--check", type=int, default=200, metavar="N", help="0 = skip step 1")
    parser.add_argument("--check-tile", type=int, default=48, metavar="T")
    parser.add_argument("--before", type=float, default=15_000, metavar="BYTES")
    parser.add_argument(
        "--srgan",
        default=f"{shlex.quote(sys.executable)} -m srgan_cli",
        help="command that runs srgan [default: this Python's -m srgan_cli]",
    )
    args = parser.parse_args()

    from safetensors.numpy import save_file

    with tempfile.TemporaryDirectory(prefix="srgan-arch-memory-") as tmp:
        os.environ["SRGAN_CACHE_DIR"] = str(Path(tmp) / "cache")
        path = Path(tmp) / "rrdbnet_x4_random.safetensors"
        save_file(rrdbnet_state(), str(path))
        results: dict = {"load_1min_before": os.getloadavg()[0]}
        if args.check:
            results["tiled_vs_whole"] = tiled_vs_whole(path, args.check, args.check_tile)
            print(json.dumps(results["tiled_vs_whole"]), flush=True)
        results["memory"] = []
        from srgan_cli.pipeline import Upscaler

        upscaler = Upscaler(weights=path)
        for size in args.size:
            plan = {"now": planned(upscaler, size)}
            plan["before"] = planned(upscaler, size, args.before)
            run = measure(size, Path(tmp), shlex.split(args.srgan), ["--weights", str(path)])
            run["peak_rss_gb"] = run["peak_rss_bytes"] / GB
            run["planned"] = plan
            results["memory"].append(run)
            print(json.dumps(run), flush=True)
        results["load_1min_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
