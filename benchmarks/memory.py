"""Peak memory (RSS) of ``srgan upscale`` on large synthetic photos, one fresh process each.

Each size gets a synthetic RGB PNG (smooth gradients plus grain, so neither the model nor the
PNG encoder sees a trivial image) in a temporary directory, then ``srgan upscale IN -o OUT
--quiet --report R.json`` runs with default settings; the child's peak RSS comes from
``os.wait4`` (``ru_maxrss``: that process alone, not earlier runs). Targets: <= 2.5 GB for a
2000x2000 input; growing the input should add about the difference of the uint8 output
buffers (4N x 4N x 3 bytes), shown as "expected growth". Each run takes minutes on 2 cores.
``--formats png jpeg webp tiff`` repeats each size per output format: PNG is streamed by our
own writer, the others go through Pillow, which holds the whole output as an image first.

    python benchmarks/memory.py [--sizes 2000 4000] [--formats png jpeg] [-- EXTRA OPTIONS]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

SCALE = 4
GB = 1e9
EXTENSIONS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp", "tiff": ".tif"}


def synthetic_photo(size: int, seed: int = 0) -> np.ndarray:
    """size x size x 3 uint8: per-channel gradients and a soft wave, plus Gaussian grain."""
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    y, x = np.meshgrid(ramp, ramp, indexing="ij")
    wave = 0.5 + 0.5 * np.sin(12.0 * x + 7.0 * y**2)
    base = np.stack([0.2 + 0.6 * x, 0.3 + 0.5 * y, 0.6 * wave + 0.2], axis=-1)
    grain = np.random.default_rng(seed).normal(0.0, 0.03, base.shape).astype(np.float32)
    return np.rint(np.clip(base + grain, 0.0, 1.0) * 255).astype(np.uint8)


def measure(size: int, workdir: Path, srgan: list[str], extra: list[str], fmt: str = "png") -> dict:
    """Upscale a size x size synthetic photo to ``fmt`` in a fresh process; its peak RSS and
    timings."""
    suffixes = (".png", f"_x4{EXTENSIONS[fmt]}", ".json")
    source, target, report = (workdir / f"{size}{s}" for s in suffixes)
    Image.fromarray(synthetic_photo(size)).save(source, compress_level=1)
    command = [*srgan, "upscale", str(source), "-o", str(target), "--quiet", "--report"]
    start = time.perf_counter()
    process = subprocess.Popen([*command, str(report), *extra])
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"srgan upscale exited {process.returncode} on {size}x{size}")
    run = json.loads(report.read_text())
    image = run["images"][0]
    result = {
        "format": fmt,
        "input": size,
        "output": size * SCALE,
        "precision": run["precision"],
        "tiles": image["tiles"],
        "wall_s": wall,
        "infer_s": image["infer_s"],
        "peak_rss_bytes": usage.ru_maxrss * 1024,  # Linux reports KiB
        "output_bytes": target.stat().st_size,
    }
    for path in (source, target, report):
        path.unlink()
    return result


def print_table(results: list[dict]) -> None:
    first = results[0]
    print(
        f"{'format':>6} {'input':>6} {'output':>6} {'prec':>5} {'tiles':>5} {'wall s':>7} "
        f"{'infer s':>7} {'file MB':>7} {'peak RSS GB':>11} {'growth GB':>9} {'expected GB':>11}"
    )
    for r in results:
        growth = (r["peak_rss_bytes"] - first["peak_rss_bytes"]) / GB
        expected = SCALE**2 * 3 * (r["input"] ** 2 - first["input"] ** 2) / GB
        print(
            f"{r['format']:>6} {r['input']:>6} {r['output']:>6} {r['precision']:>5} "
            f"{r['tiles']:>5} {r['wall_s']:>7.1f} {r['infer_s']:>7.1f} "
            f"{r['output_bytes'] / 1e6:>7.1f} "
            f"{r['peak_rss_bytes'] / GB:>11.2f} {growth:>9.2f} {expected:>11.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 4000], metavar="N")
    parser.add_argument(
        "--srgan",
        default=f"{shlex.quote(sys.executable)} -m srgan_cli",
        help="command that runs srgan [default: this Python's -m srgan_cli]",
    )
    parser.add_argument(
        "--formats", nargs="+", default=["png"], choices=list(EXTENSIONS), metavar="FORMAT"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("extra", nargs="*", help="options passed on to srgan upscale")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="srgan-memory-") as tmp:
        srgan = shlex.split(args.srgan)
        results = [
            measure(n, Path(tmp), srgan, args.extra, fmt)
            for n in args.sizes
            for fmt in args.formats
        ]
    print_table(results)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
