"""Pick the GAN snapshot to ship, using only the held-out *training* images.

A GAN's validation PSNR falls as its textures get more realistic, so neither "best PSNR"
nor "last" is the right pick. The rule, fixed before looking at any benchmark: among the
snapshots whose validation PSNR is at most ``max_drop`` dB below the PSNR-trained reference
model, take the one with the lowest LPIPS (most perceptually similar).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from srgan_cli.metrics import crop_to_multiple, psnr
from srgan_cli.model import GeneratorConfig, build_generator, to_uint8
from srgan_cli.train.data import validation_lr

SELECTED = "selected.json"


def validation_images(run_dir: Path) -> list[np.ndarray]:
    """The run's held-out photos (listed in ``validation_images.txt``), cropped to x4."""
    names = (run_dir / "validation_images.txt").read_text().split()
    return [crop_to_multiple(np.asarray(Image.open(n).convert("RGB"))) for n in names]


def score(
    model,
    weights_path: Path,
    images: list[np.ndarray],
    lpips,
    degradation: str = "bicubic",
) -> dict[str, float]:
    """Mean Y-PSNR and LPIPS of ``model`` on whole validation photos, degraded as in training."""
    model.load_weights(weights_path)
    psnrs, dists = [], []
    for index, hr in enumerate(images):
        lr = validation_lr(hr, degradation, index)[None].astype("float32") / 255.0
        sr8 = to_uint8(model.predict_on_batch(lr))[0]
        psnrs.append(psnr(sr8, hr))
        dists.append(lpips(sr8, hr))
    return {"val_psnr": float(np.mean(psnrs)), "val_lpips": float(np.mean(dists))}


def select_snapshot(run_dir: Path, reference: Path, lpips, max_drop: float = 1.5) -> dict[str, Any]:
    """Score the reference and every snapshot, apply the rule, write ``selected.json``."""
    config = json.loads((run_dir / "config.json").read_text())
    arch = GeneratorConfig.from_dict(config["generator"])
    degradation = config.get("degradation", "bicubic")
    model = build_generator(arch.blocks, arch.channels, arch.batch_norm)
    images = validation_images(run_dir)
    ref = score(model, reference, images, lpips, degradation)
    rows = []
    for snap in sorted((run_dir / "snapshots").glob("step-*.weights.h5")):
        step = int(snap.name.split("-")[1].split(".")[0])
        row = {"step": step, "file": str(snap.relative_to(run_dir))}
        rows.append({**row, **score(model, snap, images, lpips, degradation)})
    allowed = [r for r in rows if r["val_psnr"] >= ref["val_psnr"] - max_drop]
    if not allowed:
        raise ValueError(f"no snapshot within {max_drop} dB of the reference's validation PSNR")
    pick = min(allowed, key=lambda r: r["val_lpips"])
    result = {
        "rule": f"lowest val LPIPS with val PSNR >= reference - {max_drop} dB",
        "reference": {"file": str(reference), **ref},
        "snapshots": rows,
        "selected": pick,
    }
    (run_dir / SELECTED).write_text(json.dumps(result, indent=2) + "\n")
    return result
