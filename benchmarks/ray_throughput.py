"""Images per second: one ``srgan upscale`` process vs the same command with ``--ray local``.

Each configuration upscales the same folder of synthetic photos in a fresh process. The
steady rate comes from the outputs' modification times (each is stamped when its atomic
write lands): (images - 1) / (last - first). What the wall time adds on top of images / rate
is the fixed cost every run pays once (Python and TensorFlow imports, starting Ray, each
actor loading the model). Configurations run interleaved, ``--repeats`` times, in one
invocation, so their ratios share the machine's conditions; the best repeat is shown.

    python benchmarks/ray_throughput.py [--size 128] [--count 24] [--repeats 2] [-- EXTRA]

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
    """One fresh ``srgan upscale`` process: wall seconds, steady images/s, its report."""
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
    outputs = [path.stat() for path in out.rglob("*") if path.is_file()]
    stamps = sorted(stat.st_mtime for stat in outputs)
    return {
        "wall_s": wall,
        "rate": (len(stamps) - 1) / (stamps[-1] - stamps[0]),
        "bytes": sum(stat.st_size for stat in outputs),
        "report": json.loads(report.read_text()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="input side in pixels")
    parser.add_argument("--count", type=int, default=24, help="images per run")
    parser.add_argument("--repeats", type=int, default=2, help="runs per configuration")
    parser.add_argument("extra", nargs="*", help="more srgan upscale options, after --")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        make_photos(Path(tmp, "in"), args.count, args.size)
        for _ in range(args.repeats):
            for name, options in configurations(cores).items():
                result = timed_run(Path(tmp, "in"), Path(tmp), options, args.extra)
                runs.setdefault(name, []).append(result)
                print(
                    f"{name:34s} {result['wall_s']:6.1f} s  {result['rate']:5.2f} img/s", flush=True
                )
    summarise(runs, args.count, args.size, cores)


def summarise(runs: dict[str, list[dict]], count: int, size: int, cores: int) -> None:
    """Per configuration, its best repeat: steady img/s, ratio, fixed cost, model time."""
    repeats = len(next(iter(runs.values())))
    print(f"\n{count} images of {size}x{size}, {cores} cores, best of {repeats}")
    header = f"{'configuration':34s} {'img/s':>6s} {'vs 1 proc':>9s} {'fixed s':>7s}"
    print(f"{header} {'wall s':>6s} {'infer s/img':>11s} {'B/out px':>8s}")
    baseline = None
    for name, results in runs.items():
        best = max(results, key=lambda result: result["rate"])
        baseline = baseline or best["rate"]
        rows = best["report"]["images"]
        infer = sum(row["infer_s"] for row in rows) / len(rows)  # per image, per model copy
        pixels = sum(row["out_size"][0] * row["out_size"][1] for row in rows)
        fixed = best["wall_s"] - count / best["rate"]
        line = f"{name:34s} {best['rate']:6.2f} {best['rate'] / baseline:8.2f}x {fixed:7.1f}"
        print(f"{line} {best['wall_s']:6.1f} {infer:11.3f} {best['bytes'] / pixels:8.2f}")


if __name__ == "__main__":
    main()
