"""srgan: 4x photo upscaling with a Keras SRGAN generator.

The core API works on arrays (RGB float32 in [0, 1], HWC); the ``srgan`` command is a thin
shell over it. TensorFlow is imported lazily so that importing this package stays cheap.
``from srgan_cli import Upscaler`` is the library's entry point; it is looked up on first
use (module ``__getattr__``), so ``import srgan_cli`` alone loads no numpy or Pillow either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from srgan_cli.pipeline import Upscaler

__version__ = "0.1.0"
SCALE = 4
__all__ = ["SCALE", "Upscaler", "__version__"]


def __getattr__(name: str) -> Any:
    """Import ``Upscaler`` (numpy, Pillow, the pipeline) only when someone asks for it."""
    if name == "Upscaler":
        from srgan_cli.pipeline import Upscaler

        return Upscaler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
