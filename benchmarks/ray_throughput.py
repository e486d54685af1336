"""Images per second: one ``srgan upscale`` process vs the same command with ``--ray local``.

Each configuration upscales a folder of synthetic photos in a fresh process, twice: with a
few images and with many. The difference cancels what every run pays once (Python and
TensorFlow imports, starting Ray, each actor loading the model), so it gives the steady
throughput a long run approaches; the intercept is that fixed cost. All configurations run
interleaved in one invocation, so their ratios share the machine's conditions.

    python benchmarks/ray_throughput.py [--size 96] [--counts 4 24] [-- EXTRA SRGAN OPTIONS]

Configurations: one process (TensorFlow uses every core), ``--ray local`` with its default
pool (per node: CPUs - 1 actors of 1 CPU) and ``--ray local --ray-actors <cores>`` (one
single-threaded actor per core).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from memory import synthetic_photo  # benchmarks/memory.py: gradients + grain, not trivial
from PIL import Image


def configurations(cores: int) -> dict[str, list[str]]:
    return {
        "1 process": [],
        "--ray local (default pool)": ["--ray", "local"],
        f"--ray local --ray-actors {cores}": ["--ray", "local", "--ray-actors", str(cores)],
    }


def make_photos(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True)
    for index in range(count):
        Image.fromarray(synthetic_photo(size, seed=index)).save(folder / f"p{index:03d}.png")


def timed_run(source: Path, workdir: Path, options: list[str], extra: list[str]) -> dict:
    """One fresh ``srgan upscale`` process: wall seconds, its report, bytes written."""
    out, report = workdir / "out", workdir / "report.json"
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "srgan_cli", "upscale", str(source), "-o", str(out)]
    start = time.perf_counter()
    subprocess.run(
        [*command, "-q", "--report", str(report), *options, *extra],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    written = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    return {"wall_s": wall, "report": json.loads(report.read_text()), "bytes": written}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=96, help="input side in pixels")
    parser.add_argument("--counts", type=int, nargs=2, default=[4, 24], metavar=("FEW", "MANY"))
    parser.add_argument("extra", nargs="*", help="more srgan upscale options, after --")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    few, many = args.counts
    runs: dict[str, dict[int, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in (few, many):
            make_photos(Path(tmp, f"in{count}"), count, args.size)
        for count in (few, many):
            for name, options in configurations(cores).items():
                result = timed_run(Path(tmp, f"in{count}"), Path(tmp), options, args.extra)
                runs.setdefault(name, {})[count] = result
                print(f"{name:34s} {count:3d} images  {result['wall_s']:6.1f} s", flush=True)
    summarise(runs, few, many, args.size, cores)


def summarise(runs: dict[str, dict[int, dict]], few: int, many: int, size: int, cores: int) -> None:
    """Steady images/s = extra images / extra seconds; fixed cost = the intercept."""
    print(f"\n{size}x{size} inputs, {cores} cores, counts {few} and {many}")
    header = f"{'configuration':34s} {'img/s':>7s} {'vs 1 proc':>9s} {'fixed s':>8s}"
    print(f"{header} {'wall@many':>9s} {'infer s/img':>11s} {'B/out px':>8s}")
    baseline = None
    for name, by_count in runs.items():
        extra_s = by_count[many]["wall_s"] - by_count[few]["wall_s"]
        rate = (many - few) / extra_s
        fixed = by_count[few]["wall_s"] - few / rate
        baseline = baseline or rate
        rows = by_count[many]["report"]["images"]
        infer = sum(row["infer_s"] for row in rows) / len(rows)  # per image, per model copy
        pixels = sum(row["out_size"][0] * row["out_size"][1] for row in rows)
        per_pixel = by_count[many]["bytes"] / pixels
        line = f"{name:34s} {rate:7.2f} {rate / baseline:8.2f}x {fixed:8.1f}"
        print(f"{line} {by_count[many]['wall_s']:8.1f}s {infer:11.3f} {per_pixel:8.2f}")


if __name__ == "__main__":
    main()
