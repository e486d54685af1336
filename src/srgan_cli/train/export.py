"""Turn a training run into a shipped model: ``weights/<name>.weights.h5`` plus its card.

The PSNR stage exports the checkpoint that scored best on the held-out *training* images
(never a benchmark image); the GAN stage exports the snapshot ``select`` picked (again on
held-out training images), or its last checkpoint when nothing was selected.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from srgan_cli.train.config import STAGE_MODEL


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "log.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def training_summary(run_dir: Path) -> dict[str, Any]:
    """What the card says about a run: its config, steps, wall time and hardware."""
    config = json.loads((run_dir / "config.json").read_text())
    selected = run_dir / "selected.json"
    if config["stage"] == "gan" and selected.is_file():
        selection = json.loads(selected.read_text())
        chosen = selection["selected"]
        pick = chosen["file"].removesuffix(".weights.h5")
    else:
        pick = "best" if config["stage"] == "psnr" else "last"
        chosen = json.loads((run_dir / f"{pick}.json").read_text())
    log = read_log(run_dir)
    seconds = sum(row["s_per_step"] * config["log_every"] for row in log)
    return {
        "stage": config["stage"],
        "steps": chosen["step"],
        "checkpoint": pick,
        "val_psnr": chosen.get("val_psnr"),
        "val_lpips": chosen.get("val_lpips"),
        "wall_hours": round(seconds / 3600, 3),
        "hardware": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "config": config,
    }


def export_run(
    run_dir: Path,
    out_dir: Path,
    name: str | None = None,
    extra: dict | None = None,
    blend_with: Sequence[Path] = (),
    alpha: float = 1.0,
) -> Path:
    """Export the run's chosen generator checkpoint with a card; returns the weights path.

    ``blend_with`` (ESRGAN's network interpolation) exports ``(1 - alpha) * blend_with +
    alpha * run`` instead: with the PSNR-stage weights the GAN run started from, it buys back
    PSNR for a little LPIPS along a better curve than the run's own earlier snapshots.
    Several files share ``1 - alpha`` equally: with ``alpha = 1 / (k + 1)`` that is the
    uniform average of k + 1 generators fine-tuned from one start (a "model soup",
    Wortsman et al. 2022), whose texture noise is less correlated than its detail.
    """
    from srgan_cli import weights
    from srgan_cli.model import GeneratorConfig, build_generator

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"the blend's alpha must be in [0, 1], not {alpha}")
    summary = training_summary(run_dir)
    summary.update(extra or {})
    config = summary["config"]
    arch = GeneratorConfig.from_dict(config["generator"])
    name = name or STAGE_MODEL[config["stage"]]
    model = build_generator(arch.blocks, arch.channels, arch.batch_norm, name=name)
    model.load_weights(run_dir / f"{summary['checkpoint']}.weights.h5")
    if blend_with:
        fresh = build_generator(arch.blocks, arch.channels, arch.batch_norm)
        _blend(model, [_load_into(fresh, path) for path in blend_with], alpha)
        summary["interpolation"] = {
            "with": [str(path) for path in blend_with],
            "with_sha256": [weights.sha256_of(path) for path in blend_with],
            "alpha": alpha,
            "rule": "weights = (1 - alpha) * mean(with) + alpha * this run's checkpoint",
        }
    card = weights.WeightCard(
        name=name,
        architecture=arch.to_dict(),
        sha256="",
        training=summary,
        description=f"{name}: x4 generator, {config['stage']} stage",
    )
    return weights.export(model, card, out_dir)


def _load_into(fresh, path: Path) -> list:
    """The arrays of the generator in ``path``, loaded into ``fresh`` (the run's topology)."""
    import warnings

    try:
        with warnings.catch_warnings():  # Keras warns per layer before it raises
            warnings.simplefilter("ignore")
            fresh.load_weights(path)
    except ValueError as err:  # Keras's message dumps whole kernels: keep ours to one line
        raise ValueError(
            f"{path} does not hold this run's generator "
            f"({len(fresh.get_weights())} arrays of the run's shapes)"
        ) from err
    return fresh.get_weights()


def _blend(model, others: list[list], alpha: float) -> None:
    """Move ``model``'s weights to ``(1 - alpha) * mean(others) + alpha * model`` in place."""
    share = (1.0 - alpha) / len(others)
    blended = [
        alpha * ours + share * sum(theirs)
        for ours, *theirs in zip(model.get_weights(), *others, strict=True)
    ]
    model.set_weights(blended)
