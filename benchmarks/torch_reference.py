"""PyTorch reference for ``srgan bench``: the same generator in PyTorch, timed the same way.

SRResNet x4 as in ``srgan_cli.model.build_generator``: 9x9 head conv + PReLU, 16 residual
blocks (conv3-PReLU-conv3, no batch norm), conv3 + long skip, two x2 pixel-shuffle stages
(conv3 to 4x channels, shuffle, PReLU), 9x9 tail conv. Random weights: speed does not depend
on them. Timed like ``srgan bench``: one untimed warm-up, then the fastest of --repeats runs
(median shown too), under ``torch.inference_mode``; bf16 is ``torch.autocast("cpu",
dtype=torch.bfloat16)``, which (unlike our Keras policy) also runs the 9x9 head and tail in
bf16. Both memory formats are timed, NCHW (PyTorch's default) and channels_last.

torch is not a dependency of srgan: ``pip install torch==2.13.0`` (a CPU build), then
``python benchmarks/torch_reference.py [--size 128] [--threads 2] [--json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16")
FORMATS = ("nchw", "channels_last")


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.prelu = nn.PReLU(channels, init=0.25)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.prelu(self.conv1(x)))


class SRResNet(nn.Module):
    """x4 generator; input RGB in [0, 1], NCHW; same layers as ``build_generator``."""

    def __init__(self, blocks: int = 16, channels: int = 64) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(3, channels, 9, padding=4), nn.PReLU(channels, 0.25))
        self.body = nn.Sequential(*(ResidualBlock(channels) for _ in range(blocks)))
        self.body_conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.upsample = nn.Sequential(
            *(
                layer
                for _ in range(2)
                for layer in (
                    nn.Conv2d(channels, channels * 4, 3, padding=1),
                    nn.PixelShuffle(2),
                    nn.PReLU(channels, 0.25),
                )
            )
        )
        self.tail = nn.Conv2d(channels, 3, 9, padding=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.head(x * 2.0 - 1.0)
        x = head + self.body_conv(self.body(head))
        return self.tail(self.upsample(x)) * 0.5 + 0.5


class SeedGraph(nn.Module):
    """The seed's TF1 generator as its graph runs (BatchNorm kept, not folded): the PyTorch
    peer for ``archs.seed_srgan`` in ``benchmarks/arch_speed.py``.

    Built from variables with the seed's checkpoint names (``generator/generator_unit/...``,
    HWIO kernels), so it runs the same weights as our import. The seed's shuffle puts channel
    4g + 2i + j at phase (i, j) of output channel g: PyTorch's ``pixel_shuffle`` order. Output
    ``(y + 1) / 2`` as the service served it.
    """

    UNIT = "generator/generator_unit/"

    def __init__(self, variables: dict, blocks: int, stages: int) -> None:
        super().__init__()
        self.v = variables
        self.head = nn.Sequential(self._conv("input_stage/conv"), self._prelu("input_stage"))
        self.blocks = nn.ModuleList(
            nn.Sequential(
                self._conv(f"resblock_{i}/conv_1"),
                self._bn(f"resblock_{i}/BatchNorm"),
                self._prelu(f"resblock_{i}"),
                self._conv(f"resblock_{i}/conv_2"),
                self._bn(f"resblock_{i}/BatchNorm_1"),
            )
            for i in range(1, blocks + 1)
        )
        self.body_out = nn.Sequential(
            self._conv("resblock_output/conv"), self._bn("resblock_output/BatchNorm")
        )
        self.upsample = nn.Sequential(
            *(
                layer
                for k in range(1, stages + 1)
                for layer in (
                    self._conv(f"subpixelconv_stage{k}/conv"),
                    nn.PixelShuffle(2),
                    self._prelu(f"subpixelconv_stage{k}"),
                )
            )
        )
        self.tail = self._conv("output_stage/conv")
        del self.v

    def _get(self, name: str) -> torch.Tensor | None:
        value = self.v.get(self.UNIT + name)
        return None if value is None else torch.from_numpy(value.copy()).float()

    def _conv(self, scope: str) -> nn.Conv2d:
        kernel, bias = self._get(f"{scope}/Conv/weights"), self._get(f"{scope}/Conv/biases")
        k, _, cin, cout = kernel.shape
        conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias is not None)
        conv.weight.data = kernel.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
        if bias is not None:
            conv.bias.data = bias
        return conv

    def _bn(self, scope: str) -> nn.BatchNorm2d:
        beta = self._get(f"{scope}/beta")
        bn = nn.BatchNorm2d(beta.numel(), eps=1e-3).eval()  # slim's epsilon
        gamma = self._get(f"{scope}/gamma")
        bn.weight.data = torch.ones_like(beta) if gamma is None else gamma
        bn.bias.data = beta
        bn.running_mean.copy_(self._get(f"{scope}/moving_mean"))
        bn.running_var.copy_(self._get(f"{scope}/moving_variance"))
        return bn

    def _prelu(self, scope: str) -> nn.PReLU:
        alpha = self._get(f"{scope}/Prelu/alpha")
        prelu = nn.PReLU(alpha.numel())
        prelu.weight.data = alpha
        return prelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.head(x)
        net = head
        for block in self.blocks:
            net = net + block(net)
        net = head + self.body_out(net)
        return (self.tail(self.upsample(net)) + 1.0) / 2.0


def measure(
    model: nn.Module, size: int, repeats: int, precision: str, memory_format: str
) -> dict[str, object]:
    """Time ``repeats`` forward passes on one random 1x3x``size``x``size`` input."""
    layout = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=layout)
    x = torch.rand(1, 3, size, size).contiguous(memory_format=layout)
    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if precision == "bf16"
        else contextlib.nullcontext()
    )
    times = []
    with torch.inference_mode(), autocast:
        model(x)  # warm-up: oneDNN primitive creation, allocations
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    best = min(times)
    return {
        "precision": precision,
        "memory_format": memory_format,
        "seconds_best": best,
        "seconds_median": statistics.median(times),
        "input_px_per_s": size * size / best,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--size", type=int, default=128, help="input side in pixels")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs after a warm-up")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--precision", choices=PRECISIONS, nargs="+", default=list(PRECISIONS))
    parser.add_argument("--format", choices=FORMATS, nargs="+", default=list(FORMATS))
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = SRResNet(args.blocks, args.channels).eval()
    results = [
        measure(model, args.size, args.repeats, precision, memory_format)
        for precision in args.precision
        for memory_format in args.format
    ]
    if args.json:
        report = {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "size": args.size,
            "repeats": args.repeats,
            "results": results,
        }
        print(json.dumps(report, indent=2))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.size}px input")
    for r in results:
        print(
            f"{r['precision']:<5} {r['memory_format']:<14} {r['seconds_best']:.3f} s "
            f"(median {r['seconds_median']:.3f} s)  {r['input_px_per_s']:,.0f} input px/s"
        )


if __name__ == "__main__":
    main()
