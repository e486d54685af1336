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


# BT.601 studio-swing luma weights for R, G, B in 0..255 (MATLAB ``rgb2ycbcr``, BasicSR).
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0
_Y_OFFSET = 16.0

# Wang et al. 2004 SSIM constants: 11x11 Gaussian window, sigma 1.5, K1, K2.
_SSIM_WIN = 11
_SSIM_SIGMA = 1.5
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """RGB (HxWx3, values in 0..255, any dtype) -> float64 luma Y in 16..235 (BT.601).

    Same numbers as MATLAB ``rgb2ycbcr`` without rounding, which is what published SR
    tables use. A 2-D (grayscale) array is already "Y" and is returned as float64.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        return rgb.astype(np.float64)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB or HxW grayscale image, got shape {rgb.shape}")
    return rgb.astype(np.float64) @ _Y_WEIGHTS + _Y_OFFSET


def shave(img: np.ndarray, border: int) -> np.ndarray:
    """Drop ``border`` pixels on every side (the protocol ignores the scale-sized rim)."""
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    if border == 0:
        return img
    h, w = img.shape[:2]
    if h <= 2 * border or w <= 2 * border:
        raise ValueError(f"image {h}x{w} is too small to shave a {border} px border")
    return img[border:-border, border:-border]


def _prepare(
    a: np.ndarray, b: np.ndarray, border: int, y_channel: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes, optionally convert to Y, shave, and return float64 arrays."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if y_channel:
        a, b = rgb_to_y(a), rgb_to_y(b)
    return shave(a, border).astype(np.float64), shave(b, border).astype(np.float64)


def psnr(
    a: np.ndarray,
    b: np.ndarray,
    *,
    border: int = 4,
    y_channel: bool = True,
    data_range: float = 255.0,
) -> float:
    """Peak signal-to-noise ratio in dB of two images with values in 0..``data_range``.

    With ``y_channel`` the RGB images are compared on BT.601 luma; otherwise on all channels.
    Identical images give ``inf`` (no noise at all), as scikit-image does.
    """
    x, y = _prepare(a, b, border, y_channel)
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def _gaussian_kernel(size: int = _SSIM_WIN, sigma: float = _SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian taps; the outer product is MATLAB's ``fspecial('gaussian')``."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _filter_valid(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 2-D filtering of a 2-D float64 array, 'valid' region only (no padding)."""
    n = kernel.size
    h, w = img.shape
    rows = sum(kernel[i] * img[i : h - n + 1 + i, :] for i in range(n))
    return sum(kernel[i] * rows[:, i : w - n + 1 + i] for i in range(n))


def _ssim_2d(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Mean SSIM of two 2-D float64 arrays, Wang et al.'s reference ``ssim_index.m``."""
    if min(x.shape) < _SSIM_WIN:
        raise ValueError(f"SSIM needs at least {_SSIM_WIN}x{_SSIM_WIN} px, got {x.shape}")
    k = _gaussian_kernel()
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    mu_x, mu_y = _filter_valid(x, k), _filter_valid(y, k)
    var_x = _filter_valid(x * x, k) - mu_x**2
    var_y = _filter_valid(y * y, k) - mu_y**2
    cov = _filter_valid(x * y, k) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return float(np.mean(num / den))


def ssim(
    a: np.ndarray,
    b: np.ndarray,
    *,
    border: int = 4,
    y_channel: bool = True,
    data_range: float = 255.0,
) -> float:
    """Structural similarity (Wang et al. 2004) in [-1, 1]; 1.0 for identical images.

    Gaussian 11x11 window (sigma 1.5), K1=0.01, K2=0.03, 'valid' filtering as in the reference
    MATLAB code. With ``y_channel`` it is computed on BT.601 luma; otherwise each channel is
    scored separately and the scores averaged (BasicSR's convention).
    """
    x, y = _prepare(a, b, border, y_channel)
    if x.ndim == 2:
        return _ssim_2d(x, y, data_range)
    scores = [_ssim_2d(x[..., c], y[..., c], data_range) for c in range(x.shape[2])]
    return float(np.mean(scores))
