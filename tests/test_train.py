"""Training: deterministic data, a real (tiny) run of each stage, exact resume, export."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srgan_cli.train.config import TrainConfig
from srgan_cli.train.data import PatchSampler, list_images, load_pairs, split_validation

TINY_GENERATOR = {"blocks": 1, "channels": 8, "batch_norm": False}


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve smooth random 'photos' (64x48) so bicubic pairs are meaningful."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(12):
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((64, 48), Image.BICUBIC)
        img.save(root / f"img{i:02d}.png")
    return root


def test_split_is_deterministic_and_disjoint(photo_dir: Path):
    files = list_images(photo_dir)
    train, val = split_validation(files, 3)
    assert len(val) == 3 and len(train) == 9
    assert not set(train) & set(val)
    assert split_validation(files, 3) == (train, val)


def test_batches_are_a_pure_function_of_the_step(photo_dir: Path):
    pairs = load_pairs(list_images(photo_dir), 8)
    sampler = PatchSampler(pairs, patch=8, batch=4, seed=3)
    lr, hr = sampler.batch_at(17)
    lr2, hr2 = PatchSampler(pairs, patch=8, batch=4, seed=3).batch_at(17)
    np.testing.assert_array_equal(lr, lr2)
    np.testing.assert_array_equal(hr, hr2)
    assert lr.shape == (4, 8, 8, 3) and hr.shape == (4, 32, 32, 3)
    assert lr.dtype == np.float32 and lr.min() >= 0.0 and hr.max() <= 1.0
    assert not np.array_equal(sampler.batch_at(18)[0], lr)


@pytest.mark.parametrize("degradation", ["bicubic", "real"])
def test_prefetching_threads_yield_the_same_batches_in_order(photo_dir: Path, degradation: str):
    sampler = PatchSampler(load_pairs(list_images(photo_dir), 8), 8, 4, 3, degradation)
    inline = itertools.islice(sampler.batches(5), 12)
    threaded = itertools.islice(sampler.batches(5, threads=3), 12)
    for step, ((lr, hr), (lr2, hr2)) in enumerate(zip(inline, threaded, strict=True), start=5):
        np.testing.assert_array_equal(lr, lr2, err_msg=f"step {step}")
        np.testing.assert_array_equal(hr, hr2, err_msg=f"step {step}")
    np.testing.assert_array_equal(next(sampler.batches(16, threads=2))[0], sampler.batch_at(16)[0])


def test_real_degradation_batches_are_a_pure_function_of_the_step(photo_dir: Path):
    pairs = load_pairs(list_images(photo_dir), 8)
    real = PatchSampler(pairs, patch=8, batch=4, seed=3, degradation="real")
    clean = PatchSampler(pairs, patch=8, batch=4, seed=3)
    lr, hr = real.batch_at(17)
    np.testing.assert_array_equal(lr, real.batch_at(17)[0])
    np.testing.assert_array_equal(hr, clean.batch_at(17)[1])  # same patches, other LR
    assert lr.shape == (4, 8, 8, 3) and not np.array_equal(lr, clean.batch_at(17)[0])


def test_scales_add_shrunk_copies_each_with_its_own_protocol_lr(photo_dir: Path):
    from srgan_cli.metrics import bicubic_downscale

    files = list_images(photo_dir)
    plain = load_pairs(files, 8)
    pairs = load_pairs(files, 8, (1.0, 0.75))
    assert len(pairs) == 2 * len(plain)
    assert [p.name for p in pairs[:2]] == [plain[0].name, f"{plain[0].name}@0.75"]
    small = pairs[1]
    assert small.hr.shape == (36, 48, 3)  # 64x48 shrunk by 0.75
    np.testing.assert_array_equal(small.lr, bicubic_downscale(small.hr))
    shrunk = np.asarray(Image.fromarray(plain[0].hr).resize((48, 36), Image.BICUBIC))
    np.testing.assert_array_equal(small.hr, shrunk)
    assert len(load_pairs(files, 12, (1.0, 0.5))) == len(plain)  # too small once shrunk: skipped
    lr, _ = PatchSampler(pairs, 8, 4, 0).batch_at(0)
    assert lr.shape == (4, 8, 8, 3)


@pytest.mark.parametrize("scales", ["0,1", "1.5", "1,big", ""])
def test_bad_scales_are_refused_with_one_line(scales: str):
    from click.testing import CliRunner

    from srgan_cli.cli import main

    with pytest.raises(ValueError, match="scale"):
        TrainConfig(scales=scales).check()
    result = CliRunner().invoke(main, ["train", "--scales", scales, "--steps", "100"])
    assert result.exit_code == 2 and "scale" in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_unknown_degradation_is_refused():
    with pytest.raises(ValueError, match="degradation"):
        TrainConfig(degradation="jpeg").check()


def test_patches_are_aligned(photo_dir: Path):
    """Each LR patch is (close to) the box-average of its HR patch: same place, same turn."""
    pairs = load_pairs(list_images(photo_dir), 8)
    lr, hr = PatchSampler(pairs, patch=8, batch=6, seed=5).batch_at(0)
    pooled = hr.reshape(6, 8, 4, 8, 4, 3).mean(axis=(2, 4))
    assert np.abs(pooled - lr).mean() < 0.03


def test_too_small_images_are_refused_clearly(photo_dir: Path):
    with pytest.raises(ValueError, match="at least 64 px"):
        PatchSampler(load_pairs(list_images(photo_dir), 64), patch=64, batch=2, seed=0)


def test_config_check_names_the_option():
    with pytest.raises(ValueError, match="log_every"):
        TrainConfig(steps=10, log_every=3).check()
    with pytest.raises(ValueError, match="disc_width"):
        TrainConfig(disc_width=0).check()
    with pytest.raises(ValueError, match="disc_kind"):
        TrainConfig(disc_kind="patchgan").check()
    with pytest.raises(ValueError, match="even patch"):
        TrainConfig(disc_kind="unet", patch=25).check()
    with pytest.raises(ValueError, match="fm_weight"):
        TrainConfig(fm_weight=-1.0).check()
    with pytest.raises(ValueError, match="texture_weight"):
        TrainConfig(texture_weight=-0.5).check()
    with pytest.raises(ValueError, match="texture_taps"):
        TrainConfig(texture_taps="conv2_9").check()


def _config(photo_dir: Path, run_dir: Path, **overrides) -> TrainConfig:
    base = dict(
        data=str(photo_dir),
        run_dir=str(run_dir),
        steps=6,
        batch=2,
        patch=8,
        log_every=3,
        val_images=2,
        checkpoint_minutes=0.0,
        generator=TINY_GENERATOR,
    )
    return TrainConfig(**{**base, **overrides})


@pytest.mark.slow
@pytest.mark.parametrize("ema", [0.0, 0.5])
def test_resume_continues_exactly(photo_dir: Path, tmp_path: Path, ema: float):
    pytest.importorskip("keras")
    from srgan_cli.train import loop

    straight = loop.run(_config(photo_dir, tmp_path / "a", ema=ema))
    # the wall-clock limit stops the run (with a checkpoint) after its first interval
    loop.run(_config(photo_dir, tmp_path / "b", max_minutes=1e-6, ema=ema))
    assert int(np.load(tmp_path / "b" / "checkpoint.npz")["step"]) == 3
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    loop.run(TrainConfig(**{**cfg, "max_minutes": 0.0}), resume=True)
    a = np.load(straight / "checkpoint.npz")
    b = np.load(tmp_path / "b" / "checkpoint.npz")
    assert int(a["step"]) == int(b["step"]) == 6
    for key in a.files:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-6, err_msg=key)
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [3, 6]
    assert all(np.isfinite(row["loss"]) and "val_psnr" in row for row in log)
    assert any(key.startswith("e") for key in a.files) == bool(ema)


@pytest.mark.slow
def test_ema_is_what_the_generator_files_hold(photo_dir: Path, tmp_path: Path):
    """With --ema the snapshots (validated, selected, shipped) are the average, not the raw."""
    pytest.importorskip("keras")
    from srgan_cli.train import loop

    run = loop.run(_config(photo_dir, tmp_path / "ema", ema=0.5, lr=1e-2))
    state = np.load(run / "checkpoint.npz")
    gen = loop._generator(
        _config(photo_dir, tmp_path / "x", init_weights=str(run / "last.weights.h5"))
    )
    published = gen.get_weights()
    averages = [state[f"e{i}"] for i in range(len(published))]
    for shipped, average in zip(published, averages, strict=True):
        np.testing.assert_allclose(shipped, average, rtol=1e-6, atol=1e-7)
    trained = [state[f"w{i}"] for i in range(len(published))]  # the generator comes first
    assert any(not np.allclose(a, t) for a, t in zip(averages, trained, strict=True))


def ema_against_hand_computed(photo_dir: Path, run_dir: Path, decay: float = 0.5) -> None:
    """Three steps of ``fit`` with the loop's EMA callback and a recorder of every step's
    weights (read as the EMA reads them); the kept average is the one computed by hand.
    Module-level so the JAX test can run it in a child process with that backend."""
    import keras

    from srgan_cli.train import loop

    cfg = _config(photo_dir, run_dir, steps=3, ema=decay, lr=1e-2, val_images=0)
    run_dir.mkdir(parents=True)
    model, gen = loop.build_trainable(cfg)
    sampler = PatchSampler(load_pairs(list_images(photo_dir), cfg.patch), 8, 2, cfg.seed)
    expected = [np.array(w, dtype="float32") for w in gen.get_weights()]
    progress = loop._Progress(cfg, run_dir, gen, model, None, 0, [e.copy() for e in expected])
    steps: list[list[np.ndarray]] = []
    recorder = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: steps.append(loop.current_weights(model, gen))
    )
    model.fit(
        loop._stream(cfg, sampler, 0),
        steps_per_epoch=3,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[recorder, progress],
    )
    assert len(steps) == 3 and not np.allclose(steps[0][0], steps[-1][0])  # it trained
    for weights in steps:
        expected = [decay * e + (1 - decay) * w for e, w in zip(expected, weights, strict=True)]
    for kept, wanted in zip(progress.ema, expected, strict=True):
        np.testing.assert_allclose(kept, wanted, rtol=1e-6, atol=1e-7)
    final = gen.get_weights()  # after the epoch the model holds the trained weights again
    for now, last in zip(final, steps[-1], strict=True):
        np.testing.assert_array_equal(now, last)


def test_ema_is_the_hand_computed_average(photo_dir: Path, tmp_path: Path):
    pytest.importorskip("keras")
    ema_against_hand_computed(photo_dir, tmp_path / "run")


def test_ema_under_jax(photo_dir: Path, tmp_path: Path):
    """Keras-JAX detaches the variables inside an epoch (stateless training); the per-step EMA
    used to fail there with "'NoneType' object is not callable". Same check, JAX backend."""
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (pip install jax jaxlib), so Keras cannot run on it")
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import test_train;"
        "test_train.ema_against_hand_computed(Path(sys.argv[2]), Path(sys.argv[3]))"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    args = [str(Path(__file__).parent), str(photo_dir), str(tmp_path / "run")]
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_real_degradation_run_exports_a_loadable_model(photo_dir: Path, tmp_path: Path):
    pytest.importorskip("keras")
    from srgan_cli.pipeline import Upscaler
    from srgan_cli.train import loop
    from srgan_cli.train.export import export_run

    run = loop.run(_config(photo_dir, tmp_path / "real", degradation="real"))
    exported = export_run(run, tmp_path / "weights", name="real")
    assert exported.name == "real.weights.h5"
    upscaler = Upscaler(weights=exported, precision="fp32")
    assert upscaler.name == "real"
    assert upscaler.card.training["config"]["degradation"] == "real"
    out = upscaler.upscale(np.zeros((5, 7, 3), np.uint8))
    assert out.shape == (20, 28, 3) and out.dtype == np.uint8


@pytest.mark.slow
def test_new_run_refuses_to_overwrite_a_run(photo_dir: Path, tmp_path: Path):
    pytest.importorskip("keras")
    from srgan_cli.train import loop

    loop.run(_config(photo_dir, tmp_path / "r", steps=3))
    with pytest.raises(FileExistsError):
        loop.run(_config(photo_dir, tmp_path / "r", steps=3))


@pytest.fixture(scope="module")
def fake_vgg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random VGG16 conv weights with the real shapes (the real file is not needed)."""
    from srgan_cli.train.networks import _VGG_WIDTHS

    rng = np.random.default_rng(0)
    arrays, cin = {}, 3
    for i, cout in enumerate(_VGG_WIDTHS):
        arrays[f"conv{i}_kernel"] = rng.normal(0, 0.05, (3, 3, cin, cout)).astype(np.float16)
        arrays[f"conv{i}_bias"] = np.zeros(cout, np.float16)
        cin = cout
    path = tmp_path_factory.mktemp("vgg") / "vgg.npz"
    np.savez(path, **arrays)
    return path


def test_vgg_features_before_the_relu_keep_the_sign(fake_vgg):
    """Pre-ReLU taps are the post-ReLU ones before clipping: same layers, sign kept."""
    pytest.importorskip("keras")
    from srgan_cli.train import networks

    x = np.random.default_rng(0).random((1, 32, 32, 3)).astype("float32")
    after = networks.build_vgg_features(fake_vgg)(x)
    before = networks.build_vgg_features(fake_vgg, pre_relu=True)(x)
    assert list(after) == list(before) == ["conv2_2", "conv3_3", "conv4_3"]
    for layer, post in after.items():
        pre = np.asarray(before[layer])
        np.testing.assert_allclose(np.asarray(post), np.maximum(pre, 0.0), atol=1e-5)
        assert (pre < 0).any()


def test_vgg_taps_are_named_layers():
    from srgan_cli.train.config import vgg_tap_indices

    assert vgg_tap_indices(TrainConfig().vgg_taps) == (3, 6, 9)
    assert vgg_tap_indices(" conv5_3, conv1_1,conv5_3") == (0, 12)
    for bad in ("conv5_4", "", "relu2_2"):
        with pytest.raises(ValueError, match="vgg_taps"):
            TrainConfig(vgg_taps=bad).check()


def test_vgg_features_follow_the_taps(fake_vgg):
    """Each tap gives its layer's feature map: conv5_3 is 512 wide at 1/16 of the input."""
    pytest.importorskip("keras")
    from srgan_cli.train import networks

    x = np.zeros((1, 32, 32, 3), "float32")
    features = networks.build_vgg_features(fake_vgg, (0, 12))(x)
    shapes = {layer: tuple(f.shape) for layer, f in features.items()}
    assert shapes == {"conv1_1": (1, 32, 32, 64), "conv5_3": (1, 2, 2, 512)}


@pytest.mark.parametrize("taps", [(12,), (3, 12)])
def test_gan_objective_gives_every_term_per_sample(fake_vgg, taps):
    """One tap or several: (lr, hr) -> a (batch, terms) array whose content term sums the taps."""
    pytest.importorskip("keras")
    from srgan_cli.model import build_generator
    from srgan_cli.train import networks

    gen, features = build_generator(2, 8, False), networks.build_vgg_features(fake_vgg, taps)
    objective = networks.GanObjective(gen, networks.build_discriminator(width=8), features)
    rng = np.random.default_rng(0)
    lr, hr = rng.random((3, 16, 16, 3), "float32"), rng.random((3, 64, 64, 3), "float32")
    terms = np.asarray(objective((lr, hr)))
    assert terms.shape == (3, len(networks.LOSS_TERMS)) and np.isfinite(terms).all()
    sr_feats, hr_feats = features(np.asarray(gen(lr))), features(hr)
    assert len(sr_feats) == len(taps)
    content = sum(
        np.abs(np.asarray(sr_feats[k]) - np.asarray(hr_feats[k])).mean(axis=(1, 2, 3))
        for k in sr_feats
    )
    np.testing.assert_allclose(terms[:, networks.LOSS_TERMS.index("content")], content, rtol=1e-4)


def test_highpass_drops_flat_colour_and_keeps_texture():
    pytest.importorskip("keras")
    from srgan_cli.train import networks

    rng = np.random.default_rng(0)
    texture = rng.random((1, 24, 24, 3), "float32")
    cast = np.array([0.2, -0.1, 0.05], "float32")  # a colour cast / brightness shift
    flat = np.asarray(networks.highpass(np.full((1, 24, 24, 3), 0.7, "float32")))
    np.testing.assert_allclose(flat, 0.0, atol=1e-6)  # borders included
    np.testing.assert_allclose(
        np.asarray(networks.highpass(texture + cast)),
        np.asarray(networks.highpass(texture)),
        atol=1e-5,
    )
    assert np.asarray(networks.highpass(texture)).std() > 0.5 * texture.std()


@pytest.mark.parametrize("highpass", [False, True])
def test_highpass_discriminator_is_blind_to_a_colour_cast(fake_vgg, highpass: bool):
    """With --disc-highpass D's terms ignore a colour cast of the target; without it they see it.
    The pixel term sees it either way: low frequencies are left to the pinned terms."""
    pytest.importorskip("keras")
    from srgan_cli.model import build_generator
    from srgan_cli.train import networks

    gen, features = build_generator(2, 8, False), networks.build_vgg_features(fake_vgg, (3,))
    disc = networks.build_unet_discriminator(width=8, spectral_norm=True)
    objective = networks.GanObjective(
        gen, disc, features, relativistic=True, disc_highpass=highpass
    )
    rng = np.random.default_rng(1)
    lr, hr = rng.random((2, 16, 16, 3), "float32"), rng.random((2, 64, 64, 3), "float32")
    cast = hr + np.array([0.1, 0.0, -0.1], "float32")
    plain, shifted = np.asarray(objective((lr, hr))), np.asarray(objective((lr, cast)))
    at = networks.LOSS_TERMS.index
    d_terms = [at("adv"), at("disc")]
    assert np.allclose(plain[:, d_terms], shifted[:, d_terms], atol=1e-5) == highpass
    assert not np.allclose(plain[:, at("pixel")], shifted[:, at("pixel")])


def test_unet_discriminator_judges_every_pixel():
    """One logit per HR pixel, and the objective's adversarial terms are their per-image means."""
    pytest.importorskip("keras")
    from srgan_cli.train import networks

    disc = networks.build_unet_discriminator(width=8, spectral_norm=True)
    rng = np.random.default_rng(0)
    hr = rng.random((2, 40, 24, 3), "float32")
    assert np.asarray(disc(hr)).shape == (2, 40, 24, 1)
    sr = hr.copy()
    sr[1, :8, :8] = 0.0  # a local change moves the logits near it far more than elsewhere
    change = np.abs(np.asarray(disc(sr)) - np.asarray(disc(hr)))[1, ..., 0]
    assert change[:8, :8].mean() > 10 * change[24:, 16:].mean()
    real, fake = np.asarray(disc(hr)), np.asarray(disc(sr))
    adv, d_loss = networks.adversarial_terms(
        networks._flat_logits(real),
        networks._flat_logits(fake),
        networks._flat_logits(fake),
        relativistic=True,
    )
    assert np.asarray(adv).shape == np.asarray(d_loss).shape == (2, 40 * 24)


def test_feature_matching_pulls_the_generator_towards_d_features_of_hr(fake_vgg):
    """``fm`` is the mean over D's layers of L1(D maps of SR, of HR); zero when off. It moves
    the generator only: D's weights get no gradient from it, and the checkpoint is the same."""
    tf = pytest.importorskip("tensorflow")
    from srgan_cli.model import build_generator
    from srgan_cli.train import networks

    gen, features = build_generator(2, 8, False), networks.build_vgg_features(fake_vgg, (3,))
    disc = networks.build_unet_discriminator(width=8, spectral_norm=True)
    rng = np.random.default_rng(2)
    lr, hr = rng.random((2, 16, 16, 3), "float32"), rng.random((2, 64, 64, 3), "float32")
    at = networks.LOSS_TERMS.index("fm")
    off = networks.GanObjective(gen, disc, features, relativistic=True)
    on = networks.GanObjective(gen, disc, features, relativistic=True, feature_matching=True)
    assert len(on.weights) == len(off.weights)  # the judging view shares D's variables
    assert np.all(np.asarray(off((lr, hr)))[:, at] == 0.0)
    judge = networks.with_features(disc)
    (_, *sr_maps), (_, *hr_maps) = judge(np.asarray(gen(lr))), judge(hr)
    assert len(sr_maps) == 9  # the U-Net's 1 + 3 down + 3 up + 2 final convolutions
    expected = np.mean(
        [
            np.abs(np.asarray(a) - np.asarray(b)).mean(axis=(1, 2, 3))
            for a, b in zip(sr_maps, hr_maps, strict=True)
        ],
        axis=0,
    )
    with tf.GradientTape(persistent=True) as tape:
        fm = on((lr, hr), training=False)[:, at]
    np.testing.assert_allclose(np.asarray(fm), expected, rtol=1e-4)
    to_d = tape.gradient(fm, disc.trainable_variables)
    to_g = tape.gradient(fm, gen.trainable_variables)
    assert all(g is None or not np.any(np.asarray(g)) for g in to_d)
    assert sum(float(np.abs(np.asarray(g)).sum()) for g in to_g if g is not None) > 0


def _tile_gram(x: np.ndarray, window: int) -> np.ndarray:
    """The Gram matrix of every window x window tile, by loops: the definition."""
    b, h, w, c = x.shape
    out = np.zeros((b, h // window, w // window, c, c))
    for i in range(h // window):
        for j in range(w // window):
            tile = x[:, i * window : (i + 1) * window, j * window : (j + 1) * window]
            flat = tile.reshape(b, -1, c).astype(np.float64)
            out[:, i, j] = np.einsum("bnc,bnd->bcd", flat, flat) / window**2
    return out


def test_local_gram_is_each_tiles_feature_statistics():
    pytest.importorskip("keras")
    from srgan_cli.train import networks

    x = np.random.default_rng(3).normal(size=(2, 13, 9, 4)).astype("float32")
    got = np.asarray(networks.local_gram(x, 4))  # the last row and column of tiles are partial
    assert got.shape == (2, 3, 2, 4, 4)
    np.testing.assert_allclose(got, _tile_gram(x, 4), rtol=1e-5, atol=1e-5)


def test_texture_term_ignores_where_texels_lie_within_a_tile(fake_vgg):
    """Shuffling the pixels inside each tile leaves ``gram_distance`` at zero, while an
    aligned L1 sees a large difference; a different texture gives a distance > 0."""
    pytest.importorskip("keras")
    from srgan_cli.train import networks

    rng = np.random.default_rng(4)
    hr_side, window = 64, networks.TEXTURE_WINDOW // 2  # a map at half the HR resolution
    hr = rng.normal(size=(1, hr_side // 2, hr_side // 2, 3)).astype("float32")
    shuffled = hr.copy()
    for i in range(0, hr.shape[1], window):
        for j in range(0, hr.shape[2], window):
            tile = shuffled[0, i : i + window, j : j + window].reshape(-1, 3)
            shuffled[0, i : i + window, j : j + window] = rng.permutation(tile).reshape(
                window, window, 3
            )
    assert np.abs(shuffled - hr).mean() > 0.5
    same = np.asarray(networks.gram_distance(shuffled, hr, hr_side))
    np.testing.assert_allclose(same, 0.0, atol=1e-5)
    other = np.asarray(networks.gram_distance(2.0 * shuffled, hr, hr_side))
    expected = np.abs(_tile_gram(2.0 * hr, window) - _tile_gram(hr, window)).mean()
    np.testing.assert_allclose(other, [expected], rtol=1e-4)


def test_texture_term_averages_its_taps_and_moves_only_the_generator(fake_vgg):
    tf = pytest.importorskip("tensorflow")
    from srgan_cli.model import build_generator
    from srgan_cli.train import networks

    gen, features = build_generator(2, 8, False), networks.build_vgg_features(fake_vgg, (1, 3, 12))
    disc = networks.build_discriminator(width=8)
    rng = np.random.default_rng(5)
    lr, hr = rng.random((2, 16, 16, 3), "float32"), rng.random((2, 64, 64, 3), "float32")
    at, content_at = networks.LOSS_TERMS.index("texture"), networks.LOSS_TERMS.index("content")
    off = networks.GanObjective(gen, disc, features, content_taps=("conv5_3",))
    on = networks.GanObjective(
        gen, disc, features, content_taps=("conv5_3",), texture_taps=("conv1_2", "conv2_2")
    )
    assert np.all(np.asarray(off((lr, hr)))[:, at] == 0.0)
    sr_feats, hr_feats = features(np.asarray(gen(lr))), features(hr)
    expected = np.mean(
        [networks.gram_distance(sr_feats[k], hr_feats[k], 64) for k in ("conv1_2", "conv2_2")],
        axis=0,
    )
    content = np.abs(np.asarray(sr_feats["conv5_3"]) - np.asarray(hr_feats["conv5_3"]))
    with tf.GradientTape(persistent=True) as tape:
        terms = on((lr, hr), training=False)
        texture = terms[:, at]
    np.testing.assert_allclose(np.asarray(texture), expected, rtol=1e-4)
    np.testing.assert_allclose(
        np.asarray(terms[:, content_at]), content.mean(axis=(1, 2, 3)), rtol=1e-4
    )
    to_d = tape.gradient(texture, disc.trainable_variables)
    assert all(g is None or not np.any(np.asarray(g)) for g in to_d)
    to_g = tape.gradient(texture, gen.trainable_variables)
    assert sum(float(np.abs(np.asarray(g)).sum()) for g in to_g if g is not None) > 0


def test_weighted_total_weighs_terms_by_name():
    pytest.importorskip("keras")
    from srgan_cli.train import networks

    terms = np.arange(1, len(networks.LOSS_TERMS) + 1, dtype="float32")[None]
    total = networks.weighted_total({"content": 2.0, "adv": 0.5})(None, terms)
    at = networks.LOSS_TERMS.index
    expected = 2.0 * (at("content") + 1) + 0.5 * (at("adv") + 1) + (at("disc") + 1)
    np.testing.assert_allclose(np.asarray(total), [expected])
    for bad in ({"contnet": 1.0}, {"disc": 2.0}):
        with pytest.raises(ValueError, match="unknown loss terms"):
            networks.weighted_total(bad)


@pytest.mark.slow
def test_gan_stage_trains_both_players_and_exports(photo_dir: Path, tmp_path: Path, fake_vgg):
    keras = pytest.importorskip("keras")
    from srgan_cli import weights
    from srgan_cli.train import loop, networks
    from srgan_cli.train.export import export_run

    psnr_dir = loop.run(_config(photo_dir, tmp_path / "psnr", steps=3))
    cfg = _config(
        photo_dir,
        tmp_path / "gan",
        stage="gan",
        init_weights=str(psnr_dir / "best.weights.h5"),
        vgg_weights=str(fake_vgg),
        lowres_weight=1.0,
        relativistic=True,  # the standard adversarial terms are checked on their own below
        vgg_taps="conv2_2,conv5_3",
        disc_width=16,
        disc_spectral_norm=True,
        fm_weight=0.5,  # feature matching through the whole loop, on the global D's maps
        texture_weight=0.1,  # and the texture term, on taps the content loss does not use
        texture_taps="conv1_2,conv2_2",
    )
    keras.utils.set_random_seed(cfg.seed)  # as the run does: `model` is the run's start
    model, gen = loop.build_trainable(cfg)
    assert model.discriminator.get_layer("d_conv0").filters == 16
    disc_before = [np.array(w) for w in model.discriminator.get_weights()]
    vgg_before = [np.array(w) for w in model.features.get_weights()]
    loop.run(cfg)
    log = [json.loads(line) for line in (tmp_path / "gan" / "log.jsonl").read_text().splitlines()]
    assert set(networks.LOSS_TERMS) <= set(log[-1])
    from srgan_cli.train.select import select_snapshot

    def mean_abs(a, b):  # a stand-in perceptual distance (LPIPS needs ../shared)
        return float(np.abs(a.astype(float) - b.astype(float)).mean())

    picked = select_snapshot(tmp_path / "gan", psnr_dir / "best.weights.h5", mean_abs, 99.0)
    steps = [row["step"] for row in picked["snapshots"]]
    assert steps == [3, 6]
    best = min(picked["snapshots"], key=lambda row: row["val_lpips"])
    assert picked["selected"] == best
    exported = export_run(tmp_path / "gan", tmp_path / "weights")
    assert exported.name == "srgan.weights.h5"
    loaded, card = weights.load_generator(exported)
    assert card.training["stage"] == "gan" and card.training["steps"] == best["step"]
    assert loaded.count_params() == gen.count_params()
    # the objective model built here was not trained; check a trained one's players moved
    trained, _ = loop.build_trainable(cfg)
    from srgan_cli.train import checkpoint

    checkpoint.restore(tmp_path / "gan", trained)
    after = trained.discriminator.get_weights()
    moved = [not np.allclose(a, b) for a, b in zip(disc_before, after, strict=True)]
    assert any(moved), "the discriminator must learn"
    frozen = zip(vgg_before, trained.features.get_weights(), strict=True)
    assert all(np.allclose(a, b) for a, b in frozen), "VGG must stay frozen"
    # the next cycle can start from this trained D instead of a fresh one
    warm, _ = loop.build_trainable(replace(cfg, init_discriminator=str(tmp_path / "gan")))
    for a, b in zip(after, warm.discriminator.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="does not fit"):
        loop.build_trainable(replace(cfg, init_discriminator=str(tmp_path / "gan"), disc_width=8))
    with pytest.raises(ValueError, match="no discriminator"):
        loop.build_trainable(replace(cfg, init_discriminator=str(psnr_dir)))


@pytest.mark.parametrize(
    "kind, names",
    [
        ("srgan", ("d_conv0", "d_conv7", "d_fc", "d_logit")),
        ("unet", ("u_conv0", "u_down3", "u_up1", "u_conv2", "u_logit")),
    ],
)
def test_spectral_norm_bounds_every_discriminator_layer_by_one(kind: str, names: tuple):
    """After a few training calls each layer's normalised kernel has top singular value ~1."""
    keras = pytest.importorskip("keras")
    from srgan_cli.train import networks

    keras.utils.set_random_seed(0)
    disc = networks.DISCRIMINATORS[kind](8, spectral_norm=True)
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    before = np.asarray(disc(x, training=False))
    for _ in range(60):
        disc(x, training=True)
    for name in names:
        kernel = np.asarray(networks._spectral_normalized(disc.get_layer(name), False))
        top = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
        # power iteration underestimates sigma, so the normalised gain approaches 1 from above
        assert 0.999 <= top <= 1.01, (name, top)
    assert not np.allclose(before, np.asarray(disc(x, training=False)))  # sigma was learned


def test_relativistic_terms_compare_each_logit_with_the_other_kinds_mean():
    """RaGAN: D wants real logits above the fakes' mean (and fakes below the reals'); G the
    opposite, so unlike the standard loss G's term depends on the real logits too."""
    pytest.importorskip("keras")
    from srgan_cli.train.networks import adversarial_terms

    def softplus(x):
        return np.log1p(np.exp(x))

    real, fake = np.array([2.0, 0.5, 1.0], "float32"), np.array([-1.0, 0.0, 0.5], "float32")
    adv, disc = (np.asarray(t) for t in adversarial_terms(real, fake, fake, relativistic=True))
    want_disc = (softplus(-(real - fake.mean())) + softplus(fake - real.mean())) / 2
    want_adv = (softplus(real - fake.mean()) + softplus(-(fake - real.mean()))) / 2
    np.testing.assert_allclose(disc, want_disc, rtol=1e-5)
    np.testing.assert_allclose(adv, want_adv, rtol=1e-5)
    standard_adv, _ = adversarial_terms(real, fake, fake, relativistic=False)
    np.testing.assert_allclose(np.asarray(standard_adv), softplus(-fake), rtol=1e-5)
    shifted_adv, _ = adversarial_terms(real + 1, fake, fake, relativistic=True)
    assert (np.asarray(shifted_adv) > adv).all()  # better-looking reals make G's loss worse


@pytest.mark.slow
def test_psnr_stage_generator_files_hold_no_optimizer_state(photo_dir: Path, tmp_path: Path):
    """The PSNR stage compiles the generator itself; its files must still be weights only."""
    h5py = pytest.importorskip("h5py")
    pytest.importorskip("keras")
    from srgan_cli.train import loop

    run = loop.run(_config(photo_dir, tmp_path / "psnr", stage="psnr"))
    state = np.load(run / "checkpoint.npz")
    for name in ("last", "best"):
        with h5py.File(run / f"{name}.weights.h5", "r") as fh:
            assert "optimizer" not in fh, name
    gen = loop._generator(
        _config(photo_dir, tmp_path / "x", init_weights=str(run / "last.weights.h5"))
    )
    for i, saved in enumerate(gen.get_weights()):
        np.testing.assert_array_equal(saved, state[f"w{i}"])


@pytest.mark.slow
def test_gan_stage_trains_a_unet_discriminator(photo_dir: Path, tmp_path: Path, fake_vgg):
    """--disc-kind unet trains end to end, and its D warm-starts only a U-Net."""
    keras = pytest.importorskip("keras")
    from srgan_cli.train import checkpoint, loop

    cfg = _config(
        photo_dir,
        tmp_path / "unet",
        stage="gan",
        vgg_weights=str(fake_vgg),
        relativistic=True,
        disc_kind="unet",
        disc_width=8,
        disc_spectral_norm=True,
        steps=3,
    )
    keras.utils.set_random_seed(cfg.seed)  # as the run does: `fresh` is the run's start
    fresh, _ = loop.build_trainable(cfg)
    assert fresh.discriminator.get_layer("u_logit").filters == 1
    loop.run(cfg)
    log = json.loads((tmp_path / "unet" / "log.jsonl").read_text().splitlines()[-1])
    assert np.isfinite(log["adv"]) and np.isfinite(log["disc"])
    trained, _ = loop.build_trainable(cfg)
    checkpoint.restore(tmp_path / "unet", trained)
    after = trained.discriminator.get_weights()
    before = fresh.discriminator.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True))
    warm, _ = loop.build_trainable(replace(cfg, init_discriminator=str(tmp_path / "unet")))
    for a, b in zip(after, warm.discriminator.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="does not fit"):
        loop.build_trainable(
            replace(cfg, init_discriminator=str(tmp_path / "unet"), disc_kind="srgan")
        )


@pytest.mark.slow
def test_export_blends_the_run_with_other_weights(photo_dir: Path, tmp_path: Path):
    """--export --blend-with W --alpha a ships (1 - a) * W + a * run, says so on the card;
    repeated, the files share 1 - a equally (a model soup). It refuses a bad alpha, a
    foreign topology, or --blend-with without --export."""
    pytest.importorskip("keras")
    from click.testing import CliRunner

    from srgan_cli import weights
    from srgan_cli.cli import main
    from srgan_cli.model import build_generator
    from srgan_cli.train import loop

    run = loop.run(_config(photo_dir, tmp_path / "run", steps=3))
    other = build_generator(1, 8, False)
    other.set_weights([w + 0.5 for w in other.get_weights()])
    other.save_weights(tmp_path / "other.weights.h5")
    runner = CliRunner()
    args = ["train", "--export", str(run), "--out", str(tmp_path / "w"), "--name", "blend"]
    blend = ["--blend-with", str(tmp_path / "other.weights.h5")]
    result = runner.invoke(main, [*args, *blend, "--alpha", "0.25"])
    assert result.exit_code == 0, result.output
    shipped, card = weights.load_generator(tmp_path / "w" / "blend.weights.h5")
    ours = build_generator(1, 8, False)
    ours.load_weights(run / "best.weights.h5")
    for got, theirs, mine in zip(
        shipped.get_weights(), other.get_weights(), ours.get_weights(), strict=True
    ):
        np.testing.assert_allclose(got, 0.75 * theirs + 0.25 * mine, rtol=1e-6, atol=1e-6)
    assert card.training["interpolation"]["alpha"] == 0.25
    third = build_generator(1, 8, False)
    third.set_weights([w - 0.25 for w in other.get_weights()])
    third.save_weights(tmp_path / "third.weights.h5")
    soup = [*blend, "--blend-with", str(tmp_path / "third.weights.h5"), "--alpha", "0.5"]
    assert runner.invoke(main, [*args, "--name", "soup", *soup]).exit_code == 0
    souped, card = weights.load_generator(tmp_path / "w" / "soup.weights.h5")
    for got, a, b, mine in zip(
        souped.get_weights(),
        other.get_weights(),
        third.get_weights(),
        ours.get_weights(),
        strict=True,
    ):
        np.testing.assert_allclose(got, 0.25 * a + 0.25 * b + 0.5 * mine, rtol=1e-6, atol=1e-6)
    assert len(card.training["interpolation"]["with_sha256"]) == 2
    bad_alpha = runner.invoke(main, [*args, *blend, "--alpha", "1.5"])
    assert bad_alpha.exit_code == 2 and "alpha" in bad_alpha.output
    build_generator(2, 8, False).save_weights(tmp_path / "big.weights.h5")
    foreign = runner.invoke(main, [*args, "--blend-with", str(tmp_path / "big.weights.h5")])
    assert foreign.exit_code == 2 and "does not hold this run's generator" in foreign.output
    assert len(foreign.output.strip().splitlines()) == 1, foreign.output
    alone = runner.invoke(main, ["train", *blend])
    assert alone.exit_code == 2 and "only goes with --export" in alone.output
    no_blend = runner.invoke(main, [*args, "--alpha", "0.5"])
    assert no_blend.exit_code == 2 and "only goes with --blend-with" in no_blend.output
