"""srgan: photo upscaling (4x by default) with Keras SR generators, shipped or imported.

The core API works on arrays (RGB float32 in [0, 1], HWC); the ``srgan`` command is a thin
shell over it. TensorFlow is imported lazily so that importing this package stays cheap.
``from srgan_cli import Upscaler`` is the library's entry point for one model, and
``load_model()`` gives the default ``auto`` (a ``ModelSet``: ``srgan`` and ``real``, each
image through the one its file asks for). They are looked up on first use (module
``__getattr__``), so ``import srgan_cli`` alone loads no numpy or Pillow either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from srgan_cli.modelset import ModelSet, load_model
    from srgan_cli.pipeline import Upscaler

__version__ = "0.1.0"
SCALE = 4
__all__ = ["SCALE", "ModelSet", "Upscaler", "__version__", "load_model"]


def __getattr__(name: str) -> Any:
    """Import ``Upscaler`` and co. (numpy, Pillow, the pipeline) only when asked for."""
    if name == "Upscaler":
        from srgan_cli.pipeline import Upscaler

        return Upscaler
    if name in ("ModelSet", "load_model"):
        from srgan_cli import modelset

        return getattr(modelset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
