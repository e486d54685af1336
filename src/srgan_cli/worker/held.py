"""The model a worker holds, and which calls it may serve with it.

A call is served only when it asks for the very weights the worker loaded (same file, same
bytes) at the same resolved precision. A worker holding ``auto`` (both ``srgan`` and
``real``) serves ``auto`` calls and calls that force one of the two. Everything else about
the call (tiles, tile pad, TTA, formats, paths) is per call and set on the held ``Upscaler``
before it runs. The ``upscale`` command finds an ``InjectedModel`` in its click context
object when the worker runs it, and ``cli.options.load_upscaler`` hands out the held model
instead of loading one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from srgan_cli.errors import SrganError
from srgan_cli.weights import is_auto, resolve, sha256_of

if TYPE_CHECKING:
    from srgan_cli.modelset import AnyUpscaler
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


@dataclass
class _Weights:
    """One loaded weights file: the model using it, and what tells if the file changed."""

    upscaler: Upscaler
    path: Path
    sha256: str
    signature: tuple[int, int, int]


class HeldModel:
    """An ``Upscaler`` or ``auto`` ``ModelSet`` loaded once, with what identifies each of
    its weights files (path, sha256)."""

    def __init__(self, upscaler: AnyUpscaler) -> None:
        from srgan_cli.modelset import members

        self.upscaler = upscaler
        self.files: list[_Weights] = []
        for member in members(upscaler).values():
            path = Path(os.path.realpath(member.path))
            self.files.append(_Weights(member, path, sha256_of(path), _signature(path)))
        self.path = ", ".join(str(held.path) for held in self.files)
        """Every weights file held, comma-separated (what ``srgan worker status`` shows)."""

    def warm_up(self) -> None:
        """Run the model on two small sizes before serving.

        Keras traces its predict function once per new input shape until the second, after
        which one graph takes any size; warming up moves that (~0.7 s per shape, measured)
        off the first calls. Outputs are unchanged: compared byte for byte on 64x64 and
        128x128 images against a fresh ``Upscaler``.
        """
        import numpy as np

        for held in self.files:
            for side in (16, 24):
                held.upscaler.upscale(np.zeros((side, side, 3), np.uint8))

    def refusal(self, model: str | None, weights: Path | None, precision: str) -> str | None:
        """Why this model cannot serve a call with these options; None when it can.

        ``weights`` relative paths are taken from the current directory (the worker runs
        each call in the client's directory). A weights file rewritten since loading is
        compared by its sha256, so retraining in place is never served stale weights.
        """
        return self._serving(model, weights, precision)[1]

    def _serving(
        self, model: str | None, weights: Path | None, precision: str
    ) -> tuple[AnyUpscaler | None, str | None]:
        """What serves a call for these options (the set, or one held model), or why not."""
        from srgan_cli.pipeline import choose_precision

        if model is not None and weights is not None:
            return None, "both --model and --weights given"
        if choose_precision(precision) != self.upscaler.precision_used:
            return None, f"the worker computes in {self.upscaler.precision_used}, not {precision}"
        if is_auto(model, weights):
            if self.upscaler.name != "auto":
                return None, f"the worker holds {self.path}, the call asks for auto"
            wanted = self.files
        else:
            path = Path(os.path.realpath(resolve(model, weights)))
            wanted = [held for held in self.files if held.path == path]
            if not wanted:
                return None, f"the worker holds {self.path}, the call asks for {path}"
        for held in wanted:
            if _signature(held.path) != held.signature and sha256_of(held.path) != held.sha256:
                return None, f"{held.path} changed since the worker loaded it"
        return (self.upscaler if is_auto(model, weights) else wanted[0].upscaler), None

    def take(
        self,
        model: str | None,
        weights: Path | None,
        precision: str,
        tile: int | None,
        tile_pad: int,
        tta: bool,
    ) -> AnyUpscaler:
        """What serves one call, set up for it (the worker serves calls one at a time)."""
        serving, reason = self._serving(model, weights, precision)
        if serving is None:
            raise SrganError(f"worker cannot serve this call: {reason}")
        serving.tile = tile
        serving.tile_pad = tile_pad
        serving.tta = tta
        return serving


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
