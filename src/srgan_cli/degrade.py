"""Degradations as data: how an HR photo becomes the LR input a model sees.

Two uses share these steps. ``srgan eval --degradation CHAIN`` scores a model on a fixed,
named chain (``bicubic+jpeg75``: Pillow bicubic x1/4, then JPEG quality 75), so anyone can
reproduce a row from its name. ``srgan train --degradation real`` draws a random chain per
training patch (blur, any resizer, noise, JPEG, sometimes twice, as Real-ESRGAN does) from a
generator seeded by the step, so a resumed run sees the very same patches.

Images are uint8 HxWx3 RGB arrays throughout; noise sigmas are in grey levels (0..255).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from srgan_cli import SCALE
from srgan_cli.errors import UsageError

RESIZERS: dict[str, int] = {
    "bicubic": Image.BICUBIC,
    "bilinear": Image.BILINEAR,
    "lanczos": Image.LANCZOS,
    "box": Image.BOX,
    "nearest": Image.NEAREST,
}
DEFAULT_CHAIN = "bicubic"
_STEP = re.compile(r"^(jpeg|noise)(\d+(?:\.\d+)?)$")


# -- the steps ------------------------------------------------------------------------------


def resize(image: np.ndarray, size: tuple[int, int], resizer: str) -> np.ndarray:
    """Resize to ``size`` = (width, height) with one of ``RESIZERS`` (Pillow, antialiased)."""
    return np.asarray(Image.fromarray(image).resize(size, RESIZERS[resizer]))


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode as a baseline JPEG (4:2:0, Pillow's default) at ``quality``."""
    return decode(encode(image, "JPEG", quality=int(quality)))


def encode(image: np.ndarray, file_format: str, **options: int) -> bytes:
    """The file Pillow writes for ``image`` in ``file_format`` (JPEG, PNG...)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=file_format, **options)
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray:
    """An encoded image file -> HxWx3 uint8 RGB."""
    with Image.open(io.BytesIO(data)) as decoded:
        return np.asarray(decoded.convert("RGB"))


def gaussian_noise(
    image: np.ndarray, sigma: float, rng: np.random.Generator, gray: bool = False
) -> np.ndarray:
    """Add zero-mean Gaussian noise of ``sigma`` grey levels (one field for all if ``gray``)."""
    shape = (*image.shape[:2], 1) if gray else image.shape
    noise = rng.normal(0.0, sigma, size=shape)
    return _to_uint8(image + noise)


def poisson_noise(
    image: np.ndarray, peak: float, rng: np.random.Generator, gray: bool = False
) -> np.ndarray:
    """Shot noise: photon counts with mean ``value / 255 * peak`` (lower peak = noisier)."""
    if gray:
        luma = image.mean(axis=2, keepdims=True) / 255.0
        noise = rng.poisson(luma * peak) / peak - luma
        return _to_uint8(image + noise * 255.0)
    counts = rng.poisson(image / 255.0 * peak)
    return _to_uint8(counts / peak * 255.0)


def gaussian_blur(image: np.ndarray, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """Blur with an anisotropic Gaussian rotated by ``theta`` radians (FFT, reflected edges)."""
    kernel = gaussian_kernel(sigma_x, sigma_y, theta)
    half = kernel.shape[0] // 2
    padded = np.pad(image.astype(np.float64), ((half, half), (half, half), (0, 0)), "reflect")
    shape = padded.shape[:2]
    spectrum = np.fft.rfft2(padded, axes=(0, 1)) * np.fft.rfft2(kernel, s=shape)[..., None]
    blurred = np.fft.irfft2(spectrum, s=shape, axes=(0, 1))
    height, width = image.shape[:2]
    return _to_uint8(blurred[2 * half : 2 * half + height, 2 * half : 2 * half + width])


def gaussian_kernel(sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """A normalised (2k+1)^2 anisotropic Gaussian kernel covering about 3 sigma."""
    half = max(1, int(np.ceil(3.0 * max(sigma_x, sigma_y))))
    axis = np.arange(-half, half + 1, dtype=np.float64)
    xx, yy = np.meshgrid(axis, axis)
    cos, sin = np.cos(theta), np.sin(theta)
    u, v = cos * xx + sin * yy, -sin * xx + cos * yy
    kernel = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return kernel / kernel.sum()


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def downscaled_size(image: np.ndarray, factor: int = SCALE) -> tuple[int, int]:
    """(width, height) of the x1/``factor`` LR of an image whose sides are multiples of it."""
    height, width = image.shape[:2]
    return width // factor, height // factor


# -- named chains (evaluation) --------------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    """A fixed chain: ``resizer`` for the x1/4, then ``steps`` as (kind, amount) in order."""

    name: str
    resizer: str
    steps: tuple[tuple[str, float], ...]

    def apply(self, hr: np.ndarray, seed: int = 0, factor: int = SCALE) -> np.ndarray:
        """HR (sides multiples of ``factor``) -> degraded x1/``factor`` LR (``factor`` 1: the
        HR itself, then the steps); noise is drawn from ``seed``."""
        return self.apply_encoded(hr, seed, factor)[0]

    def apply_encoded(
        self, hr: np.ndarray, seed: int = 0, factor: int = SCALE
    ) -> tuple[np.ndarray, bytes | None]:
        """``apply``, and the LR's file when the chain's last step is a JPEG encode: the
        bytes whose header ``--model auto`` reads (None otherwise: a lossless array)."""
        rng = np.random.default_rng(seed)
        size = downscaled_size(hr, factor)
        lr = hr if factor == 1 else resize(hr, size, self.resizer)
        data = None
        for kind, amount in self.steps:
            if kind == "jpeg":
                data = encode(lr, "JPEG", quality=int(amount))
                lr = decode(data)
            else:
                data = None
                lr = gaussian_noise(lr, amount, rng)
        return lr, data


def parse_chain(text: str) -> Chain:
    """``bicubic+jpeg75+noise5`` -> ``Chain``; ``UsageError`` naming what is wrong."""
    resizer, *rest = text.strip().lower().split("+")
    if resizer not in RESIZERS:
        raise UsageError(f"degradation {text!r} must start with a resizer: {', '.join(RESIZERS)}")
    steps = []
    for part in rest:
        match = _STEP.match(part)
        if match is None:
            raise UsageError(f"unknown degradation step {part!r} in {text!r} (use jpegQ, noiseS)")
        kind, amount = match.group(1), float(match.group(2))
        if kind == "jpeg" and not 1 <= amount <= 100:
            raise UsageError(f"JPEG quality must be 1-100, not {amount:g} in {text!r}")
        steps.append((kind, amount))
    return Chain("+".join([resizer, *rest]), resizer, tuple(steps))


PROTOCOL_CHAIN = parse_chain(DEFAULT_CHAIN)
"""The published protocol's degradation (Pillow bicubic x1/4): every scorer's default."""


def image_seed(name: str) -> int:
    """A seed fixed by the image's name, so a chain's noise is the same on every machine."""
    import zlib

    return zlib.crc32(name.encode("utf-8"))


# -- random chains (training) ---------------------------------------------------------------


@dataclass(frozen=True)
class RealDegradation:
    """The random chain of ``--degradation real`` and its probabilities.

    Ranges are for photos from the wild: phone and web JPEGs (quality 30-95) resized by
    whatever a site used, sensor noise up to ~10 grey levels, slight defocus. A share of
    patches stays clean so the model still does the published protocol well.
    """

    clean_p: float = 0.1
    blur_p: float = 0.6
    blur_sigma: tuple[float, float] = (0.2, 2.4)  # HR pixels
    second_pass_p: float = 0.4
    noise_p: float = 0.6
    gray_noise_p: float = 0.4
    poisson_p: float = 0.3
    noise_sigma: tuple[float, float] = (1.0, 10.0)
    poisson_peak: tuple[float, float] = (600.0, 6000.0)
    jpeg_p: float = 0.7
    jpeg_quality: tuple[int, int] = (30, 95)
    resizers: Sequence[str] = ("box", "bilinear", "bicubic", "lanczos")
    resizer_weights: Sequence[float] | None = None  # None: all equally likely

    def apply(self, hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One random LR (x1/4 of ``hr``, sides multiples of 4) drawn from ``rng``."""
        target = downscaled_size(hr)
        if rng.random() < self.clean_p:
            return resize(hr, target, self._resizer(rng))
        image = self._blur(hr, rng, 1.0)
        if rng.random() < self.second_pass_p:
            factor = rng.uniform(1.0, 2.0)  # first to between x1/4 and x1/2, damage, then x1/4
            middle = (max(1, round(target[0] * factor)), max(1, round(target[1] * factor)))
            image = self._damage(resize(image, middle, self._resizer(rng)), rng)
            image = self._blur(image, rng, 0.5)
        image = resize(image, target, self._resizer(rng))
        return self._damage(image, rng)

    def _resizer(self, rng: np.random.Generator) -> str:
        # p=None is the uniform draw every earlier run made, so their --resume stays exact.
        p = None
        if self.resizer_weights is not None:
            p = np.asarray(self.resizer_weights, dtype=float) / sum(self.resizer_weights)
        return str(rng.choice(self.resizers, p=p))

    def _blur(self, image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
        if rng.random() >= self.blur_p * strength:
            return image
        low, high = self.blur_sigma
        sx, sy = rng.uniform(low, high * strength, size=2)
        if rng.random() < 0.5:  # isotropic
            sy = sx
        return gaussian_blur(image, sx, sy, rng.uniform(0.0, np.pi))

    def _damage(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < self.noise_p:
            gray = bool(rng.random() < self.gray_noise_p)
            if rng.random() < self.poisson_p:
                image = poisson_noise(image, rng.uniform(*self.poisson_peak), rng, gray)
            else:
                image = gaussian_noise(image, rng.uniform(*self.noise_sigma), rng, gray)
        if rng.random() < self.jpeg_p:
            image = jpeg(image, int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)))
        return image


# Weighted like the pictures of issue 10 (web and phone JPEGs at quality 70-85, noise only now
# and then, any resizer): real-light put noise on 60% of patches, so the model learnt to wipe
# fine texture away as if it were noise, and 30% blur taught it to sharpen inputs that were
# already sharp (Lanczos). Here JPEG comes on 80% of patches, noise on 30%.
_REAL_WEB = RealDegradation(
    clean_p=0.15,
    blur_p=0.15,
    blur_sigma=(0.2, 1.2),
    second_pass_p=0.1,
    noise_p=0.3,
    noise_sigma=(1.0, 8.0),
    jpeg_p=0.8,
    jpeg_quality=(50, 95),
)

TRAINING_CHAINS: dict[str, RealDegradation] = {
    "real": RealDegradation(),
    # Closer to what people upscale (issue 10: web and phone JPEGs, mild sensor noise, any
    # resizer): less and weaker blur, fewer two-pass chains, no JPEG below quality 40, and a
    # larger clean share, so mild damage is not over-smoothed and clean input stays sharp.
    "real-light": RealDegradation(
        clean_p=0.2, blur_p=0.3, blur_sigma=(0.2, 1.5), second_pass_p=0.15, jpeg_quality=(40, 95)
    ),
    "real-web": _REAL_WEB,
    # real-web, with the sharp resizers (bicubic and Lanczos: the defaults of Pillow, browsers
    # and ImageMagick) on 70% of draws instead of 50%. A model that cannot tell the resizer
    # sharpens for the average one; on the held-out photos a Gaussian blur of 0.3 px on the LR
    # before the real-web model raised Lanczos+JPEG80 PSNR by 0.24 dB (LPIPS +0.006): it was
    # sharpening Lanczos and bicubic inputs as if they had come through box or bilinear.
    "real-web-sharp": replace(_REAL_WEB, blur_p=0.1, resizer_weights=(0.15, 0.15, 0.35, 0.35)),
}
TRAINING_DEGRADATIONS = ("bicubic", *TRAINING_CHAINS)
"""``srgan train --degradation`` names: the precomputed protocol LR, then each random chain."""
