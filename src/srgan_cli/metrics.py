"""Image-quality metrics and the evaluation protocol's degradation (numpy only).

Protocol (as the literature and the seed's table): crop HR to a multiple of 4, Pillow BICUBIC
x1/4 (antialiased), upscale, compare the Y channel (ITU-R BT.601, 16-235) with a 4 px border
cropped. The same ``bicubic_downscale`` makes the training pairs, so train and eval agree.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from srgan_cli import SCALE


def crop_to_multiple(image: np.ndarray, multiple: int = SCALE) -> np.ndarray:
    """Crop the bottom/right edges so height and width are multiples of ``multiple``."""
    h, w = image.shape[:2]
    return image[: h - h % multiple, : w - w % multiple]


def bicubic_downscale(hr: np.ndarray, factor: int = SCALE) -> np.ndarray:
    """uint8 HWC (or HW) image -> uint8 image ``factor`` times smaller, Pillow BICUBIC."""
    hr = crop_to_multiple(hr, factor)
    h, w = hr.shape[:2]
    img = Image.fromarray(hr)
    return np.asarray(img.resize((w // factor, h // factor), Image.BICUBIC))


def bicubic_upscale(lr: np.ndarray, factor: int = SCALE) -> np.ndarray:
    """uint8 image -> uint8 image ``factor`` times larger, Pillow BICUBIC (the baseline)."""
    h, w = lr.shape[:2]
    return np.asarray(Image.fromarray(lr).resize((w * factor, h * factor), Image.BICUBIC))
