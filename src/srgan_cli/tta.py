"""Self-ensemble ("x8" test-time augmentation): average the model over the 8 dihedral views.

The generator is not exactly equivariant to flips and 90-degree rotations, so running it on
each of the 8 views of an input and mapping every output back gives 8 slightly different
estimates whose mean has less error (EDSR's "+" models). It costs 8 model calls. The views
are taken of whatever the tiler hands to ``infer`` (a padded tile), and the mean is taken in
float before any rounding, so tiled and whole-image results still agree.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

VIEWS: tuple[tuple[int, bool], ...] = tuple((k, f) for f in (False, True) for k in range(4))
"""(quarter turns, horizontal flip) for each of the 8 symmetries of a rectangle."""


def to_view(batch: np.ndarray, turns: int, flip: bool) -> np.ndarray:
    """NHWC batch -> the view: flip the width axis first, then rotate ``turns`` x 90 degrees."""
    view = batch[:, :, ::-1] if flip else batch
    return np.rot90(view, turns, axes=(1, 2))


def from_view(batch: np.ndarray, turns: int, flip: bool) -> np.ndarray:
    """Undo ``to_view`` (rotate back, then flip back)."""
    back = np.rot90(batch, -turns, axes=(1, 2))
    return back[:, :, ::-1] if flip else back


def self_ensemble(infer: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> np.ndarray:
    """Mean of ``infer`` over the 8 views of an NHWC float32 ``batch``, mapped back, float32."""
    total: np.ndarray | None = None
    for turns, flip in VIEWS:
        view = np.ascontiguousarray(to_view(batch, turns, flip))
        out = from_view(np.asarray(infer(view), dtype=np.float64), turns, flip)
        total = out if total is None else total + out
    assert total is not None
    return (total / len(VIEWS)).astype(np.float32)
