"""What score_watch.py and score_blends.py share: a run's generator and its scoring.

Both score weights files the way `srgan train --select` does (`select.score`: the run's
held-out photos, its degradation chain fixed per photo, mean Y-PSNR and LPIPS-Alex).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from srgan_cli.lpips import LpipsAlex
from srgan_cli.model import GeneratorConfig, build_generator
from srgan_cli.train.select import score, validation_images


def run_scorer(run_dir: Path, lpips_path: Path) -> tuple[object, Callable[[Path], dict]]:
    """The run's generator (built from its config.json) and ``weights file -> scores``."""
    config = json.loads((run_dir / "config.json").read_text())
    arch = GeneratorConfig.from_dict(config["generator"])
    model = build_generator(arch.blocks, arch.channels, arch.batch_norm)
    images = validation_images(run_dir)
    lpips = LpipsAlex(lpips_path)
    degradation = config.get("degradation", "bicubic")
    return model, lambda weights: score(model, weights, images, lpips, degradation)
