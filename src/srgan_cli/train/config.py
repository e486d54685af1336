"""Training configuration: plain data, no Keras import, so ``srgan train --help`` is instant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STAGES = ("psnr", "gan")
DISC_KINDS = ("srgan", "unet")
STAGE_MODEL = {"psnr": "srresnet", "gan": "srgan"}
# VGG16's convolutions in order (index 0..12); the content loss taps some of them by name.
VGG_LAYERS = (
    "conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
    "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3",
)  # fmt: skip


def vgg_tap_indices(names: str, option: str = "vgg_taps") -> tuple[int, ...]:
    """``"conv2_2,conv5_3"`` -> ``(3, 12)``: the ``--vgg-taps`` option as conv indices.

    Deeper taps (SRGAN's VGG54, ESRGAN's conv5_4) judge texture and object parts rather than
    edges and pixels, which loosens the content loss's pull towards the blurry mean.
    """
    picked = [n.strip() for n in names.split(",") if n.strip()]
    if not picked or any(n not in VGG_LAYERS for n in picked):
        raise ValueError(f"{option} must be a comma list of {', '.join(VGG_LAYERS)}; got {names!r}")
    return tuple(sorted({VGG_LAYERS.index(n) for n in picked}))


def _default_generator() -> dict[str, Any]:
    return {"blocks": 16, "channels": 64, "batch_norm": False}


@dataclass
class TrainConfig:
    """Every knob of a run; saved as ``config.json`` in the run directory."""

    stage: str = "psnr"  # "psnr" -> srresnet, "gan" -> srgan
    data: str = "../shared/datasets/train"
    run_dir: str = "runs/psnr"
    steps: int = 20000
    batch: int = 16
    patch: int = 24  # LR patch side; HR is 4x
    lr: float = 2e-4
    lr_min_ratio: float = 0.01  # cosine decay to lr * this
    warmup_steps: int = 0
    log_every: int = 100
    checkpoint_minutes: float = 5.0
    max_minutes: float = 0.0  # 0 = no wall-clock limit
    val_images: int = 10
    seed: int = 0
    precision: str = "fp32"  # or "bf16" (mixed_bfloat16)
    degradation: str = "bicubic"  # or a random chain named in degrade.TRAINING_CHAINS
    scales: str = "1"  # training photos also used shrunk by these factors, e.g. "1,0.8,0.6"
    generator: dict[str, Any] = field(default_factory=_default_generator)
    init_weights: str = ""  # GAN stage: start from these generator weights (.weights.h5)
    vgg_weights: str = "../shared/weights/vgg16_imagenet.npz"
    pixel_weight: float = 1e-2
    lowres_weight: float = 0.0  # L1 on 4x4 box averages (colour / low frequencies)
    grid_weight: float = 0.0  # L1 on the period-4 sub-pixel pattern (anti-checkerboard)
    content_weight: float = 1.0
    vgg_pre_relu: bool = False  # content loss on VGG features before the ReLU (ESRGAN)
    vgg_taps: str = "conv2_2,conv3_3,conv4_3"  # VGG16 layers the content loss compares
    adv_weight: float = 5e-3
    relativistic: bool = False  # relativistic average discriminator (ESRGAN)
    disc_width: int = 64  # the discriminator's first-layer filters (SRGAN: 64); doubles 3 times
    disc_spectral_norm: bool = False  # spectral normalisation of every D layer (SNGAN)
    disc_kind: str = "srgan"  # "srgan": one logit per patch; "unet": one per pixel
    init_discriminator: str = ""  # GAN stage: start D from this GAN run's checkpoint
    disc_highpass: bool = False  # D sees only the high-pass residual (frequency separation)
    fm_weight: float = 0.0  # feature matching: L1 between D's hidden maps of SR and HR
    texture_weight: float = 0.0  # EnhanceNet texture loss: local Gram matrices at texture_taps
    texture_taps: str = "conv2_2,conv3_3"  # VGG16 layers whose local statistics are matched
    ema: float = 0.0  # decay of a moving average of the generator's weights; 0 = off

    def check(self) -> None:
        """Reject settings that cannot train, with a message naming the option."""
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, not {self.stage!r}")
        if self.steps % self.log_every:
            raise ValueError(
                f"steps ({self.steps}) must be a multiple of log_every ({self.log_every})"
            )
        from srgan_cli.degrade import TRAINING_DEGRADATIONS

        if self.degradation not in TRAINING_DEGRADATIONS:
            raise ValueError(
                f"degradation must be one of {TRAINING_DEGRADATIONS}, not {self.degradation!r}"
            )
        vgg_tap_indices(self.vgg_taps)
        from srgan_cli.train.data import parse_scales

        parse_scales(self.scales)
        if self.disc_width < 1:
            raise ValueError(f"disc_width must be at least 1, not {self.disc_width}")
        if self.disc_kind not in DISC_KINDS:
            raise ValueError(f"disc_kind must be one of {DISC_KINDS}, not {self.disc_kind!r}")
        if self.disc_kind == "unet" and self.patch % 2:
            raise ValueError(
                f"disc_kind unet needs an even patch (HR side a multiple of 8), not {self.patch}"
            )
        for name in ("fm_weight", "texture_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)}")
        vgg_tap_indices(self.texture_taps, "texture_taps")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), not {self.ema}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, not {self.precision!r}")
