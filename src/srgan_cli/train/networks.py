"""Networks used only in training: the discriminator, VGG16 features, and the GAN objective.

The GAN stage is expressed as one Keras model whose output is the per-sample loss terms, so
plain ``model.fit`` trains it on any backend (TensorFlow here, JAX/PyTorch on a GPU). Two
``stop_gradient`` cuts keep the players apart in a single backward pass: the discriminator
loss sees a detached SR image, and the generator's adversarial term runs the discriminator
with detached weights (``stateless_call``), so each player only learns from its own loss.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from srgan_cli.train.config import VGG_LAYERS, TrainConfig, vgg_tap_indices

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_VGG_TAPS = vgg_tap_indices(TrainConfig.vgg_taps)  # conv2_2, conv3_3, conv4_3
_VGG_POOL_AFTER = (1, 3, 6, 9)
_VGG_WIDTHS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
LOSS_TERMS = ("pixel", "lowres", "grid", "content", "adv", "fm", "texture", "disc")
TEXTURE_WINDOW = 32  # HR pixels per side of the tiles whose feature statistics are matched


def build_discriminator(
    width: int = 64, spectral_norm: bool = False, name: str = "discriminator"
) -> keras.Model:
    """SRGAN discriminator (conv/LeakyReLU, strided halvings) with global pooling.

    Global average pooling instead of the paper's flatten lets it judge any patch size.
    ``spectral_norm`` (SNGAN, Real-ESRGAN) bounds every layer's gain by 1, so D cannot win
    outright with ever larger logits and keeps giving the generator useful gradients.
    """
    conv = SpectralConv2D if spectral_norm else layers.Conv2D
    dense = SpectralDense if spectral_norm else layers.Dense
    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = layers.Rescaling(2.0, offset=-1.0)(inputs)
    for i, (mult, stride) in enumerate(
        [(1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2)]
    ):
        x = conv(width * mult, 3, strides=stride, padding="same", name=f"d_conv{i}")(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.LeakyReLU(0.2)(dense(width * 16, name="d_fc")(x))
    outputs = dense(1, name="d_logit", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def build_unet_discriminator(
    width: int = 64, spectral_norm: bool = False, name: str = "discriminator"
) -> keras.Model:
    """U-Net discriminator (Real-ESRGAN): one logit per pixel instead of one per patch.

    Three strided halvings, then back up to full resolution with skip connections. Judging
    every pixel tells the generator *where* an image looks fake (a JPEG block, a smear)
    rather than only that it does somewhere; the global D can only give it the latter.
    The HR side must be a multiple of 8.
    """
    conv = SpectralConv2D if spectral_norm else layers.Conv2D
    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = layers.Rescaling(2.0, offset=-1.0)(inputs)
    skips = [layers.LeakyReLU(0.2)(conv(width, 3, padding="same", name="u_conv0")(x))]
    for i, mult in enumerate((2, 4, 8), start=1):
        down = conv(width * mult, 4, strides=2, padding="same", name=f"u_down{i}")
        skips.append(layers.LeakyReLU(0.2)(down(skips[-1])))
    x = skips.pop()
    for i, mult in enumerate((4, 2, 1), start=1):
        x = layers.UpSampling2D(2, interpolation="bilinear")(x)
        x = layers.LeakyReLU(0.2)(conv(width * mult, 3, padding="same", name=f"u_up{i}")(x))
        x = layers.Add()([x, skips.pop()])
    for i in (1, 2):
        x = layers.LeakyReLU(0.2)(conv(width, 3, padding="same", name=f"u_conv{i}")(x))
    outputs = conv(1, 3, padding="same", name="u_logit", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


DISCRIMINATORS = {"srgan": build_discriminator, "unet": build_unet_discriminator}  # --disc-kind


def with_features(discriminator: keras.Model) -> keras.Model:
    """The same discriminator (shared layers and weights) that also returns its hidden maps.

    Outputs ``[logits, *maps]``, one map per LeakyReLU in order: what feature matching
    (``GanObjective(feature_matching=True)``) compares between SR and HR.
    """
    maps = [layer.output for layer in discriminator.layers if isinstance(layer, layers.LeakyReLU)]
    return keras.Model(discriminator.inputs[0], [discriminator.outputs[0], *maps])


def _flat_logits(logits):
    """(batch, n) float32 logits from either D: n = 1 (global) or one per pixel (U-Net)."""
    return ops.reshape(ops.cast(logits, "float32"), (ops.shape(logits)[0], -1))


def _spectral_normalized(layer: layers.Layer, training: bool):
    """``layer.kernel`` divided by its largest singular value, estimated by power iteration.

    One iteration per training call, carried across steps in the non-trainable ``sn_u``
    (saved with the checkpoint, so ``--resume`` stays exact). The kernel itself is never
    rewritten: the division is part of the graph, so D's gradients see it.
    """
    kernel = layer.kernel
    matrix = ops.reshape(ops.cast(kernel, "float32"), (-1, ops.shape(kernel)[-1]))
    u = ops.stop_gradient(layer.sn_u.value)
    v = _unit(ops.matmul(u, ops.transpose(ops.stop_gradient(matrix))))
    u = ops.stop_gradient(_unit(ops.matmul(v, ops.stop_gradient(matrix))))
    sigma = ops.sum(ops.matmul(v, matrix) * u)
    if training:
        layer.sn_u.assign(u)
    return kernel / ops.cast(sigma, kernel.dtype)


def _unit(x):
    return x / (ops.sqrt(ops.sum(ops.square(x))) + 1e-12)


def _add_sn_vector(layer: layers.Layer, width: int) -> None:
    layer.sn_u = layer.add_weight(
        shape=(1, width),
        initializer=keras.initializers.RandomNormal(seed=0),
        trainable=False,
        autocast=False,
        name="sn_u",
    )


class SpectralConv2D(layers.Conv2D):
    """``Conv2D`` with a spectrally normalised kernel (see ``_spectral_normalized``)."""

    def build(self, input_shape) -> None:
        super().build(input_shape)
        _add_sn_vector(self, self.filters)

    def call(self, inputs, training=False):
        outputs = self.convolution_op(inputs, _spectral_normalized(self, training))
        return ops.add(outputs, ops.reshape(self.bias, (1, 1, 1, self.filters)))


class SpectralDense(layers.Dense):
    """``Dense`` with a spectrally normalised kernel (see ``_spectral_normalized``)."""

    def build(self, input_shape) -> None:
        super().build(input_shape)
        _add_sn_vector(self, self.units)

    def call(self, inputs, training=False):
        return ops.add(ops.matmul(inputs, _spectral_normalized(self, training)), self.bias)


def build_vgg_features(
    weights_path: str | Path, taps: tuple[int, ...] = DEFAULT_VGG_TAPS, pre_relu: bool = False
):
    """Frozen ImageNet VGG16 trunk: RGB in [0, 1] -> ``{layer name: features}`` at ``taps``.

    Always a dict, one tap or many, so callers never special-case a lone tensor.
    ``pre_relu`` taps the convolutions before their ReLU (ESRGAN): after the ReLU most
    activations are zero and carry no sign, so a content loss there cannot see a global loss
    of contrast or a brightness shift, and GAN outputs drift in both.
    """
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"VGG16 weights not found: {path} (pass --vgg-weights)")
    data = np.load(path)
    inputs = keras.Input(shape=(None, None, 3), name="rgb")
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    x = layers.Rescaling(1.0 / std, offset=-mean / std)(inputs)
    outputs = {}
    for i in range(max(taps) + 1):
        conv = layers.Conv2D(_VGG_WIDTHS[i], 3, padding="same", name=f"vgg{i}")
        x = conv(x)
        conv.set_weights([data[f"conv{i}_kernel"], data[f"conv{i}_bias"]])
        if i in taps and pre_relu:
            outputs[VGG_LAYERS[i]] = x
        x = layers.ReLU()(x)
        if i in taps and not pre_relu:
            outputs[VGG_LAYERS[i]] = x
        if i in _VGG_POOL_AFTER and i < max(taps):
            x = layers.MaxPooling2D(2)(x)
    model = keras.Model(inputs, outputs, name="vgg16_features")
    model.trainable = False
    return model


def lattice_pattern(x):
    """Mean high-pass residual at each of the 4x4 sub-pixel phases: (B, 4, 4, C).

    Natural images have almost none; a generator with sub-pixel (pixel-shuffle) stages that
    learns a checkerboard shows it as a strong, fixed period-4 pattern here.
    """
    high = x - ops.average_pool(x, 3, 1, padding="same")
    shape = ops.shape(high)
    grid = ops.reshape(high, (shape[0], shape[1] // 4, 4, shape[2] // 4, 4, shape[3]))
    return ops.mean(grid, axis=(1, 3))


HIGHPASS_GAIN = 4.0
"""The high-pass residual of a training photo has about a quarter of its spread (std 0.063
against 0.231 on 20 of them); the gain gives D's spectrally normalised (1-Lipschitz) layers
inputs of about the range they see without ``highpass``."""


def highpass(x):
    """``x`` minus a smooth low-pass (a 5x5 box twice: about a Gaussian of sigma 2 px), times
    ``HIGHPASS_GAIN``: texture and edges without colour, shading or the LR-scale content.

    ``same`` pooling averages only the pixels inside the image, so a flat image gives zero
    up to its borders too.
    """
    low = ops.average_pool(ops.average_pool(x, 5, 1, padding="same"), 5, 1, padding="same")
    return (x - low) * HIGHPASS_GAIN


def _per_sample_mean(x):
    return ops.mean(ops.reshape(ops.cast(x, "float32"), (ops.shape(x)[0], -1)), axis=1)


class GanObjective(keras.Model):
    """Maps ``(lr, hr)`` to per-sample loss terms ``LOSS_TERMS``.

    ``lowres`` is L1 between the 4x4 box averages of SR and HR: it pins colour and low
    frequencies (where a GAN loses most of its PSNR) while leaving texture to the
    content and adversarial terms. ``grid`` is L1 between their ``lattice_pattern``s: it
    forbids the period-4 checkerboard that adversarial training otherwise grows.

    ``content`` is L1 between the VGG features at each tap.

    ``relativistic`` (ESRGAN's RaGAN) has D judge whether a real image looks *more* real than
    the batch's fakes on average, and G push the other way on both halves; the generator then
    also learns from the real images' logits, which sharpens texture on the same budget.

    ``disc_highpass`` shows D only ``highpass`` of SR and HR (frequency separation, Fritsche
    et al. 2019): colour and low frequencies are left to the pixel and low-res terms, which
    pin them to the target, and all of D's capacity goes to judging texture.

    ``feature_matching`` adds ``fm`` (pix2pixHD): L1 between D's hidden maps of SR and of HR,
    averaged over D's layers. The adversarial term only says whether D is fooled, and with a
    per-pixel D it saturates where D has already decided; matching D's features keeps a dense
    pull towards the statistics of real texture at every layer. Off, ``fm`` is zero.

    ``content_taps`` and ``texture_taps`` split the VGG features between the content term
    (all of them when None) and ``texture`` (EnhanceNet, Sajjadi et al. 2017): L1 between the
    Gram matrices of SR's and HR's features over ``TEXTURE_WINDOW`` tiles. It asks for the
    right local texture statistics without asking where each texel lies, which an aligned
    content loss does and which no upscaler can know; off (no taps), ``texture`` is zero.

    ``weighted_total`` is the loss ``fit`` minimises; every term is also logged as a metric.
    """

    def __init__(
        self,
        generator,
        discriminator,
        features,
        relativistic: bool = False,
        disc_highpass: bool = False,
        feature_matching: bool = False,
        content_taps: tuple[str, ...] | None = None,
        texture_taps: tuple[str, ...] = (),
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.generator, self.discriminator, self.features = generator, discriminator, features
        self.content_taps, self.texture_taps = content_taps, texture_taps
        self.relativistic, self.disc_highpass = relativistic, disc_highpass
        # Sharing its layers, this view tracks no variables of its own (checkpoints unchanged).
        self._judge = with_features(discriminator) if feature_matching else None

    def _disc_view(self, x):
        return highpass(x) if self.disc_highpass else x

    def call(self, inputs, training=False):
        lr, hr = inputs
        sr = self.generator(lr, training=training)
        pixel = _per_sample_mean(ops.abs(sr - hr))
        box = ops.average_pool(sr, 4, 4) - ops.average_pool(hr, 4, 4)
        lowres = _per_sample_mean(ops.abs(box))
        sr32, hr32 = ops.cast(sr, "float32"), ops.cast(hr, "float32")
        grid = _per_sample_mean(ops.abs(lattice_pattern(sr32) - lattice_pattern(hr32)))
        sr_feats, hr_feats = self.features(sr), self.features(hr)
        content_taps = self.content_taps or tuple(sr_feats)
        content = sum(_per_sample_mean(ops.abs(sr_feats[k] - hr_feats[k])) for k in content_taps)
        texture = ops.zeros_like(pixel)
        for k in self.texture_taps:
            texture += gram_distance(sr_feats[k], hr_feats[k], hr.shape[1]) / len(self.texture_taps)
        sr_seen, hr_seen = self._disc_view(sr), self._disc_view(hr)
        judge = self._judge or self.discriminator
        frozen = [ops.stop_gradient(v.value) for v in judge.trainable_variables]
        rest = [v.value for v in judge.non_trainable_variables]
        fake_frozen, _ = judge.stateless_call(frozen, rest, sr_seen, training=training)
        real = judge(hr_seen, training=training)
        fake = self.discriminator(ops.stop_gradient(sr_seen), training=training)
        fm = ops.zeros_like(pixel)
        if self._judge is not None:
            (fake_frozen, *sr_maps), (real, *hr_maps) = fake_frozen, real
            fm = feature_distance(sr_maps, hr_maps)
        adv, disc = adversarial_terms(
            _flat_logits(real), _flat_logits(fake), _flat_logits(fake_frozen), self.relativistic
        )
        adv, disc = _per_sample_mean(adv), _per_sample_mean(disc)
        return ops.stack([pixel, lowres, grid, content, adv, fm, texture, disc], axis=1)


def local_gram(features, window: int):
    """``(B, H, W, C)`` -> ``(B, H // window, W // window, C, C)``: each tile's Gram matrix.

    Rows and columns past the last whole tile are left out; the mean over a tile's pixels
    makes the statistics independent of the window's area.
    """
    _, height, width, channels = features.shape
    rows, cols = height // window, width // window
    x = ops.cast(features[:, : rows * window, : cols * window, :], "float32")
    x = ops.reshape(x, (-1, rows, window, cols, window, channels))
    x = ops.reshape(ops.transpose(x, (0, 1, 3, 2, 4, 5)), (-1, rows, cols, window**2, channels))
    return ops.einsum("bijnc,bijnd->bijcd", x, x) / float(window**2)


def gram_distance(sr_map, hr_map, hr_side: int):
    """Per-sample mean L1 between SR's and HR's ``local_gram``s, HR's being the target.

    A tile covers ``TEXTURE_WINDOW`` HR pixels at any tap (fewer feature pixels at deeper,
    pooled taps), and never more than the map itself.
    """
    side = min(sr_map.shape[1], sr_map.shape[2])
    window = max(1, min(side, TEXTURE_WINDOW * sr_map.shape[1] // hr_side))
    diff = local_gram(sr_map, window) - ops.stop_gradient(local_gram(hr_map, window))
    return _per_sample_mean(ops.abs(diff))


def feature_distance(sr_maps, hr_maps):
    """Per-sample L1 between D's maps of SR and HR, the mean over layers; HR's are targets."""
    per_layer = [
        _per_sample_mean(
            ops.abs(ops.cast(a, "float32") - ops.cast(ops.stop_gradient(b), "float32"))
        )
        for a, b in zip(sr_maps, hr_maps, strict=True)
    ]
    return sum(per_layer) / len(per_layer)


def adversarial_terms(real, fake, fake_frozen, relativistic: bool):
    """(generator adversarial loss, discriminator loss) per logit, from the D logits.

    ``fake_frozen`` is D on the SR image with D's weights detached (the generator's path);
    ``real`` is detached too on the generator's side, as G cannot change it.
    Standard: non-saturating GAN. Relativistic average: each logit is compared with the mean
    logit of the other kind in the batch.
    """
    if not relativistic:
        return ops.softplus(-fake_frozen), ops.softplus(-real) + ops.softplus(fake)
    real_g = ops.stop_gradient(real)
    adv = ops.softplus(real_g - ops.mean(fake_frozen)) + ops.softplus(
        -(fake_frozen - ops.mean(real_g))
    )
    disc = ops.softplus(-(real - ops.mean(fake))) + ops.softplus(fake - ops.mean(real))
    return adv / 2, disc / 2


def weighted_total(weights: dict[str, float]):
    """Loss function for ``compile``: the generator terms weighted by name, plus the D loss.

    The D loss always counts once: only D's weights see it (the objective detaches the SR
    image), so a weight on it would just be D's learning rate in disguise.
    """
    generator_terms = tuple(t for t in LOSS_TERMS if t != "disc")
    unknown = set(weights) - set(generator_terms)
    if unknown:
        raise ValueError(
            f"unknown loss terms {sorted(unknown)}; weighted terms are {generator_terms}"
        )
    scale = np.array([1.0 if t == "disc" else weights.get(t, 0.0) for t in LOSS_TERMS], "float32")

    def total(y_true, y_pred):
        del y_true  # the targets live inside the objective's inputs
        return ops.sum(y_pred * scale, axis=1)

    return total


def term_metric(index: int):
    """A compile metric that reports one loss term's batch mean."""

    def metric(y_true, y_pred):
        del y_true
        return y_pred[:, index]

    metric.__name__ = LOSS_TERMS[index]
    return metric
