"""LPIPS-Alex (v0.1) perceptual distance, in Keras 3, from converted torchvision weights.

LPIPS (Zhang et al. 2018) compares deep features instead of pixels, so it ranks sharp but
not pixel-exact SR output (SRGAN) closer to what people prefer than PSNR/SSIM do. Lower is
better; 0 means identical. The weights are not shipped: pass the ``lpips_alex.npz`` path
(see ``default_weights_path`` for where the team keeps it). Keras is imported lazily so
importing this module stays cheap.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from srgan_cli.errors import WeightsError

# Where the team's shared checkout keeps the weights, relative to the repository root. This is
# only a candidate for scripts run from the repo: an installed tool must take a path instead.
DEFAULT_LPIPS_WEIGHTS = Path("../shared/weights/lpips_alex.npz")

# LPIPS' ScalingLayer: inputs in [-1, 1] are mapped to (x - shift) / scale, per RGB channel.
_SHIFT = np.array([-0.030, -0.088, -0.188], dtype=np.float32)
_SCALE = np.array([0.458, 0.448, 0.450], dtype=np.float32)
_EPS = 1e-10
_TAPS = 5

# AlexNet ``features`` as torchvision defines it: (kernel, stride, torch padding, pool after).
_ALEX_CONVS = (
    (11, 4, 2, True),
    (5, 1, 2, True),
    (3, 1, 1, False),
    (3, 1, 1, False),
    (3, 1, 1, False),
)


class LpipsWeightsMissing(WeightsError, FileNotFoundError):
    """The LPIPS weights file is absent (a ``FileNotFoundError`` and a ``WeightsError``)."""


def default_weights_path() -> Path:
    """The candidate LPIPS weights path (relative to the repo root); callers check it exists."""
    return DEFAULT_LPIPS_WEIGHTS


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise LpipsWeightsMissing(
            f"LPIPS weights not found: {path} (expected lpips_alex.npz with conv0..4 and lin0..4)"
        )
    with np.load(path) as data:
        arrays = {key: data[key].astype(np.float32) for key in data.files}
    needed = [
        f"{key}{i}{end}"
        for i in range(_TAPS)
        for key, end in (("conv", "_kernel"), ("conv", "_bias"), ("lin", ""))
    ]
    missing = [key for key in needed if key not in arrays]
    if missing:
        raise WeightsError(f"{path} is not an LPIPS-Alex file: missing {', '.join(missing)}")
    return arrays


def _build_features(arrays: dict[str, np.ndarray]):
    """Keras model: normalised RGB (NHWC) -> the 5 AlexNet ReLU outputs LPIPS taps."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(None, None, 3), dtype="float32")
    x, taps = inputs, []
    for i, (kernel, stride, pad, pool_after) in enumerate(_ALEX_CONVS):
        # torch pads explicitly then convolves 'valid'; Keras 'same' pads differently at
        # stride 4, so it would shift every feature by a pixel.
        x = layers.ZeroPadding2D(pad)(x)
        weights = [arrays[f"conv{i}_kernel"], arrays[f"conv{i}_bias"]]
        conv = layers.Conv2D(weights[1].size, kernel, strides=stride, activation="relu")
        x = conv(x)
        conv.set_weights(weights)
        taps.append(x)
        if pool_after:
            x = layers.MaxPooling2D(pool_size=3, strides=2, padding="valid")(x)
    return keras.Model(inputs, taps, name="lpips_alex_features")


def _to_network_input(img: np.ndarray) -> np.ndarray:
    """uint8 RGB HxWx3 (or HxW gray) -> 1xHxWx3 float32 in LPIPS' normalised range."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {img.shape}")
    x = img.astype(np.float32) / 127.5 - 1.0
    return ((x - _SHIFT) / _SCALE)[None]


def _unit_normalise(feat: np.ndarray) -> np.ndarray:
    """Scale each feature vector (over channels) to unit length, as LPIPS does."""
    norm = np.sqrt(np.sum(feat * feat, axis=-1, keepdims=True))
    return feat / (norm + _EPS)


class LpipsAlex:
    """LPIPS-Alex v0.1 distance between two uint8 RGB images of the same size.

    Build it once and reuse it: construction loads ~10 MB of weights and builds the network.
    """

    def __init__(self, weights_path: str | os.PathLike) -> None:
        arrays = _load_npz(Path(weights_path))
        self._heads = [arrays[f"lin{i}"].reshape(-1) for i in range(_TAPS)]
        self._features = _build_features(arrays)

    def _taps(self, img: np.ndarray) -> list[np.ndarray]:
        outputs = self._features(_to_network_input(img), training=False)
        return [_unit_normalise(np.asarray(t, dtype=np.float64)[0]) for t in outputs]

    def __call__(self, a: np.ndarray, b: np.ndarray) -> float:
        """LPIPS distance (>= 0, typically 0..1; lower is more similar) of HxWx3 uint8 RGB."""
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
        total = 0.0
        for fa, fb, head in zip(self._taps(a), self._taps(b), self._heads, strict=True):
            total += float(np.mean(((fa - fb) ** 2) @ head))
        return total
