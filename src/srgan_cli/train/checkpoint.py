"""Run-directory checkpoints: everything ``--resume`` needs, written atomically.

``checkpoint.npz`` holds the trained model's weights, the optimizer's variables (moments and
iteration count, which also drives the learning-rate schedule) and the global step; batches
are a function of the step (see ``data``), so no data-loader state is needed.
``last.weights.h5`` / ``best.weights.h5`` hold just the generator, ready for export. With
``--ema`` the checkpoint also holds the generator's moving average (``e*`` arrays), and the
generator files hold that average: it is what gets validated, selected and shipped.
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


def save_state(run_dir: Path, trainee, step: int, ema: list[np.ndarray] | None = None) -> None:
    """Write the resumable state: weights, optimizer variables, step and the EMA if any."""
    arrays = {f"w{i}": np.asarray(w) for i, w in enumerate(trainee.get_weights())}
    opt_vars = trainee.optimizer.variables
    arrays.update({f"o{i}": np.asarray(v) for i, v in enumerate(opt_vars)})
    arrays.update({f"e{i}": average for i, average in enumerate(ema or [])})
    arrays["step"] = np.array(step, dtype=np.int64)
    tmp = run_dir / f".{CHECKPOINT}.tmp.npz"
    np.savez(tmp, **arrays)
    _replace_atomically(tmp, run_dir / CHECKPOINT)


def save_snapshot(run_dir: Path, generator, step: int) -> None:
    """``last.weights.h5`` and a copy in ``snapshots/`` (what ``--select`` chooses from)."""
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


def restore_ema(run_dir: Path) -> list[np.ndarray] | None:
    """The generator's moving average stored in the checkpoint, or None if it has none."""
    data = np.load(run_dir / CHECKPOINT)
    count = sum(1 for key in data.files if key.startswith("e"))
    return [data[f"e{i}"] for i in range(count)] if count else None


def save_generator(prefix: Path, generator, step: int, score: float | None) -> None:
    """``<prefix>.weights.h5`` plus ``<prefix>.json`` with the step and validation score."""
    tmp = prefix.with_name(f"tmp-{prefix.name}.weights.h5")
    _bare(generator).save_weights(tmp)
    _replace_atomically(tmp, prefix.with_name(prefix.name + ".weights.h5"))
    info = {"step": step, "val_psnr": score}
    prefix.with_name(prefix.name + ".json").write_text(json.dumps(info) + "\n")


def _bare(generator):
    """The generator without its optimizer, so that its file holds just the weights.

    The PSNR stage compiles the generator itself, and Keras then saves the Adam moments into
    every ``.weights.h5`` (18.8 MB instead of 6.4 MB). The checkpoint already keeps them for
    ``--resume``; the generator files are for loading and shipping.
    """
    if getattr(generator, "optimizer", None) is None:
        return generator
    import keras

    bare = keras.Model.from_config(generator.get_config())  # clone_model would compile it
    bare.set_weights(generator.get_weights())
    return bare


def best_score(run_dir: Path) -> float:
    """Validation PSNR of ``best.weights.h5`` so far (-inf when there is none)."""
    path = run_dir / "best.json"
    if not path.is_file():
        return float("-inf")
    return float(json.loads(path.read_text())["val_psnr"])
