"""The table behind ``--model auto``'s JPEG threshold: each model per JPEG quality.

On the 10 held-out *training* photos (the split every training run validates on:
``train.data.split_validation`` of ``../shared/datasets/train``, never a benchmark), each
photo is cropped to a multiple of 4, shrunk x1/4 with Pillow bicubic, saved as a JPEG at
quality Q with Pillow (4:2:0, what ``degrade.jpeg`` does: the ``bicubic+jpegQ`` chain of
``srgan eval --degradation``), then upscaled by each model and scored against the HR photo:
Y-PSNR (BT.601, 4 px border) and LPIPS-Alex, means over the 10 photos. The clean row
(``bicubic``, the lossless input) is printed too. Each model loads once.

    python benchmarks/auto_threshold.py --out docs/auto
    python benchmarks/auto_threshold.py --models srgan,real,auto --chains bicubic,lanczos+jpeg80

Prints one markdown row per chain (each model's PSNR / LPIPS, the better one in bold) and
writes every run's per-image JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

QUALITIES = range(50, 100, 5)
LPIPS_WEIGHTS = "../shared/weights/lpips_alex.npz"
DEFAULT_CHAINS = ",".join(["bicubic", *(f"bicubic+jpeg{q}" for q in QUALITIES)])


def held_out_folder(data: Path, count: int, into: Path) -> Path:
    """A folder of links to the ``count`` held-out training photos (as training splits them)."""
    from srgan_cli.train.data import list_images, split_validation

    _, held = split_validation(list_images(data), count)
    folder = into / "heldout"
    folder.mkdir()
    for path in held:
        (folder / f"{path.parent.name}-{path.name}").symlink_to(path.resolve())
    return folder


def cell(psnr: float, lpips: float, best_psnr: bool, best_lpips: bool) -> str:
    def bold(text: str, on: bool) -> str:
        return f"**{text}**" if on else text

    return f"{bold(f'{psnr:.2f}', best_psnr)} / {bold(f'{lpips:.4f}', best_lpips)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/train"))
    parser.add_argument("--held-out", type=int, default=10)
    parser.add_argument("--models", default="srgan,real")
    parser.add_argument("--chains", default=DEFAULT_CHAINS)
    parser.add_argument("--lpips-weights", type=Path, default=Path(LPIPS_WEIGHTS))
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--out", type=Path, default=None, help="folder for per-run JSON")
    args = parser.parse_args()

    from srgan_cli import __version__, evaluate
    from srgan_cli.cli.options import load_upscaler
    from srgan_cli.lpips import LpipsAlex

    models, chains = args.models.split(","), args.chains.split(",")
    lpips = LpipsAlex(args.lpips_weights)
    means: dict[tuple[str, str], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sets = evaluate.benchmark_sets([held_out_folder(args.data, args.held_out, Path(tmp))])
        for name in models:
            upscaler = load_upscaler(name, None, args.precision, None, 32)
            for chain in chains:
                result = evaluate.evaluate(sets, upscaler, lpips, degradation=chain)
                (row,) = result.sets
                means[name, chain] = (row.psnr, row.lpips)
                print(f"{name:8} {chain:16} {row.psnr:.4f} / {row.lpips:.4f}", flush=True)
                if args.out is not None:
                    args.out.mkdir(parents=True, exist_ok=True)
                    data = result.to_dict(version=__version__, precision=upscaler.precision_used)
                    text = json.dumps(data, indent=2) + "\n"
                    (args.out / f"{name}-{chain}.json").write_text(text)
    print(f"\n| chain | {' | '.join(f'{m} PSNR / LPIPS' for m in models)} |")
    print("|---" * (len(models) + 1) + "|")
    for chain in chains:
        top_psnr = max(means[m, chain][0] for m in models)
        top_lpips = min(means[m, chain][1] for m in models)
        cells = [
            cell(p, d, p == top_psnr, d == top_lpips) for p, d in (means[m, chain] for m in models)
        ]
        print(f"| `{chain}` | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
