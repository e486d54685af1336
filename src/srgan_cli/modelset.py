"""``auto``: both shipped models loaded once, each image through the one its file asks for.

A ``ModelSet`` holds one ``Upscaler`` per member (``srgan`` and ``real``) and looks like an
``Upscaler`` to everything that runs one (``pipeline.run_jobs``, the worker, the Ray actors,
``srgan serve``, ``srgan eval``): ``pick(source)`` gives the member for an input's header
(``autoselect.choose_model``), and a plain ``Upscaler.pick`` gives itself, so a batch mixing
JPEGs and PNGs runs each image through its own model in the same reader / model / writer
overlap. ``load_model`` is the one place that turns ``--model`` / ``--weights`` into either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from srgan_cli.autoselect import AUTO, AUTO_MODELS, CLEAN_MODEL, JPEG_THRESHOLD, choose_model
from srgan_cli.pipeline import DEFAULT_MEMORY_BUDGET, ImageLike, OnTile, Upscaler
from srgan_cli.tiling import DEFAULT_TILE_PAD
from srgan_cli.weights import is_auto


def _shared(attribute: str) -> Any:
    """A setting read from the clean member and written to every member."""

    def read(self: ModelSet) -> Any:
        return getattr(self.default, attribute)

    def write(self: ModelSet, value: Any) -> None:
        for member in self.members.values():
            setattr(member, attribute, value)

    return property(read, write)


class ModelSet:
    """``auto``: the ``AUTO_MODELS`` as ``Upscaler``s sharing precision, tiling and TTA.

    ``name`` is "auto"; ``members`` maps each model's name to its ``Upscaler``. Images
    without a file header (arrays, decoded images) go to ``CLEAN_MODEL``, as a PNG would;
    a PIL Image opened from a JPEG carries its quantization tables and is chosen by them.
    """

    name = AUTO

    def __init__(
        self,
        *,
        precision: str = "auto",
        tile: int | None = None,
        tile_pad: int = DEFAULT_TILE_PAD,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        tta: bool = False,
        threshold: float = JPEG_THRESHOLD,
    ) -> None:
        options = {"tile": tile, "tile_pad": tile_pad, "memory_budget": memory_budget, "tta": tta}
        self.members: dict[str, Upscaler] = {
            name: Upscaler(name, precision=precision, **options) for name in AUTO_MODELS
        }
        self.threshold = threshold

    def pick(self, source: Any = None) -> Upscaler:
        """The member for an input: a path, its bytes, a binary file or a PIL Image
        (``autoselect.choose_model``); None (no header) is ``CLEAN_MODEL``."""
        return self.members[choose_model(source, self.threshold)]

    @property
    def default(self) -> Upscaler:
        return self.members[CLEAN_MODEL]

    @property
    def precision_used(self) -> str:
        return self.default.precision_used

    # Per-call settings (the worker sets them before each call) go to every member.
    tile = _shared("tile")
    tile_pad = _shared("tile_pad")
    tta = _shared("tta")

    @property
    def scale(self) -> int:
        """The members' scale: both shipped models are x4."""
        return self.default.scale

    @property
    def spec(self) -> Any:
        """The members' ``ModelSpec`` (one architecture, one scale)."""
        return self.default.spec

    def check_outscale(self, outscale: float | None) -> float:
        """``Upscaler.check_outscale`` of the members (they share one scale)."""
        return self.default.check_outscale(outscale)

    def tiles_for(self, height: int, width: int) -> int:
        """Model calls for an image of this size (the members share one architecture)."""
        return self.default.tiles_for(height, width)

    def upscale(
        self, image: ImageLike, on_tile: OnTile | None = None, *, outscale: float | None = None
    ) -> ImageLike:
        """``Upscaler.upscale`` through the member ``image`` asks for (arrays: the clean one)."""
        source = image if isinstance(image, Image.Image) else None
        return self.pick(source).upscale(image, on_tile, outscale=outscale)

    def upscale_image(
        self, image: Any, on_tile: OnTile | None = None, *, outscale: float | None = None
    ):
        """A decoded image has no header left: ``CLEAN_MODEL`` (use ``pick`` with its file)."""
        return self.default.upscale_image(image, on_tile, outscale=outscale)


AnyUpscaler = Upscaler | ModelSet
"""What ``load_model`` builds; both have ``pick``, ``upscale``, ``tiles_for``, ``name``."""


def load_model(
    model: str | None = None, weights: str | Path | None = None, **options: Any
) -> AnyUpscaler:
    """A ``ModelSet`` for ``auto`` (the default: no model, no weights), else an ``Upscaler``.

    ``options`` are ``Upscaler``'s keywords (precision, tile, tile_pad, memory_budget, tta).
    """
    if is_auto(model, weights):
        return ModelSet(**options)
    return Upscaler(model, weights, **options)


def members(upscaler: AnyUpscaler) -> dict[str, Upscaler]:
    """The ``Upscaler``s behind either kind, by model name."""
    if isinstance(upscaler, ModelSet):
        return dict(upscaler.members)
    return {upscaler.name: upscaler}
