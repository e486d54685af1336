"""Peak activation memory per input pixel of a split network x4: whole, trunk alone, split.

``split.SplitNetwork`` runs a network's trunk on a whole tile and its upsampler (RRDBNet: 2x
and 4x stages, conv_hr, conv_last; SRResNet and SeedSRGAN: the sub-pixel stages after
``long_skip`` with the fast tail) on row strips; ``tiling.PEAK_BYTES_PER_PX`` sizes tiles by
the result. This measures what that table holds: for each mode, precision and input size, a
fresh process builds the real-size network (``--arch``: RRDBNet 23 blocks, 64 feat, growth
32, random weights as ``arch_memory.py`` writes them; SRResNet 16 blocks, 64 ch, as shipped,
random init; SeedSRGAN 16 blocks, 64 ch, random weights), as ``pipeline.inference_function``
prepares it (``model.for_inference`` for the last two), calls it once on a 16x16 corner
(tracing, one-off allocations), resets the kernel's peak-RSS mark (``/proc/self/clear_refs``),
calls it at the size, and reports the peak RSS growth of that call over the RSS before it,
per input pixel. (A second call at the same size would reuse the first's freed memory and
show almost no growth.)

- ``whole``: ``predict_on_batch`` of the whole (for_inference) network, as the pipeline ran
  it before.
- ``trunk``: the trunk alone (input -> LR features), the floor for any strip count.
- ``split``: ``SplitNetwork`` with ``--strips`` strips, as the pipeline runs it now.

    python benchmarks/split_memory.py [--arch SRResNet] [--sizes 128 192]
        [--precisions bf16 fp32] [--strips 4]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parents[1] / "tests"))
from arch_memory import rrdbnet_state  # benchmarks/arch_memory.py

MODES = ("whole", "trunk", "split")
ARCHS = ("RRDBNet", "SRResNet", "SeedSRGAN")


def _rss_kib() -> dict[str, int]:
    """This process's current and peak resident set (VmRSS, VmHWM), KiB."""
    status = Path("/proc/self/status").read_text()
    return {k: int(re.search(rf"{k}:\s+(\d+)", status).group(1)) for k in ("VmRSS", "VmHWM")}


def _network(arch: str, policy: str | None):
    """The real-size ``arch`` network (random weights) and its spec, as the pipeline runs it."""
    from srgan_cli import archs
    from srgan_cli.model import GeneratorConfig, build_generator, for_inference

    if arch == "RRDBNet":
        return archs.convert(rrdbnet_state(), policy)
    if arch == "SRResNet":
        from srgan_cli.archs.srresnet import spec_for

        return for_inference(build_generator(dtype_policy=policy)), spec_for(GeneratorConfig())
    from conftest import seed_variables  # tests/conftest.py: the seed's variable names

    model, spec = archs.convert(seed_variables(blocks=16, channels=64, stages=2), policy)
    return for_inference(model), spec


def _predict(arch: str, mode: str, precision: str, strips: int):
    """The callable measured for ``mode``: float32 NHWC in, output (or features) out."""
    from srgan_cli import split

    policy = "mixed_bfloat16" if precision == "bf16" else None
    model, spec = _network(arch, policy)
    if mode == "whole":
        return lambda batch: np.asarray(model.predict_on_batch(batch), dtype=np.float32)
    network = split.for_arch(model, spec, strips)
    assert isinstance(network, split.SplitNetwork)
    trunk = network.graphs[0]
    return network if mode == "split" else lambda batch: trunk(batch).numpy()


def child(arch: str, mode: str, precision: str, size: int, strips: int) -> dict:
    """One measurement in this (fresh) process: see the module docstring."""
    predict = _predict(arch, mode, precision, strips)
    batch = np.random.default_rng(0).random((1, size, size, 3), dtype=np.float32)
    predict(batch[:, :16, :16])  # warm-up: tracing, one-off allocations
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    before = _rss_kib()["VmRSS"]
    result = predict(batch)
    growth = (_rss_kib()["VmHWM"] - before) * 1024
    return {
        "arch": arch,
        "mode": mode,
        "precision": precision,
        "size": size,
        "strips": strips if mode == "split" else None,
        "output_shape": list(result.shape),
        "growth_bytes": growth,
        "kb_per_px": growth / size**2 / 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 192], metavar="N")
    parser.add_argument("--precisions", nargs="+", default=["bf16", "fp32"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--strips", type=int, default=None, help="default: split.STRIPS")
    parser.add_argument("--arch", default="RRDBNet", choices=ARCHS)
    parser.add_argument("--child", nargs=4, metavar=("MODE", "PREC", "SIZE", "STRIPS"))
    args = parser.parse_args()
    if args.child:
        mode, precision, size, strips = args.child
        print(json.dumps(child(args.arch, mode, precision, int(size), int(strips))))
        return
    from srgan_cli.split import STRIPS

    strips = args.strips or STRIPS
    print(f"{args.arch}, load (1 min): {os.getloadavg()[0]:.2f}", flush=True)
    print(f"{'mode':>6} {'prec':>5} {'size':>5} {'KB/px':>6}", flush=True)
    for precision in args.precisions:
        for size in args.sizes:
            for mode in args.modes:
                command = [sys.executable, __file__, "--arch", args.arch, "--child", mode]
                command += [precision, str(size)]
                done = subprocess.run([*command, str(strips)], capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(done.stderr[-2000:])
                run = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"{mode:>6} {precision:>5} {size:>5} {run['kb_per_px']:>6.2f}", flush=True)
    print(f"load (1 min): {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
