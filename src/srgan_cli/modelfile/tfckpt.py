"""Read a TensorFlow 1 checkpoint (``model.index`` + ``model.data-*``) into a state dict.

The seed service (SRGAN-tensorflow, IBM's image-resolution-enhancer) shipped its generator
as a TF1 ``Saver`` checkpoint. ``tf.train.load_checkpoint`` reads the tensors by name with no
graph, so nothing of the old TF1 code runs here. Optimizer slots (Adam moments etc.) and
non-float bookkeeping (``global_step``) are dropped: they are not weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from srgan_cli.errors import ModelFileError

INDEX_SUFFIX = ".index"
_SLOT_SUFFIXES = (
    "/Adam",
    "/Adam_1",
    "/Momentum",
    "/RMSProp",
    "/RMSProp_1",
    "/ExponentialMovingAverage",
)


def checkpoint_prefix(path: str | os.PathLike[str]) -> Path | None:
    """The checkpoint prefix for ``path`` (the prefix itself or its ``.index``), else None."""
    text = os.fspath(path)
    prefix = text[: -len(INDEX_SUFFIX)] if text.endswith(INDEX_SUFFIX) else text
    if Path(prefix + INDEX_SUFFIX).is_file() and not Path(prefix).is_dir():
        return Path(prefix)
    return None


def checkpoint_files(prefix: Path) -> list[Path]:
    """The files a checkpoint consists of: its index, then its data shards in order."""
    shards = sorted(prefix.parent.glob(prefix.name + ".data-*-of-*"))
    return [Path(str(prefix) + INDEX_SUFFIX), *shards]


def read_checkpoint(prefix: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """``{variable name: float32 array}`` of every weight in the checkpoint (TF layouts)."""
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(os.fspath(prefix))
        shapes = reader.get_variable_to_dtype_map()
        state = {}
        for name in sorted(shapes):
            if not shapes[name].is_floating or name.endswith(_SLOT_SUFFIXES):
                continue
            state[name] = np.asarray(reader.get_tensor(name), dtype=np.float32)
    except (tf.errors.OpError, ValueError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelFileError(f"{os.fspath(prefix)}: damaged TF checkpoint: {first}") from err
    if not state:
        raise ModelFileError(f"{os.fspath(prefix)}: TF checkpoint holds no float weights")
    return state
