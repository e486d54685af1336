"""Run ``srgan bench`` (fp32 and bf16) and the PyTorch reference in one go; print the ratios.

Targets: ours fp32 >= 1.25x torch fp32, ours bf16 >= 1.0x torch bf16, each against the
faster of torch's two memory formats. Needs torch (``pip install torch==2.13.0``). Other busy
processes slow every figure down; the ratios suffer less, as all runs share the machine.

    python benchmarks/compare_backends.py [--size 128] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

TARGETS = {"fp32": 1.25, "bf16": 1.0}
TORCH_REFERENCE = Path(__file__).with_name("torch_reference.py")


def run_json(command: list[str]) -> dict:
    """Run a command that prints one JSON object on stdout; its stderr passes through."""
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout)


def compare(srgan: list[str], size: int, repeats: int, threads: int) -> dict:
    common = ["--size", str(size), "--repeats", str(repeats)]
    ours = {
        precision: run_json([*srgan, "bench", *common, "--precision", precision, "--json"])
        for precision in TARGETS
    }
    reference = [sys.executable, str(TORCH_REFERENCE), *common, "--threads", str(threads)]
    torch = run_json([*reference, "--json"])
    rows = []
    for precision, target in TARGETS.items():
        best = max(
            (r for r in torch["results"] if r["precision"] == precision),
            key=lambda r: r["input_px_per_s"],
        )
        ratio = ours[precision]["input_px_per_s"] / best["input_px_per_s"]
        rows.append(
            {
                "precision": precision,
                "ours_px_per_s": ours[precision]["input_px_per_s"],
                "torch_px_per_s": best["input_px_per_s"],
                "torch_memory_format": best["memory_format"],
                "ratio": ratio,
                "target": target,
                "met": ratio >= target,
            }
        )
    return {"size": size, "ours": ours, "torch": torch, "comparison": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (match srgan's)")
    parser.add_argument(
        "--srgan",
        default=f"{shlex.quote(sys.executable)} -m srgan_cli",
        help="command that runs srgan [default: this Python's -m srgan_cli]",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    report = compare(shlex.split(args.srgan), args.size, args.repeats, args.threads)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    ours = report["ours"]["fp32"]
    print(
        f"{args.size}x{args.size} input, {ours['threads']} threads (torch "
        f"{report['torch']['torch']}, {report['torch']['threads']}), matmul peak "
        f"{ours['matmul_peak_gflops']:.1f} GFLOP/s fp32"
    )
    print(f"{'precision':<10}{'srgan px/s':>12}{'torch px/s':>12}  {'torch layout':<14}ratio")
    for row in report["comparison"]:
        verdict = "met" if row["met"] else "MISSED"
        print(
            f"{row['precision']:<10}{row['ours_px_per_s']:>12,.0f}{row['torch_px_per_s']:>12,.0f}"
            f"  {row['torch_memory_format']:<14}{row['ratio']:.2f}x "
            f"(target >= {row['target']:.2f}x: {verdict})"
        )


if __name__ == "__main__":
    main()
