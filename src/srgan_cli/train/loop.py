"""``srgan train``: the PSNR stage (-> ``srresnet``) and the GAN stage (-> ``srgan``).

Both stages are plain ``model.fit`` over an endless, step-indexed batch stream, so the same
code trains on TensorFlow (this CPU) and on JAX/PyTorch (a lent GPU). One Keras "epoch" is
one logging interval; at its end the run logs, validates and, every ``checkpoint_minutes``,
writes a checkpoint holding everything ``--resume`` needs (weights, optimizer state, step).
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import keras
import numpy as np

from srgan_cli.model import GeneratorConfig, build_generator, policy_scope, to_uint8
from srgan_cli.train import checkpoint
from srgan_cli.train.config import VGG_LAYERS, TrainConfig, vgg_tap_indices
from srgan_cli.train.data import (
    PatchSampler,
    center_crops,
    list_images,
    load_pairs,
    parse_scales,
)
from srgan_cli.train.data import split_validation as split_files


def _schedule(cfg: TrainConfig):
    decay = max(1, cfg.steps - cfg.warmup_steps)
    return keras.optimizers.schedules.CosineDecay(
        cfg.lr if cfg.warmup_steps == 0 else cfg.lr * 0.01,
        decay_steps=decay,
        alpha=cfg.lr_min_ratio,
        warmup_target=cfg.lr if cfg.warmup_steps else None,
        warmup_steps=cfg.warmup_steps,
    )


def _policy(cfg: TrainConfig) -> str | None:
    return "mixed_bfloat16" if cfg.precision == "bf16" else None


def _generator(cfg: TrainConfig) -> keras.Model:
    gcfg = GeneratorConfig.from_dict(cfg.generator)
    gen = build_generator(gcfg.blocks, gcfg.channels, gcfg.batch_norm, dtype_policy=_policy(cfg))
    if cfg.init_weights:
        gen.load_weights(cfg.init_weights)
    return gen


def build_trainable(cfg: TrainConfig) -> tuple[keras.Model, keras.Model]:
    """(model that ``fit`` trains, the generator inside it), compiled for the stage."""
    gen = _generator(cfg)
    optimizer = keras.optimizers.Adam(_schedule(cfg), beta_1=0.9, beta_2=0.99)
    if cfg.stage == "psnr":
        gen.compile(optimizer=optimizer, loss="mean_absolute_error", jit_compile="auto")
        return gen, gen
    from srgan_cli.train import networks

    content_taps = vgg_tap_indices(cfg.vgg_taps)
    texture_taps = vgg_tap_indices(cfg.texture_taps) if cfg.texture_weight > 0 else ()
    with policy_scope(_policy(cfg)):
        disc = networks.DISCRIMINATORS[cfg.disc_kind](cfg.disc_width, cfg.disc_spectral_norm)
        features = networks.build_vgg_features(
            cfg.vgg_weights, content_taps + texture_taps, pre_relu=cfg.vgg_pre_relu
        )
    if cfg.init_discriminator:
        trained = trained_discriminator(Path(cfg.init_discriminator))
        try:
            disc.set_weights(trained)
        except ValueError as err:
            raise ValueError(
                f"the discriminator in {cfg.init_discriminator} does not fit this run's "
                f"--disc-kind / --disc-width / --disc-spectral-norm ({err})"
            ) from err
    model = networks.GanObjective(
        gen,
        disc,
        features,
        relativistic=cfg.relativistic,
        disc_highpass=cfg.disc_highpass,
        feature_matching=cfg.fm_weight > 0,
        content_taps=tuple(VGG_LAYERS[i] for i in content_taps),
        texture_taps=tuple(VGG_LAYERS[i] for i in texture_taps),
    )
    model.compile(
        optimizer=optimizer,
        loss=networks.weighted_total(
            {
                "pixel": cfg.pixel_weight,
                "lowres": cfg.lowres_weight,
                "grid": cfg.grid_weight,
                "content": cfg.content_weight,
                "adv": cfg.adv_weight,
                "fm": cfg.fm_weight,
                "texture": cfg.texture_weight,
            }
        ),
        metrics=[networks.term_metric(i) for i in range(len(networks.LOSS_TERMS))],
    )
    return model, gen


def trained_discriminator(run_dir: Path) -> list[np.ndarray]:
    """The discriminator weights in a GAN run's checkpoint.

    A fresh D is useless for its first ~100 steps, and the generator, pulled by the content
    loss alone meanwhile, drifts back towards the blurry mean; a trained D avoids that.
    """
    if not (run_dir / checkpoint.CHECKPOINT).is_file():
        raise FileNotFoundError(
            f"no {checkpoint.CHECKPOINT} in {run_dir} to take a discriminator from"
        )
    saved = json.loads((run_dir / "config.json").read_text())
    source = TrainConfig(**{**saved, "init_weights": "", "init_discriminator": ""})
    if source.stage != "gan":
        raise ValueError(f"{run_dir} is a {source.stage} run; it has no discriminator")
    model, _ = build_trainable(source)
    checkpoint.restore(run_dir, model)
    return model.discriminator.get_weights()


def data_threads() -> int:
    """Threads that build batches ahead: one per 4 cores, at most 4, none on a small machine.

    On the 2-core CPU machine the framework already uses every core, so batches are built
    inline; on a GPU host (16 cores) 4 threads keep a ~20 ms step fed.
    """
    return max(1, min(4, (os.cpu_count() or 1) // 4))


def _stream(cfg: TrainConfig, sampler: PatchSampler, start: int):
    """PSNR stage: (lr, hr). GAN stage: ((lr, hr), dummy) since the objective holds the target."""
    batches = sampler.batches(start, threads=data_threads())
    if cfg.stage == "psnr":
        yield from batches
    else:
        from srgan_cli.train.networks import LOSS_TERMS

        zeros = np.zeros((cfg.batch, len(LOSS_TERMS)), dtype="float32")
        for lr, hr in batches:
            yield (lr, hr), zeros


def validation_psnr(gen: keras.Model, lr: np.ndarray, hr: np.ndarray) -> float:
    """Mean Y-PSNR (border 4) of the generator on the held-out crops (uint8 arrays)."""
    from srgan_cli.metrics import psnr

    sr8 = to_uint8(gen(lr.astype("float32") / 255.0, training=False))
    return float(np.mean([psnr(a, b) for a, b in zip(sr8, hr, strict=True)]))


def run(cfg: TrainConfig, resume: bool = False) -> Path:
    """Train until ``cfg.steps`` (or ``max_minutes``); returns the run directory."""
    run_dir = Path(cfg.run_dir)
    if not resume and (run_dir / checkpoint.CHECKPOINT).exists():
        raise FileExistsError(f"{run_dir} already holds a run; resume it or pick another --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    keras.utils.set_random_seed(cfg.seed)
    train_files, val_files = split_files(list_images(cfg.data), cfg.val_images)
    (run_dir / "validation_images.txt").write_text("\n".join(map(str, val_files)) + "\n")
    pairs = load_pairs(train_files, cfg.patch, parse_scales(cfg.scales))
    sampler = PatchSampler(pairs, cfg.patch, cfg.batch, cfg.seed, cfg.degradation)
    val = center_crops(load_pairs(val_files), 48, cfg.degradation) if val_files else None
    model, gen = build_trainable(cfg)
    start = checkpoint.restore(run_dir, model) if resume else 0
    ema = checkpoint.restore_ema(run_dir) if resume else None
    if cfg.ema and ema is None:
        ema = [np.array(w, dtype="float32") for w in gen.get_weights()]
    logger = _Progress(cfg, run_dir, gen, model, val, start, ema)
    remaining = max(0, cfg.steps - start)
    epochs = -(-remaining // cfg.log_every)
    if epochs:
        model.fit(
            _stream(cfg, sampler, start),
            steps_per_epoch=cfg.log_every,
            epochs=epochs,
            verbose=0,
            shuffle=False,
            callbacks=[logger],
        )
    logger.save(final=True)
    return run_dir


def current_weights(trainee: keras.Model, gen: keras.Model) -> list[np.ndarray]:
    """The generator's weights after the latest step, also inside an epoch.

    Keras-JAX trains statelessly: inside an epoch ``fit`` keeps the state in
    ``trainee._jax_state`` and detaches the variables' values (``get_weights`` then fails with
    "'NoneType' object is not callable"); its public ``jax_state_sync`` puts them back (the next
    step takes the state from the variables again). Other backends update the variables in
    place and have no such method.
    """
    sync = getattr(trainee, "jax_state_sync", None)
    if sync is not None:
        sync()
    return gen.get_weights()


class _Progress(keras.callbacks.Callback):
    """Logs JSONL, validates, checkpoints on a timer, enforces ``max_minutes``, keeps the EMA.

    With ``--ema`` the generator's weights are averaged after every step; validation and
    the generator files use the average (``_published``), the training state keeps both.
    """

    def __init__(self, cfg, run_dir: Path, gen, trainee, val, start: int, ema=None) -> None:
        super().__init__()
        self.cfg, self.run_dir, self.gen, self.trainee, self.val = cfg, run_dir, gen, trainee, val
        self.ema = ema
        self.step, self.started = start, time.monotonic()
        self.last_ckpt, self.last_log = self.started, self.started
        self.best = checkpoint.best_score(run_dir)
        from tqdm import tqdm

        self.bar = tqdm(total=cfg.steps, initial=start, unit="step", dynamic_ncols=True)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.ema is None:
            return
        decay = self.cfg.ema
        for average, weight in zip(self.ema, current_weights(self.trainee, self.gen), strict=True):
            average *= decay
            average += (1.0 - decay) * weight

    @contextmanager
    def _published(self):
        """The generator holds the weights to validate and ship (the EMA, if any) inside."""
        if self.ema is None:
            yield
            return
        trained = self.gen.get_weights()
        self.gen.set_weights(self.ema)
        try:
            yield
        finally:
            self.gen.set_weights(trained)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        with self._published():
            self._log_and_validate(logs)
        now = time.monotonic()
        out_of_time = self.cfg.max_minutes and now - self.started > self.cfg.max_minutes * 60
        if out_of_time or now - self.last_ckpt > self.cfg.checkpoint_minutes * 60:
            self.save()
        if out_of_time:
            self.trainee.stop_training = True

    def _log_and_validate(self, logs: dict | None) -> None:
        now = time.monotonic()
        self.step += self.cfg.log_every
        self.bar.update(self.cfg.log_every)
        val = validation_psnr(self.gen, *self.val) if self.val else float("nan")
        row = {"step": self.step, "val_psnr": round(val, 4), "time": time.time()}
        row["s_per_step"] = round((now - self.last_log) / self.cfg.log_every, 5)
        row.update({k: float(v) for k, v in (logs or {}).items()})
        self.last_log = now
        with open(self.run_dir / "log.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        self.bar.set_postfix(val_psnr=f"{val:.2f}", loss=f"{row.get('loss', 0):.4f}")
        if val > self.best:
            self.best = val
            checkpoint.save_generator(self.run_dir / "best", self.gen, self.step, val)

    def save(self, final: bool = False) -> None:
        checkpoint.save_state(self.run_dir, self.trainee, self.step, self.ema)
        with self._published():
            checkpoint.save_snapshot(self.run_dir, self.gen, self.step)
        self.last_ckpt = time.monotonic()
        if final:
            self.bar.close()
