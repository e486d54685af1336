"""Training pairs: HR photos, their LR, random aligned patches.

With ``degradation="bicubic"`` the LR of each whole photo is made once with the evaluation
protocol's ``bicubic_downscale`` so training sees exactly the degradation it is scored on.
With ``"real"`` each HR patch is degraded on the fly by a random chain
(``degrade.RealDegradation``) drawn from the step's generator. A batch is a pure function of
``(seed, step)``: resuming at step N replays the same batches however far ahead a data
loader prefetched, which is what makes ``--resume`` continue exactly.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from srgan_cli import SCALE
from srgan_cli.degrade import TRAINING_CHAINS, TRAINING_DEGRADATIONS
from srgan_cli.metrics import bicubic_downscale, crop_to_multiple

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class ImagePair:
    """One photo: ``hr`` uint8 HxWx3 (multiple of 4) and its uint8 ``lr`` (H/4 x W/4 x 3)."""

    name: str
    hr: np.ndarray
    lr: np.ndarray


def list_images(folder: str | Path) -> list[Path]:
    """All image files below ``folder``, sorted so the split is the same on every machine."""
    root = Path(folder)
    files = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def split_validation(files: list[Path], count: int) -> tuple[list[Path], list[Path]]:
    """Hold out ``count`` images, evenly spaced through the sorted list, for validation."""
    if count <= 0:
        return list(files), []
    stride = max(1, len(files) // count)
    held = set(range(stride // 2, len(files), stride)[:count])
    train = [f for i, f in enumerate(files) if i not in held]
    val = [f for i, f in enumerate(files) if i in held]
    return train, val


def load_pair(path: Path) -> ImagePair:
    with Image.open(path) as img:
        hr = crop_to_multiple(np.asarray(img.convert("RGB")))
    return ImagePair(path.stem, hr, bicubic_downscale(hr))


def load_pairs(
    files: list[Path], min_lr_side: int = 1, scales: tuple[float, ...] = (1.0,)
) -> list[ImagePair]:
    """Load photos (each at every scale) whose LR is at least ``min_lr_side`` on both sides."""
    pairs = [q for f in files for q in rescaled(load_pair(f), scales)]
    return [p for p in pairs if min(p.lr.shape[:2]) >= min_lr_side]


def rescaled(pair: ImagePair, scales: tuple[float, ...]) -> list[ImagePair]:
    """The photo at each scale: a shrunk copy (Pillow bicubic) is a new HR with its own LR.

    This is the 291-image recipe of VDSR, DRRN and IDN (scales 0.6-1.0): with only 281
    training photos a PSNR-stage run overfits (held-out PSNR falls while the training loss
    does), and a shrunk photo packs more detail per pixel than any crop of the original.
    """
    out = []
    for scale in scales:
        if scale == 1.0:
            out.append(pair)
            continue
        h, w = pair.hr.shape[:2]
        size = (max(SCALE, round(w * scale)), max(SCALE, round(h * scale)))
        small = np.asarray(Image.fromarray(pair.hr).resize(size, Image.Resampling.BICUBIC))
        hr = crop_to_multiple(small)
        out.append(ImagePair(f"{pair.name}@{scale:g}", hr, bicubic_downscale(hr)))
    return out


def parse_scales(text: str) -> tuple[float, ...]:
    """``"1,0.8,0.6"`` -> (1.0, 0.8, 0.6); each scale must be in (0, 1]."""
    try:
        scales = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"scales must be comma-separated numbers, not {text!r}") from None
    if not all(0.0 < s <= 1.0 for s in scales):
        raise ValueError(f"each scale must be in (0, 1], not {text!r}")
    return scales


class PatchSampler:
    """Random aligned LR/HR patches with flips and 90-degree rotations, float32 in [0, 1]."""

    def __init__(
        self,
        pairs: list[ImagePair],
        patch: int,
        batch: int,
        seed: int,
        degradation: str = "bicubic",
    ) -> None:
        if not pairs:
            raise ValueError(f"no training image is at least {patch} px after x1/{SCALE}")
        self.pairs, self.patch, self.batch, self.seed = pairs, patch, batch, seed
        self.degrade = lr_maker(degradation)
        areas = np.array([p.lr.shape[0] * p.lr.shape[1] for p in pairs], dtype=np.float64)
        self._weights = areas / areas.sum()  # big photos hold more distinct patches

    def batch_at(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """The batch for global ``step``: (lr NxPxPx3, hr Nx4Px4Px3), deterministic."""
        rng = np.random.default_rng([self.seed, step])
        damage = np.random.default_rng([self.seed, step, 1])  # own stream: same patches
        picks = rng.choice(len(self.pairs), size=self.batch, p=self._weights)
        lrs, hrs = zip(*(self._patch(self.pairs[i], rng, damage) for i in picks), strict=True)
        return np.stack(lrs).astype(np.float32) / 255.0, np.stack(hrs).astype(np.float32) / 255.0

    def _patch(
        self, pair: ImagePair, rng: np.random.Generator, damage: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        p = self.patch
        y = int(rng.integers(0, pair.lr.shape[0] - p + 1))
        x = int(rng.integers(0, pair.lr.shape[1] - p + 1))
        lr = pair.lr[y : y + p, x : x + p]
        hr = pair.hr[y * SCALE : (y + p) * SCALE, x * SCALE : (x + p) * SCALE]
        if self.degrade is not None:
            lr = self.degrade(hr, damage)
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        lr, hr = np.rot90(lr, k), np.rot90(hr, k)
        if flip:
            lr, hr = lr[:, ::-1], hr[:, ::-1]
        return lr, hr

    def batches(self, start_step: int, threads: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Endless batches from ``start_step`` on, as Keras ``fit`` wants them.

        With ``threads`` > 1 the next ``2 * threads`` batches are built ahead in a thread pool
        (numpy and Pillow release the GIL in the copies and resizes that dominate), so a fast
        accelerator is not left waiting on one Python thread. The sequence is unchanged:
        each batch is a function of its step alone.
        """
        if threads <= 1:
            yield from map(self.batch_at, itertools.count(start_step))
            return
        steps = itertools.count(start_step)
        with ThreadPoolExecutor(threads, thread_name_prefix="srgan-batches") as pool:
            ahead = deque(pool.submit(self.batch_at, next(steps)) for _ in range(2 * threads))
            while True:
                batch = ahead.popleft().result()
                ahead.append(pool.submit(self.batch_at, next(steps)))
                yield batch


def lr_maker(degradation: str):
    """None for the precomputed protocol LR, else ``f(hr_patch, rng) -> lr_patch``."""
    if degradation not in TRAINING_DEGRADATIONS:
        raise ValueError(f"degradation must be one of {TRAINING_DEGRADATIONS}, not {degradation!r}")
    chain = TRAINING_CHAINS.get(degradation)
    return chain.apply if chain is not None else None


def validation_lr(hr: np.ndarray, degradation: str, index: int) -> np.ndarray:
    """The LR a validation photo is scored on: the training chain, fixed by its ``index``.

    Checkpoints are chosen on held-out training photos degraded the way training degrades,
    never on a benchmark set, so a choice cannot be tuned to the benchmarks' degradations.
    """
    make = lr_maker(degradation)
    if make is None:
        return bicubic_downscale(hr)
    return make(hr, np.random.default_rng([12345, index]))


def center_crops(
    pairs: list[ImagePair], lr_side: int, degradation: str = "bicubic"
) -> tuple[np.ndarray, np.ndarray]:
    """Fixed validation batch: the central ``lr_side`` LR square of each photo (+ its HR)."""
    lrs, hrs = [], []
    for p in pairs:
        side = min(lr_side, *p.lr.shape[:2])
        y, x = (p.lr.shape[0] - side) // 2, (p.lr.shape[1] - side) // 2
        lrs.append(p.lr[y : y + side, x : x + side][:lr_side, :lr_side])
        hrs.append(p.hr[y * SCALE : (y + side) * SCALE, x * SCALE : (x + side) * SCALE])
    side = min(a.shape[0] for a in lrs)
    hrs = [a[: side * SCALE, : side * SCALE] for a in hrs]
    if degradation == "bicubic":
        lrs = [a[:side, :side] for a in lrs]
    else:
        lrs = [validation_lr(hr, degradation, i) for i, hr in enumerate(hrs)]
    return np.stack(lrs), np.stack(hrs)
