"""A rerun with nothing to do costs what ``srgan --help`` costs: no TensorFlow is loaded.

Makes ``--images`` tiny PNGs, each with an up-to-date output beside it (``<stem>_x4.png``)
and in an output folder, then times, in fresh processes, interleaved, ``--repeats`` times
each:

- ``srgan --help`` (the floor: Python, click and our CLI modules);
- ``srgan upscale DIR --update -q``: the earlier outputs beside the inputs are left out
  (not inputs), every output is up to date, so every job is skipped;
- ``srgan upscale DIR -o OUT --skip-existing -q``: every output exists.

Wall times in seconds (min and median), JSON on stdout. Other busy processes slow every
figure down. ``--src DIR`` runs another checkout's sources (PYTHONPATH) for a before/after (without
the run beside the inputs, and with no outputs there).

    python benchmarks/rerun.py [--images 100] [--repeats 5] [--src ../main/src]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_tree(root: Path, count: int, beside: bool = True) -> tuple[Path, Path]:
    """``count`` 8x8 PNGs in root/in with outputs in root/out and (``beside``) beside them,
    all newer than the inputs."""
    inputs, outputs = root / "in", root / "out"
    inputs.mkdir()
    outputs.mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
            inputs / f"p{index:03d}.png"
        )
    later = time.time() + 60
    for index in range(count):
        names = [outputs / f"p{index:03d}.png"]
        names += [inputs / f"p{index:03d}_x4.png"] if beside else []
        for output in names:
            output.write_bytes(b"an earlier output")
            os.utime(output, (later, later))
    return inputs, outputs


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--src", type=Path, default=None, help="sources to run (PYTHONPATH)")
    args = parser.parse_args()
    env = dict(os.environ, SRGAN_WORKER="off")
    if args.src is not None:
        env["PYTHONPATH"] = str(args.src.resolve())
    srgan = [sys.executable, "-m", "srgan_cli"]
    with tempfile.TemporaryDirectory(prefix="srgan-rerun-") as folder:
        # an older checkout takes the outputs beside the inputs as inputs: none there
        inputs, outputs = make_tree(Path(folder), args.images, beside=args.src is None)
        commands = {
            "help": [*srgan, "--help"],
            "update_beside": [*srgan, "upscale", str(inputs), "--update", "-q"],
            "skip_existing_to_dir": [
                *srgan,
                "upscale",
                str(inputs),
                "-o",
                str(outputs),
                "--skip-existing",
                "-q",
            ],
        }
        if args.src is not None:  # an older checkout may lack --update
            commands = {k: v for k, v in commands.items() if k != "update_beside"}
        for argv in commands.values():
            timed(argv, env)  # warm-up: file caches
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, argv in commands.items():
                times[name].append(timed(argv, env))
    result = {
        "images": args.images,
        "repeats": args.repeats,
        "src": None if args.src is None else str(args.src),
        **{
            name: {"min_s": round(min(t), 3), "median_s": round(statistics.median(t), 3)}
            for name, t in times.items()
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
