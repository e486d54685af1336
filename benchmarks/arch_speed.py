"""Imported architectures (RRDBNet, SRVGGNetCompact, MSRResNet, SeedSRGAN): ours vs PyTorch.

For each network at its common size, random weights are drawn as a PyTorch module (the
references of ``tests/make_arch_fixtures.py``: spandrel's RRDBNet and SRVGGNetCompact, BasicSR's
MSRResNet; for the seed's TF1 generator, which has no PyTorch original, its graph as written in
``benchmarks/torch_reference.py``, BatchNorm unfolded, fed variables with the checkpoint's
names), its state dict goes through our registry (``archs.convert``, fp32 and the
pipeline's ``mixed_bfloat16``), and all contenders are timed in ONE process, interleaved: each
round runs ours fp32, torch fp32 (NCHW and channels_last), ours bf16, torch bf16 autocast (both
formats) once each, so a busy machine slows every side alike. Ours runs the way the pipeline
runs it (``pipeline.inference_function`` on a float32 NHWC batch); torch runs
like ``benchmarks/torch_reference.py`` (``inference_mode``, NCHW float32 input). One untimed
warm-up each, then --repeats rounds; rates use the fastest round, medians are kept too.
Ratios compare ours with the faster torch memory format. The 1-minute load average is
recorded before and after.

The roofline: each network's convolution FLOPs per input pixel are counted on the torch
reference (forward hooks on every ``Conv2d``), and the same process measures the machine's
fp32 matrix-multiply peak (the best of TensorFlow's, torch's and numpy's 4096^3 sgemm), so
each rate is also a share of that peak, next to the share that 1.2x torch would need.

Needs torch (CPU) and spandrel (``pip install --no-deps spandrel``); neither is a dependency.

    python benchmarks/arch_speed.py [--arch rrdbnet compact msrresnet] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

FIXTURE_SCRIPT = Path(__file__).parents[1] / "tests" / "make_arch_fixtures.py"
CONFTEST = Path(__file__).parents[1] / "tests" / "conftest.py"
TORCH_REFERENCE = Path(__file__).with_name("torch_reference.py")
TARGET_FP32 = 1.2
"""Goal: ours fp32 >= 1.2x the faster torch fp32 (as SRResNet does, BENCHMARKS.md)."""

GAP_S = 0.3

# name -> (label, reference builder name, builder args, default LR input side)
NETWORKS = {
    "rrdbnet": ("RRDBNet 23 blocks, 64 feat, growth 32, x4", "rrdbnet", (4, 64, 23, 32), 64),
    "compact": ("SRVGGNetCompact 64 feat, 32 convs, x4", "srvgg", (4, 64, 32), 128),
    "msrresnet": ("MSRResNet 16 blocks, 64 feat, x4", "msrresnet", (4, 64, 16), 128),
    "seed": ("SeedSRGAN 16 blocks, 64 feat, x4", "seed_srgan", (16, 64, 2), 128),
}


def _load(name: str, path: Path):
    """A script beside the package (tests/, benchmarks/) as a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _references():
    """tests/make_arch_fixtures.py as a module (it imports torch and spandrel's arch code)."""
    return _load("make_arch_fixtures", FIXTURE_SCRIPT)


def seed_srgan(num_block: int, num_feat: int, stages: int, seed: int = 0):
    """(torch module, variables): the seed's graph on random weights with its TF1 names
    (``tests/conftest.py``'s ``seed_variables``: BatchNorm statistics far from identity)."""
    variables = _load("conftest", CONFTEST).seed_variables(num_block, num_feat, stages, seed)
    graph = _load("torch_reference", TORCH_REFERENCE).SeedGraph(variables, num_block, stages)
    return graph, variables


def ours(state: dict[str, np.ndarray], policy: str | None) -> Callable[[np.ndarray], np.ndarray]:
    """Our converted model, run as every front end runs it (``pipeline.inference_function``:
    RRDBNet's tail in row strips, a 9x9 sub-pixel tail as a 5x5 conv)."""
    from srgan_cli import archs
    from srgan_cli.pipeline import inference_function

    model, spec = archs.convert(state, policy)
    return inference_function(model, spec)


def theirs(module, precision: str, memory_format: str) -> Callable[[np.ndarray], np.ndarray]:
    """The torch module as ``torch_reference.measure`` runs it (bf16 = CPU autocast)."""
    import torch

    layout = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
    module = copy.deepcopy(module).to(memory_format=layout)  # .to() works in place

    def call(batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous(memory_format=layout)
        autocast = (
            torch.autocast("cpu", dtype=torch.bfloat16)
            if precision == "bf16"
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            return module(x).float().numpy()

    return call


def conv_flops_per_px(module, size: int) -> float:
    """Convolution FLOPs (2 per multiply-add) per input pixel, counted by forward hooks."""
    import torch

    total = [0]

    def count(conv, _inputs, output) -> None:
        kh, kw = conv.kernel_size
        per_out = 2 * kh * kw * conv.in_channels // conv.groups * conv.out_channels
        total[0] += per_out * output.shape[-2] * output.shape[-1]

    hooks = [
        m.register_forward_hook(count) for m in module.modules() if isinstance(m, torch.nn.Conv2d)
    ]
    with torch.inference_mode():
        module(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    return total[0] / (size * size)


def sgemm_peak(n: int = 4096, repeats: int = 5) -> dict[str, float]:
    """GFLOP/s of an n^3 float32 matmul in TensorFlow, torch and numpy: the best of each."""
    import tensorflow as tf
    import torch

    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    tf_a, torch_a = tf.constant(a), torch.from_numpy(a)
    calls = {
        "tensorflow": lambda _: tf.linalg.matmul(tf_a, tf_a).numpy(),
        "torch": lambda _: torch.mm(torch_a, torch_a),
        "numpy": lambda _: a @ a,
    }
    return {
        name: 2 * n**3 / min(interleaved({name: call}, a, repeats, gap=GAP_S)[name]) / 1e9
        for name, call in calls.items()
    }


def interleaved(
    contenders: dict[str, Callable[[np.ndarray], object]],
    batch: np.ndarray,
    repeats: int,
    gap: float = GAP_S,
) -> dict[str, list[float]]:
    """Seconds per call of each contender: one untimed warm-up each, then ``repeats`` rounds.

    ``gap`` seconds of sleep before each timed call let the previous contender's worker
    threads (OpenMP and Eigen both spin a while after their work) go idle first.
    """
    for call in contenders.values():
        call(batch)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, call in contenders.items():
            time.sleep(gap)
            start = time.perf_counter()
            call(batch)
            times[name].append(time.perf_counter() - start)
    return times


def bench_network(ref, key: str, size: int, repeats: int) -> dict:
    """Build one network (torch + ours, fp32 + bf16), time all contenders, summarise."""
    label, builder, args, _ = NETWORKS[key]
    build = seed_srgan if builder == "seed_srgan" else getattr(ref, builder)
    module, state = build(*args, seed=0)
    numpy_state = {
        k: np.asarray(v.detach().float() if hasattr(v, "detach") else v) for k, v in state.items()
    }
    flops = conv_flops_per_px(module, size)
    contenders = {
        "ours fp32": ours(numpy_state, None),
        "torch fp32 nchw": theirs(module, "fp32", "nchw"),
        "torch fp32 channels_last": theirs(module, "fp32", "channels_last"),
        "ours bf16": ours(numpy_state, "mixed_bfloat16"),
        "torch bf16 nchw": theirs(module, "bf16", "nchw"),
        "torch bf16 channels_last": theirs(module, "bf16", "channels_last"),
    }
    batch = np.random.default_rng(0).random((1, size, size, 3), dtype=np.float32)
    reference = contenders["torch fp32 nchw"](batch).transpose(0, 2, 3, 1)
    check = float(np.abs(contenders["ours fp32"](batch) - reference).max())
    load_before = os.getloadavg()[0]
    times = interleaved(contenders, batch, repeats)
    load_after = os.getloadavg()[0]
    runs = {
        name: {
            "seconds_best": min(t),
            "seconds_median": statistics.median(t),
            "input_px_per_s": size * size / min(t),
            "input_px_per_s_median": size * size / statistics.median(t),
        }
        for name, t in times.items()
    }
    return {
        "network": label,
        "input_size": [size, size],
        "conv_flops_per_input_px": flops,
        "max_abs_diff_fp32": check,
        "load_1min": [load_before, load_after],
        "runs": runs,
        "comparison": {p: _compare(runs, p) for p in ("fp32", "bf16")},
    }


def _compare(runs: dict, precision: str) -> dict:
    """Ours against the faster torch memory format, on best and on median times."""
    fmt = max(
        ("nchw", "channels_last"), key=lambda f: runs[f"torch {precision} {f}"]["input_px_per_s"]
    )
    mine, other = runs[f"ours {precision}"], runs[f"torch {precision} {fmt}"]
    return {
        "ours_px_per_s": mine["input_px_per_s"],
        "torch_px_per_s": other["input_px_per_s"],
        "torch_memory_format": fmt,
        "ratio": mine["input_px_per_s"] / other["input_px_per_s"],
        "ratio_median": mine["input_px_per_s_median"] / other["input_px_per_s_median"],
    }


def roofline(report: dict) -> str:
    """fp32 GFLOP/s of ours and torch per network, as shares of the measured sgemm peak."""
    peak = max(report["sgemm_gflops"].values())
    lines = [
        f"fp32 sgemm peak (best of {', '.join(report['sgemm_gflops'])}): {peak:.0f} GFLOP/s",
        "| network | conv MFLOP per input px | ours fp32 GFLOP/s | torch fp32 GFLOP/s "
        "| 1.2x torch would need |",
        "|---|---|---|---|---|",
    ]
    for r in report["networks"]:
        flops, c = r["conv_flops_per_input_px"], r["comparison"]["fp32"]
        rates = [flops * c["ours_px_per_s"] / 1e9, flops * c["torch_px_per_s"] / 1e9]
        rates.append(report["target_fp32"] * rates[1])
        cells = [r["network"], f"{flops / 1e6:.1f}"]
        cells += [f"{g:.0f} ({g / peak:.0%} of peak)" for g in rates]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    """One row per network: px/s and ratios, fp32 and bf16."""
    lines = [
        "| network | LR input | ours fp32 px/s | torch fp32 px/s | ratio (median) "
        "| ours bf16 px/s | torch bf16 px/s | ratio (median) | load 1 min |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["networks"]:
        f, b = r["comparison"]["fp32"], r["comparison"]["bf16"]
        cells = [r["network"], "x".join(map(str, r["input_size"]))]
        for c in (f, b):
            cells += [
                f"{c['ours_px_per_s']:,.0f}",
                f"{c['torch_px_per_s']:,.0f} ({c['torch_memory_format']})",
                f"{c['ratio']:.2f}x ({c['ratio_median']:.2f}x)",
            ]
        cells.append("{:.1f} / {:.1f}".format(*r["load_1min"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--arch", choices=list(NETWORKS), nargs="+", default=list(NETWORKS))
    parser.add_argument("--size", type=int, help="LR input side for every network")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds after a warm-up")
    parser.add_argument("--threads", type=int, default=2, help="TF intra-op and torch threads")
    parser.add_argument("--json", type=Path, help="also write the full report here")
    args = parser.parse_args()

    import tensorflow as tf
    import torch

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    torch.set_num_threads(args.threads)
    ref = _references()
    peak_before = sgemm_peak()
    networks = []
    for key in args.arch:
        result = bench_network(ref, key, args.size or NETWORKS[key][3], args.repeats)
        networks.append(result)
        print(
            f"{result['network']}: fp32 {result['comparison']['fp32']['ratio']:.2f}x, "
            f"bf16 {result['comparison']['bf16']['ratio']:.2f}x",
            flush=True,
        )
    report = {
        "tensorflow": tf.__version__,
        "torch": torch.__version__,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "repeats": args.repeats,
        "target_fp32": TARGET_FP32,
        "networks": networks,
    }
    peak_after = sgemm_peak()
    report["sgemm_gflops"] = {k: max(peak_before[k], peak_after[k]) for k in peak_before}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    print(roofline(report))


if __name__ == "__main__":
    main()
