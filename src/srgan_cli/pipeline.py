"""The data path: resolve weights -> load -> tile -> infer -> save -> report.

``Upscaler`` is the core object (like rembg's session): it loads the generator once and turns
numpy arrays or PIL Images into upscaled ones of the same type (4x, or ``outscale`` times
with a Lanczos resize after the model). ``run_jobs`` runs a batch of files through it with
decoding and encoding (PNG, JPEG, WebP or TIFF) on two helper threads, so the model (which
releases the GIL inside TensorFlow) is rarely idle; the stages live in ``srgan_cli.batch``.
No click, no globbing, no progress bars: front ends plan ``Job`` objects with
``srgan_cli.jobs`` and show progress through the callbacks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import numpy as np
from PIL import Image

from srgan_cli import SCALE
from srgan_cli.batch import (
    Batch,
    BatchOptions,
    format_refusal,
)
from srgan_cli.errors import ImageError, UsageError
from srgan_cli.formats import DEFAULT_QUALITY
from srgan_cli.imageio import (
    DEFAULT_COMPRESS_LEVEL,
    DEFAULT_MAX_PIXELS,
    DecodedImage,
    from_array,
    from_pil,
    probe_image,
    to_array,
    to_pil,
)
from srgan_cli.jobs import Job
from srgan_cli.resize import check_outscale, output_size, resize_alpha, resize_pixels
from srgan_cli.results import (  # noqa: F401 - the report functions are re-exported
    REPORT_SUFFIXES,
    ImageResult,
    build_report,
    check_report_path,
    output_name,
    result_dict,
    write_report,
)
from srgan_cli.split import Predict, for_arch
from srgan_cli.tiling import (
    DEFAULT_TILE_PAD,
    auto_tile_size,
    peak_bytes_per_px,
    plan_tiles,
    upscale_tiled,
)
from srgan_cli.weights import (
    WeightCard,
    load_generator,
    named_for,
    resolve,
    spec_of,
)

if TYPE_CHECKING:
    import keras

    from srgan_cli.archs import ModelSpec
    from srgan_cli.modelset import AnyUpscaler

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
"""``--precision`` values: ``auto`` picks bf16 only where the CPU computes it natively."""

# Peak-RSS target for a whole `srgan upscale` process (the bound is 2.5 GB for a
# 2000x2000 input). From it we subtract what is not activations: TensorFlow + the model
# (~0.7 GB measured) and the output twice (our buffer + Pillow's copy while encoding). What
# is left, never less than MIN_ACTIVATION_BUDGET, sizes the tiles: small images run whole
# (fastest), big ones in tiles, and a huge output grows memory only by its own buffers.
DEFAULT_MEMORY_BUDGET: int = 2_250_000_000
RUNTIME_BASELINE_BYTES: int = 750_000_000
MIN_ACTIVATION_BUDGET: int = 768 << 20
"""Bytes of activations one tile may use when ``tile`` is automatic (see ``auto_tile_size``)."""

_CPU_FLAGS = ("avx512f", "avx512_bf16", "amx_bf16")

OnTile = Callable[[], None]
ImageLike = TypeVar("ImageLike", np.ndarray, Image.Image)
"""What the library takes and gives back: a numpy array or a PIL Image, the same type out."""


def cpu_features(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> dict[str, bool]:
    """Which of avx512f, avx512_bf16 and amx_bf16 the CPU reports (all False if unknown).

    bf16 matmuls are only faster than fp32 with native bf16 instructions (AVX512_BF16 or
    AMX); elsewhere oneDNN emulates them and ``mixed_bfloat16`` is slower.
    """
    flags: set[str] = set()
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags.update(line.partition(":")[2].split())
                    break
    except OSError:
        pass
    return {flag: flag in flags for flag in _CPU_FLAGS}


def choose_precision(requested: str, features: dict[str, bool] | None = None) -> str:
    """Resolve ``auto`` to "bf16" (native bf16 support) or "fp32"; validate the others."""
    if requested not in PRECISIONS:
        raise UsageError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    if requested != "auto":
        return requested
    feats = cpu_features() if features is None else features
    return "bf16" if feats.get("avx512_bf16") or feats.get("amx_bf16") else "fp32"


def inference_threads() -> int:
    """Threads TensorFlow uses per op: its intra-op setting, or the usable cores when 0."""
    import tensorflow as tf

    configured = tf.config.threading.get_intra_op_parallelism_threads()
    if configured:
        return int(configured)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def upscale_alpha(alpha: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """HxW alpha (uint8/uint16) -> (scale*H)x(scale*W), bicubic (see ``resize.resize_alpha``)."""
    height, width = alpha.shape
    return resize_alpha(alpha, (width * scale, height * scale))


def inference_function(network: keras.Model, spec: ModelSpec) -> Predict:
    """How every front end runs a loaded network (NHWC float32 in and out): the same function
    in its fastest measured form. A 9x9 sub-pixel tail (ours, the seed's) becomes a 5x5 conv
    before the last shuffle (``model.for_inference``); RRDBNet, and those two with that fast
    tail, run their 2x/4x tail in row strips (``split.for_arch``, given the transformed
    model); the rest through ``predict_on_batch``."""
    from srgan_cli.model import for_inference, has_subpixel_tail  # keras: a model is needed

    if has_subpixel_tail(network):
        network = for_inference(network)
    return for_arch(network, spec)


class Upscaler:
    """Loads the model once (rembg-session style) and upscales arrays.

    ``model`` names shipped weights (``weights.MODEL_NAMES``) and ``weights`` is a
    ``.weights.h5`` file with its card; at most one is used (``weights`` wins). ``precision``
    is "auto", "fp32" or "bf16" (Keras ``mixed_bfloat16``: first/last convolutions stay
    float32). ``tile`` is the tile side in input pixels: None = the largest that keeps the
    process near ``memory_budget`` bytes (see DEFAULT_MEMORY_BUDGET), 0 = the whole image.
    ``tile_pad`` is the context in input pixels around each tile. ``tta`` averages the model
    over the 8 flips/rotations of every tile (``tta.self_ensemble``): a little more accurate,
    8 times the model time.
    """

    def __init__(
        self,
        model: str | None = None,
        weights: str | Path | None = None,
        *,
        precision: str = "auto",
        tile: int | None = None,
        tile_pad: int = DEFAULT_TILE_PAD,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        tta: bool = False,
    ) -> None:
        if tile is not None and tile < 0:
            raise UsageError(f"tile must be >= 0 (0 = whole image), got {tile}")
        if tile_pad < 0:
            raise UsageError(f"tile pad must be >= 0, got {tile_pad}")
        self.precision_used: str = choose_precision(precision)
        self.path: Path = resolve(model, weights)
        policy = "mixed_bfloat16" if self.precision_used == "bf16" else None
        network, card = load_generator(self.path, dtype_policy=policy)
        self.card: WeightCard = named_for(card, self.path)
        self.spec = spec_of(card)
        self.scale: int = self.spec.scale
        self._predict = inference_function(network, self.spec)
        self.name: str = self.card.name
        width = self.spec.params.get("num_feat", self.spec.params.get("channels"))
        self.bytes_per_px: float = peak_bytes_per_px(self.spec.arch, width)
        self.tile = tile
        self.tile_pad = tile_pad
        self.memory_budget = memory_budget
        self.tta = tta

    def pick(self, source: Any = None) -> Upscaler:
        """This model, whatever the input (``modelset.ModelSet.pick`` chooses per input)."""
        return self

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        """The model on one batch, or its 8-view self-ensemble when ``tta`` is on."""
        if self.tta:
            from srgan_cli.tta import self_ensemble

            return self_ensemble(self._infer_once, batch)
        return self._infer_once(batch)

    def _infer_once(self, batch: np.ndarray) -> np.ndarray:
        """1xHxWx3 float32 in [0, 1] -> 1x(scale*H)x(scale*W)x3 float32.

        A model that needs sides in multiples of ``spec.input_multiple`` (pixel-unshuffle
        inputs) gets the batch reflect-padded up to them, and its output is cropped back.

        The model runs as ``split.for_arch`` says (RRDBNet: its upsampler in row strips,
        same output, under a third of the memory). ``predict_on_batch`` keeps a compiled
        graph (it generalises to any size after the second shape); measured on the 16x64
        generator, 128x128 input, 2 cores: 0.52 s vs 0.64 s for eager ``model(x)`` in fp32,
        0.40 s vs 0.49 s in bf16 (before the ``for_inference`` tail, which brought them to
        0.39 s and 0.26 s).
        """
        height, width = batch.shape[1:3]
        padded = pad_to_multiple(batch, self.spec.input_multiple)
        out = self._predict(padded)
        return out[:, : height * self.scale, : width * self.scale]

    def tile_size(self, height: int, width: int) -> int:
        """The tile side used for an image of this size (0 = whole image), a multiple of the
        model's ``input_multiple`` so that tiles meet its pixel-unshuffle grid."""
        if self.tile is not None:
            return _round_up(self.tile, self.spec.input_multiple)
        output_bytes = 2 * (self.scale * self.scale * height * width * 3)
        budget = self.memory_budget - RUNTIME_BASELINE_BYTES - output_bytes
        budget = max(budget, min(MIN_ACTIVATION_BUDGET, self.memory_budget))
        side = auto_tile_size(height, width, budget, self.bytes_per_px, pad=self.tile_pad)
        return _round_up(side, self.spec.input_multiple)

    @property
    def pad(self) -> int:
        """The tile context used: ``tile_pad`` rounded up to the model's input multiple."""
        return _round_up(self.tile_pad, self.spec.input_multiple)

    def tiles_for(self, height: int, width: int) -> int:
        """How many model calls an image of ``height`` x ``width`` input pixels takes."""
        return len(plan_tiles(height, width, self.tile_size(height, width), self.pad))

    def upscale(
        self, image: ImageLike, on_tile: OnTile | None = None, *, outscale: float | None = None
    ) -> ImageLike:
        """Upscale a numpy array or a PIL Image; the same type comes back.

        Arrays: HxWx3 RGB, HxWx4 RGBA or HxW gray, uint8 or uint16 (the dtype is kept).
        PIL Images: any mode ``read_image`` accepts; the result is in its output mode with the
        ICC profile in ``info``. ``outscale`` (0 < F <= the model's scale, default that
        scale): the model, then a Lanczos resize to F times the input size, rounded.
        ``on_tile`` is called after each tile.
        """
        if isinstance(image, np.ndarray):
            return to_array(self.upscale_image(from_array(image), on_tile, outscale=outscale))
        if isinstance(image, Image.Image):
            return to_pil(self.upscale_image(from_pil(image), on_tile, outscale=outscale))
        raise TypeError(f"expected a numpy array or a PIL Image, got {type(image).__name__}")

    def upscale_image(
        self, image: DecodedImage, on_tile: OnTile | None = None, *, outscale: float | None = None
    ) -> DecodedImage:
        """Upscale a decoded image to ``outscale`` (default: the model's scale) times its size.

        Colour goes through the model, then Lanczos to the output size; alpha goes
        straight to that size with bicubic (``resize.resize_alpha``). Mode, ICC profile and
        notes are carried over, so the output is written in the input's mode.
        """
        size = output_size(*image.size, self.check_outscale(outscale))
        rgb = resize_pixels(self._upscale_rgb(image.pixels, on_tile), size)
        alpha = None if image.alpha is None else resize_alpha(image.alpha, size)
        return DecodedImage(rgb, alpha, image.mode, image.icc_profile, list(image.notes))

    def check_outscale(self, outscale: float | None) -> float:
        """``outscale`` as a float, None = the model's scale; above that scale is refused."""
        return float(self.scale) if outscale is None else check_outscale(outscale, self.scale)

    def _upscale_rgb(self, pixels: np.ndarray, on_tile: OnTile | None = None) -> np.ndarray:
        """HxWx3 uint8/uint16 RGB -> (scale*H)x(scale*W)x3, same dtype, tiled; ``on_tile``
        per tile."""
        height, width = pixels.shape[:2]
        return upscale_tiled(
            pixels,
            self._infer,
            tile=self.tile_size(height, width),
            pad=self.pad,
            scale=self.scale,
            on_tile=on_tile,
        )


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def pad_to_multiple(batch: np.ndarray, multiple: int) -> np.ndarray:
    """NHWC ``batch`` with H and W padded (mirrored at the bottom/right) to ``multiple``."""
    height, width = batch.shape[1:3]
    extra_h, extra_w = -height % multiple, -width % multiple
    if not (extra_h or extra_w):
        return batch
    return np.pad(batch, ((0, 0), (0, extra_h), (0, extra_w), (0, 0)), mode="symmetric")


def refusal_from_header(
    job: Job, *, outscale: float = SCALE, max_pixels: int = DEFAULT_MAX_PIXELS
) -> str | None:
    """Why ``job`` would fail, as far as its input's header tells (no pixel is decoded):
    not an image, too many pixels, or a format that cannot hold it (alpha as JPEG). Front
    ends ask this before loading the model. Regular local files only: stdin, a FIFO or a
    process substitution would lose the bytes read here, and an object-store input would be
    fetched twice (the pipeline checks those as it reads).
    """
    if not isinstance(job.input, Path) or not job.input.is_file():
        return None
    try:
        mode, size = probe_image(job.input, max_pixels=max_pixels, name=job.display_name)
    except ImageError as err:
        return str(err)
    return format_refusal(job, mode, size, outscale)


def run_jobs(
    upscaler: AnyUpscaler,
    jobs: Sequence[Job],
    *,
    compress_level: int = DEFAULT_COMPRESS_LEVEL,
    quality: int = DEFAULT_QUALITY,
    outscale: float | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    overwrite: bool = False,
    skip_existing: bool = False,
    update: bool = False,
    stdin_bytes: bytes | None = None,
    stdout: BinaryIO | None = None,
    on_image: Callable[[ImageResult], None] | None = None,
    on_tile: Callable[[int, int], None] | None = None,
) -> list[ImageResult]:
    """Upscale every job to ``outscale`` times its size in its ``job.format``; one
    ``ImageResult`` per job, in job order. Each image goes through ``upscaler.pick`` of its
    file (a ``ModelSet`` chooses by the header; an ``Upscaler`` is always itself).

    ``compress_level`` (PNG, 0-9) and ``quality`` (JPEG/WebP, 1-100) tune the encoders.
    A failure (unreadable input, existing output, an image its format cannot hold such as
    alpha as JPEG, write error) is recorded in that result and the batch goes on. No job
    ever writes over an input of the batch, and two jobs never write the same output.
    An existing output is replaced with ``overwrite``, kept with ``skip_existing``,
    replaced only when older than its input with ``update`` (make's rule), and is an error
    otherwise (``jobs.OutputClaims``). ``on_image(result)`` is called from the writer
    thread, in job order, as each job finishes; ``on_tile(done, total)`` from the calling
    thread after each tile. KeyboardInterrupt stops both helper threads (the file being
    written is completed or removed by ``write_atomic``) and propagates.
    """
    options = BatchOptions(
        compress_level,
        quality,
        upscaler.check_outscale(outscale),
        max_pixels,
        overwrite,
        skip_existing,
        update,
    )
    batch = Batch(
        upscaler,
        jobs,
        options,
        stdin_bytes=stdin_bytes,
        stdout=stdout,
        on_image=on_image,
        on_tile=on_tile,
    )
    return batch.run()
