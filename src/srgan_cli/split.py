"""Run a network's high-resolution tail in row strips, so a tile's peak memory is its trunk's.

RRDBNet does ~92% of its work on the LR grid but holds ~85% of its peak memory at 2x and 4x
(64-channel tensors at up to 16 times a tile's area); our SRResNet and the seed's network
hold over 90% of theirs in the sub-pixel stages after ``long_skip`` (whole 17-18 KB per input
px, the trunk 1.0-1.6). An architecture that can be cut there
(``archs.Arch.tail``) runs its trunk on the whole tile, then its upsampler on a few row
windows of the trunk's features, each with ``Tail.margin`` rows of context around the rows
it keeps (or the tile's edge, where the whole network sees the same zero padding), so the
output equals the whole network's to float round-off (tests/test_split.py). A tile can then
hold about 2.5 (RRDBNet) or 1.9 (SRResNet) times the pixels in the same memory
(``tiling.PEAK_BYTES_PER_PX``), so less context is computed twice.

Both parts run as TensorFlow graphs traced once for any input shape (``_graph``): through
``predict_on_batch`` they were traced up to three times each (exact shape, then one side
relaxed, then both), and as TensorFlow counts the traces of every Keras predict function
together, images of a few sizes made it warn of excessive retracing on stderr. The trunk's
trace (~3 s for 23 blocks) is paid once per process, as the whole network's first was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras

    from srgan_cli.archs import ModelSpec, Tail

Predict = Callable[[np.ndarray], np.ndarray]
"""NHWC float32 in -> the network's NHWC float32 output."""

# Row windows per tile. The upsampler's peak falls with their number, the trunk's stays:
# measured on RRDBNet x4 at 192x192 (benchmarks/split_memory.py), 4 strips bring the peak
# per tile pixel from 11.0 to 3.0 KB in bf16 (15.5 to 4.3 in fp32), of which the trunk alone
# holds 1.7 (2.5); the margins add 4 * 2 * 2 rows (~4% of a 400 px tile) to the upsampler,
# ~8% of RRDBNet's FLOPs.
STRIPS = 4
# Fewest feature rows a strip keeps: a tile under 2 * 64 rows runs its upsampler whole. The
# margins cost 2 * 2 rows per strip, 25% more upsampler work at 4 strips of a 64-row tile
# (RRDBNet x4 at 64x64: 5,691 px/s whole, 5,462 split, fp32), and a small tile's whole
# upsampler (11 KB per px, bf16) is well inside a budget made for larger ones.
MIN_STRIP_ROWS = 64


def strip_windows(height: int, strips: int, margin: int) -> list[tuple[int, int, int, int]]:
    """``(w0, w1, k0, k1)`` per strip of ``height`` feature rows: the window ``[w0, w1)`` the
    upsampler sees and the rows ``[k0, k1)`` kept from it, covering ``[0, height)`` once.

    Each kept row has ``margin`` rows of the window above and below it, or the edge. The
    windows share one height: the kept rows are ``ceil(height / strips)`` per strip and the
    window clamped inside ``[0, height)``; strips that get the same window are merged.
    """
    if height < 1 or strips < 1 or margin < 0:
        raise ValueError(f"need height, strips >= 1 and margin >= 0: {height}, {strips}, {margin}")
    core = -(-height // min(strips, height))
    window = min(core + 2 * margin, height)
    windows: list[tuple[int, int, int, int]] = []
    for k0 in range(0, height, core):
        k1 = min(k0 + core, height)
        w0 = min(max(k0 - margin, 0), height - window)
        if windows and windows[-1][0] == w0:
            windows[-1] = (*windows[-1][:3], k1)
        else:
            windows.append((w0, w0 + window, k0, k1))
    return windows


class SplitNetwork:
    """``Tail.trunk`` on the whole batch, then ``Tail.upsampler`` strip by strip."""

    def __init__(self, tail: Tail, strips: int = STRIPS, min_rows: int = MIN_STRIP_ROWS) -> None:
        self.tail = tail
        self.strips = strips
        self.min_rows = min_rows
        self.graphs = (_graph(tail.trunk), _graph(tail.upsampler))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """NHWC float32 -> the whole network's output, float32 (same shape, same values)."""
        trunk, upsampler = self.graphs
        features = trunk(batch).numpy()
        factor = self.tail.factor
        out: np.ndarray | None = None
        height = features.shape[1]
        for w0, w1, k0, k1 in self.windows(height):
            part = upsampler(features[:, w0:w1]).numpy()
            if out is None:
                rows = height * factor
                out = np.empty((part.shape[0], rows, *part.shape[2:]), dtype=np.float32)
            out[:, k0 * factor : k1 * factor] = part[:, (k0 - w0) * factor : (k1 - w0) * factor]
        assert out is not None  # height >= 1: at least one strip
        return out

    def windows(self, height: int) -> list[tuple[int, int, int, int]]:
        """``strip_windows`` for ``height`` feature rows: up to ``strips``, each keeping at
        least ``min_rows`` rows (one window, the whole upsampler, for a small tile)."""
        strips = max(1, min(self.strips, height // self.min_rows))
        return strip_windows(height, strips, self.tail.margin)


def _graph(model: keras.Model) -> Any:
    """``model`` as one TensorFlow graph (a ``tf.function``) for inputs of any batch, height
    and width, traced on its first call only, giving float32: a bfloat16 trunk's features
    convert exactly, and the upsampler's first layer casts them back."""
    import tensorflow as tf

    signature = tf.TensorSpec((None, None, None, model.inputs[0].shape[-1]), tf.float32)

    @tf.function(input_signature=[signature])
    def run(batch: tf.Tensor) -> tf.Tensor:
        return tf.cast(model(batch, training=False), tf.float32)

    return run


def for_arch(
    model: keras.Model, spec: ModelSpec, strips: int = STRIPS, min_rows: int = MIN_STRIP_ROWS
) -> Predict:
    """How ``pipeline.Upscaler`` runs ``model``: split (``SplitNetwork``) where its
    architecture can be cut (``archs.Arch.tail``), else ``predict_on_batch`` as float32."""
    from srgan_cli.archs import ARCHS

    arch = next((a for a in ARCHS if a.name == spec.arch), None)
    tail = None if arch is None else arch.tail(model, spec)
    if tail is not None:
        return SplitNetwork(tail, strips, min_rows)
    return lambda batch: np.asarray(model.predict_on_batch(batch), dtype=np.float32)
