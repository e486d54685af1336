"""Run-directory checkpoints: everything ``--resume`` needs, written atomically.

``checkpoint.npz`` holds the trained model's weights, the optimizer's variables (moments and
iteration count, which also drives the learning-rate schedule) and the global step; batches
are a function of the step (see ``data``), so no data-loader state is needed.
``last.weights.h5`` / ``best.weights.h5`` hold just the generator, ready for export.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

CHECKPOINT = "checkpoint.npz"


def _replace_atomically(tmp: Path, final: Path) -> None:
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def save(run_dir: Path, trainee, generator, step: int) -> None:
    """Write the resumable state and the generator's current weights."""
    arrays = {f"w{i}": np.asarray(w) for i, w in enumerate(trainee.get_weights())}
    opt_vars = trainee.optimizer.variables
    arrays.update({f"o{i}": np.asarray(v) for i, v in enumerate(opt_vars)})
    arrays["step"] = np.array(step, dtype=np.int64)
    tmp = run_dir / f".{CHECKPOINT}.tmp.npz"
    np.savez(tmp, **arrays)
    _replace_atomically(tmp, run_dir / CHECKPOINT)
    save_generator(run_dir / "last", generator, step, None)
    snapshots = run_dir / "snapshots"
    snapshots.mkdir(exist_ok=True)
    shutil.copyfile(run_dir / "last.weights.h5", snapshots / f"step-{step:07d}.weights.h5")


def restore(run_dir: Path, trainee) -> int:
    """Load ``checkpoint.npz`` into a freshly compiled ``trainee``; returns the step."""
    path = run_dir / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no {CHECKPOINT} in {run_dir} to resume from")
    data = np.load(path)
    n_weights = len(trainee.get_weights())
    trainee.set_weights([data[f"w{i}"] for i in range(n_weights)])
    trainee.optimizer.build(trainee.trainable_variables)
    for i, var in enumerate(trainee.optimizer.variables):
        var.assign(data[f"o{i}"])
    return int(data["step"])


def save_generator(prefix: Path, generator, step: int, score: float | None) -> None:
    """``<prefix>.weights.h5`` plus ``<prefix>.json`` with the step and validation score."""
    tmp = prefix.with_name(f"tmp-{prefix.name}.weights.h5")
    generator.save_weights(tmp)
    _replace_atomically(tmp, prefix.with_name(prefix.name + ".weights.h5"))
    info = {"step": step, "val_psnr": score}
    prefix.with_name(prefix.name + ".json").write_text(json.dumps(info) + "\n")


def best_score(run_dir: Path) -> float:
    """Validation PSNR of ``best.weights.h5`` so far (-inf when there is none)."""
    path = run_dir / "best.json"
    if not path.is_file():
        return float("-inf")
    return float(json.loads(path.read_text())["val_psnr"])
