"""The "photos from the wild" table: each model on one set under several degradation chains.

Runs ``evaluate.evaluate`` (what ``srgan eval --degradation`` runs) for every model and chain,
loading each model once, writes every run's JSON (per-image rows, chain and protocol) to
``--out`` and prints a markdown table of Y-PSNR / LPIPS with the bicubic baseline row.

    python benchmarks/wild.py ../shared/datasets/benchmark/BSD100 --out docs/wild
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_CHAINS = "bicubic,bicubic+jpeg75,bicubic+noise5,lanczos+jpeg80"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--models", default="srresnet,srgan,real")
    parser.add_argument("--chains", default=DEFAULT_CHAINS)
    parser.add_argument("--lpips-weights", default="../shared/weights/lpips_alex.npz")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--out", type=Path, default=Path("docs/wild"))
    args = parser.parse_args()

    from srgan_cli import __version__, evaluate
    from srgan_cli.lpips import LpipsAlex
    from srgan_cli.pipeline import Upscaler

    sets = evaluate.benchmark_sets([args.directory])
    lpips = LpipsAlex(Path(args.lpips_weights))
    chains = args.chains.split(",")
    cells: dict[str, dict[str, str]] = {"bicubic": {}}
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.models.split(","):
        upscaler = Upscaler(name, precision=args.precision)
        cells[name] = {}
        for chain in chains:
            result = evaluate.evaluate(sets, upscaler, lpips, degradation=chain)
            data = result.to_dict(version=__version__, precision=upscaler.precision_used)
            path = args.out / f"{sets[0].name}-{name}-{chain}.json"
            path.write_text(json.dumps(data, indent=2) + "\n")
            (row,) = result.sets
            cells[name][chain] = f"{row.psnr:.2f} / {row.lpips:.3f}"
            cells["bicubic"][chain] = f"{row.bicubic_psnr:.2f} / {row.bicubic_lpips:.3f}"
            print(f"{name:10} {chain:18} {cells[name][chain]}", flush=True)
    print(f"\n| {sets[0].name}: Y-PSNR / LPIPS | " + " | ".join(f"`{c}`" for c in chains) + " |")
    print("|---" * (len(chains) + 1) + "|")
    for name, row in cells.items():
        print(f"| {name} | " + " | ".join(row[c] for c in chains) + " |")


if __name__ == "__main__":
    main()
