"""srgan: 4x photo upscaling with a Keras SRGAN generator.

The core API works on arrays (RGB float32 in [0, 1], HWC); the ``srgan`` command is a thin
shell over it. TensorFlow is imported lazily so that importing this package stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"
SCALE = 4
