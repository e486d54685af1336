"""Metrics: PSNR/SSIM agree with scikit-image; LPIPS and the protocol reproduce Set5 bicubic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from srgan_cli.errors import WeightsError
from srgan_cli.metrics import (
    bicubic_downscale,
    bicubic_upscale,
    crop_to_multiple,
    psnr,
    rgb_to_y,
    shave,
    ssim,
)

SHARED = Path(__file__).parents[1] / ".." / "shared"
LPIPS_WEIGHTS = SHARED / "weights" / "lpips_alex.npz"
SET5 = SHARED / "datasets" / "benchmark" / "Set5"
needs_lpips = pytest.mark.skipif(
    not LPIPS_WEIGHTS.is_file(), reason=f"LPIPS weights not found at {LPIPS_WEIGHTS}"
)


def photo_pair(seed: int, size: tuple[int, int] = (48, 40)) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random RGB image and a noisy copy (uint8), so SSIM is neither 0 nor 1."""
    rng = np.random.default_rng(seed)
    h, w = size
    small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    clean = np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))
    noisy = np.clip(clean + rng.normal(0, 12, clean.shape), 0, 255).astype(np.uint8)
    return clean, noisy


def skimage_ssim(x: np.ndarray, y: np.ndarray, **kwargs) -> float:
    return structural_similarity(
        x,
        y,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255.0,
        **kwargs,
    )


def test_rgb_to_y_known_values():
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]])
    y = rgb_to_y(rgb.astype(np.uint8))
    assert y.dtype == np.float64 and y.shape == (1, 5)
    np.testing.assert_allclose(y[0], [16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966])


def test_rgb_to_y_passes_grayscale_through():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    y = rgb_to_y(gray)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, gray)


def test_shave():
    img = np.zeros((10, 12, 3))
    assert shave(img, 4).shape == (2, 4, 3)
    assert shave(img, 0) is img
    with pytest.raises(ValueError):
        shave(img, 5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psnr_matches_skimage(seed):
    a, b = photo_pair(seed)
    ya, yb = shave(rgb_to_y(a), 4), shave(rgb_to_y(b), 4)
    expected = peak_signal_noise_ratio(ya, yb, data_range=255.0)
    assert psnr(a, b) == pytest.approx(expected, rel=1e-12)
    rgb_expected = peak_signal_noise_ratio(a, b, data_range=255)
    assert psnr(a, b, border=0, y_channel=False) == pytest.approx(rgb_expected, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_matches_skimage(seed):
    a, b = photo_pair(seed)
    ya, yb = shave(rgb_to_y(a), 4), shave(rgb_to_y(b), 4)
    # skimage filters the whole image ('reflect' edges) and then averages only the map away
    # from the (win_size - 1) // 2 = 5 px rim: exactly the 'valid' region Wang et al. use.
    score = ssim(a, b)
    assert 0.2 < score < 0.99
    assert score == pytest.approx(skimage_ssim(ya, yb), abs=1e-9)
    rgb = ssim(a, b, border=0, y_channel=False)
    assert rgb == pytest.approx(skimage_ssim(a, b, channel_axis=-1), abs=1e-9)


def test_identical_images():
    a, _ = photo_pair(3)
    assert psnr(a, a) == float("inf")
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_metrics_reject_mismatched_shapes():
    a, b = photo_pair(4)
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(a, b[:-1])
    with pytest.raises(ValueError, match="differ in shape"):
        ssim(a, b[:, :-1])


def test_lpips_missing_weights_is_a_clear_error(tmp_path):
    from srgan_cli.lpips import LpipsAlex

    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match=r"nope\.npz"):
        LpipsAlex(missing)
    with pytest.raises(WeightsError):
        LpipsAlex(missing)


@pytest.fixture(scope="module")
def lpips():
    from srgan_cli.lpips import LpipsAlex

    return LpipsAlex(LPIPS_WEIGHTS)


@needs_lpips
def test_lpips_identity_and_order(lpips):
    a, b = photo_pair(5, size=(64, 72))
    assert lpips(a, a) == 0.0
    noisy = lpips(a, b)
    assert noisy > 0.0
    assert lpips(b, a) == pytest.approx(noisy, rel=1e-6)
    gray = a[..., 0]
    assert lpips(gray, gray) == 0.0
    assert lpips(gray, b[..., 0]) == pytest.approx(
        lpips(np.stack([gray] * 3, -1), np.stack([b[..., 0]] * 3, -1)), rel=1e-6
    )


@pytest.mark.slow
@needs_lpips
@pytest.mark.skipif(not SET5.is_dir(), reason=f"Set5 not found at {SET5}")
def test_set5_bicubic_reference_numbers(lpips):
    scores = []
    for path in sorted(SET5.glob("*.png")):
        hr = crop_to_multiple(np.asarray(Image.open(path).convert("RGB")))
        up = bicubic_upscale(bicubic_downscale(hr))
        scores.append((psnr(hr, up), ssim(hr, up), lpips(hr, up)))
    assert len(scores) == 5
    mean_psnr, mean_ssim, mean_lpips = np.mean(scores, axis=0)
    assert mean_psnr == pytest.approx(28.43, abs=0.01)
    assert mean_ssim == pytest.approx(0.811, abs=0.002)
    assert mean_lpips == pytest.approx(0.340, abs=0.005)
