"""One-file-per-call speed with the warm worker (``srgan worker``) against without it.

(a) A warm per-file call: ``srgan upscale IN -o OUT`` on a 64x64 image while a worker holds
    the model, against the same call with ``--no-worker``; the median of ``--repeats`` runs
    each, interleaved (target: ratio <= 0.1).
(b) A Makefile: ``make -j2`` over 16 images of 128x128 with the pattern rule
    ``%_x4.png: %.png ; srgan upscale $< -o $@`` and ``export SRGAN_WORKER=auto`` (no worker
    running at the start: the first call starts it), against one batch call
    ``srgan upscale DIR -o OUT`` on the same images (target: ratio <= 1.5).

Everything runs in fresh processes with the default model, in a private runtime directory
(a worker of your own is neither used nor stopped). Wall times, seconds; JSON on stdout.

    python benchmarks/worker.py [--repeats 5] [--images 16] [--model srgan]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

_ENTRY = Path(sys.executable).with_name("srgan")
SRGAN = [str(_ENTRY)] if _ENTRY.exists() else [sys.executable, "-m", "srgan_cli"]
"""The installed entry script, as a Makefile calls it (a pyenv shim in front of it would add
~0.2 s to every call, with or without a worker)."""
MAKEFILE = """\
export SRGAN_WORKER=auto
%_x4.png: %.png ; {srgan} upscale $< -o $@ {model_args}
all: $(patsubst %.png,%_x4.png,$(filter-out %_x4.png,$(wildcard *.png)))
"""


def photo(size: int, seed: int) -> np.ndarray:
    """size x size x 3 uint8: gradients plus grain (neither flat nor pure noise)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    y, x = np.meshgrid(ramp, ramp, indexing="ij")
    base = np.stack([0.2 + 0.6 * x, 0.3 + 0.5 * y, 0.5 + 0.3 * np.sin(9 * x * y)], axis=-1)
    noisy = base + rng.normal(0.0, 0.05, base.shape)
    return (np.clip(noisy, 0.0, 1.0) * 255).round().astype(np.uint8)


def timed(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def per_file_calls(work: Path, env: dict[str, str], model_args: list[str], repeats: int) -> dict:
    """(a): interleaved warm-worker and --no-worker calls on one 64x64 image."""
    source = work / "small.png"
    Image.fromarray(photo(64, 0)).save(source)
    subprocess.run(
        [*SRGAN, "worker", "start", *model_args], env=env, check=True, capture_output=True
    )
    out = work / "small_out.png"
    base = [*SRGAN, "upscale", str(source), "-o", str(out), "--overwrite", "-q", *model_args]
    timed(base, env)  # the worker's first call of this size is not "warm"
    warm, cold = [], []
    for _ in range(repeats):
        warm.append(timed(base, env))
        cold.append(timed([*base, "--no-worker"], env))
    subprocess.run([*SRGAN, "worker", "stop"], env=env, check=True, capture_output=True)
    return {
        "worker_s": warm,
        "no_worker_s": cold,
        "median_worker_s": statistics.median(warm),
        "median_no_worker_s": statistics.median(cold),
        "ratio": statistics.median(warm) / statistics.median(cold),
    }


def makefile_vs_batch(work: Path, env: dict[str, str], model_args: list[str], count: int) -> dict:
    """(b): make -j2 with SRGAN_WORKER=auto (worker start included) vs one batch call."""
    images = work / "make"
    images.mkdir()
    for index in range(count):
        Image.fromarray(photo(128, index + 1)).save(images / f"img{index:02d}.png")
    batch_in = work / "batch_in"
    shutil.copytree(images, batch_in)
    batch_s = timed(
        [*SRGAN, "upscale", str(batch_in), "-o", str(work / "batch_out"), "-q", *model_args], env
    )
    srgan = " ".join(SRGAN)
    (images / "Makefile").write_text(MAKEFILE.format(srgan=srgan, model_args=" ".join(model_args)))
    make_s = timed(["make", "-j2", "-s"], env, cwd=images)
    made = sorted(images.glob("*_x4.png"))
    identical = all(
        made_file.read_bytes()
        == (work / "batch_out" / made_file.name.replace("_x4", "")).read_bytes()
        for made_file in made
    )
    subprocess.run([*SRGAN, "worker", "stop"], env=env, check=True, capture_output=True)
    return {
        "images": count,
        "outputs": len(made),
        "identical_to_batch": identical,
        "make_j2_s": make_s,
        "batch_s": batch_s,
        "ratio": make_s / batch_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--model", default=None, help="shipped model (default: srgan's default)")
    args = parser.parse_args()
    model_args = [] if args.model is None else ["--model", args.model]
    with tempfile.TemporaryDirectory(prefix="srgan-bench-") as folder:
        work = Path(folder)
        runtime = work / "run"
        runtime.mkdir(mode=0o700)
        env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
        env.pop("SRGAN_WORKER", None)
        started = time.perf_counter()
        results = {
            "per_file_64": per_file_calls(work, env, model_args, args.repeats),
            "make_j2_128": makefile_vs_batch(work, env, model_args, args.images),
        }
        results["measured_window_s"] = time.perf_counter() - started
    json.dump(results, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
