"""The model a worker holds, and which calls it may serve with it.

A call is served only when it asks for the very weights the worker loaded (same file, same
bytes) at the same resolved precision; everything else about the call (tiles, tile pad,
TTA, formats, paths) is per call and set on the held ``Upscaler`` before it runs. The
``upscale`` command finds an ``InjectedModel`` in its click context object when the worker
runs it, and ``cli.options.load_upscaler`` hands out the held model instead of loading one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from srgan_cli.errors import SrganError
from srgan_cli.weights import resolve, sha256_of

if TYPE_CHECKING:
    from srgan_cli.pipeline import ImageResult, Upscaler


LOCAL_ONLY_OPTIONS = {"ray_address": "--ray"}
"""Parameters of ``srgan upscale`` whose calls run in the calling process, never a worker."""


def local_only_option(params: dict[str, Any]) -> str | None:
    """The first option set in ``params`` that keeps a call out of the worker, or None."""
    for name, option in LOCAL_ONLY_OPTIONS.items():
        if params.get(name) is not None:
            return option
    return None


def _signature(path: Path) -> tuple[int, int, int]:
    """Cheap change detector for a weights file: (inode, size, mtime in ns)."""
    info = path.stat()
    return info.st_ino, info.st_size, info.st_mtime_ns


class HeldModel:
    """An ``Upscaler`` loaded once, with what identifies its weights (path, sha256)."""

    def __init__(self, upscaler: Upscaler) -> None:
        self.upscaler = upscaler
        self.path = Path(os.path.realpath(upscaler.path))
        self.sha256 = sha256_of(self.path)
        self._signature = _signature(self.path)

    def warm_up(self) -> None:
        """Run the model on two small sizes before serving.

        Keras traces its predict function once per new input shape until the second, after
        which one graph takes any size; warming up moves that (~0.7 s per shape, measured)
        off the first calls. Outputs are unchanged: compared byte for byte on 64x64 and
        128x128 images against a fresh ``Upscaler``.
        """
        import numpy as np

        for side in (16, 24):
            self.upscaler.upscale(np.zeros((side, side, 3), np.uint8))

    def refusal(self, model: str | None, weights: Path | None, precision: str) -> str | None:
        """Why this model cannot serve a call with these options; None when it can.

        ``weights`` relative paths are taken from the current directory (the worker runs
        each call in the client's directory). A weights file rewritten since loading is
        compared by its sha256, so retraining in place is never served stale weights.
        """
        from srgan_cli.pipeline import choose_precision

        if model is not None and weights is not None:
            return "both --model and --weights given"
        wanted = Path(os.path.realpath(resolve(model, weights)))
        if wanted != self.path:
            return f"the worker holds {self.path}, the call asks for {wanted}"
        if _signature(wanted) != self._signature and sha256_of(wanted) != self.sha256:
            return f"{wanted} changed since the worker loaded it"
        if choose_precision(precision) != self.upscaler.precision_used:
            return f"the worker computes in {self.upscaler.precision_used}, not {precision}"
        return None

    def take(
        self,
        model: str | None,
        weights: Path | None,
        precision: str,
        tile: int | None,
        tile_pad: int,
        tta: bool,
    ) -> Upscaler:
        """The held ``Upscaler`` set up for one call (the worker serves calls one at a time)."""
        reason = self.refusal(model, weights, precision)
        if reason is not None:
            raise SrganError(f"worker cannot serve this call: {reason}")
        self.upscaler.tile = tile
        self.upscaler.tile_pad = tile_pad
        self.upscaler.tta = tta
        return self.upscaler


@dataclass
class InjectedModel:
    """The click context object the worker runs ``srgan upscale`` with.

    ``on_written`` is told each output path the call finished writing, so the client knows
    what this call already produced if the worker dies before the call ends.
    """

    held: HeldModel
    on_written: Callable[[Path], None]


def injected_model() -> InjectedModel | None:
    """The worker's model when the current click command runs inside a worker, else None."""
    import click

    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.obj is None:
        return None
    return ctx.find_object(InjectedModel)


def reporting_outputs(on_image: Callable[[ImageResult], None]) -> Callable[[ImageResult], None]:
    """``on_image`` that also tells a worker's client each output written (as is, outside one)."""
    injected = injected_model()
    if injected is None:
        return on_image

    def on_image_and_report(result: ImageResult) -> None:
        on_image(result)
        if result.ok and result.out_size is not None and result.output != "-":
            injected.on_written(Path(result.output))

    return on_image_and_report
