"""`srgan train` on a lent GPU (KERAS_BACKEND=jax), with three run-time patches.

Usage: TRAIN_DEADLINE=<epoch s> python .gpu/train_jax.py <srgan train options...>

1. EMA on the device. loop._Progress averages the generator after every step through
   gen.get_weights(); under JAX, fit() purges the model's variables inside an epoch, so that
   call fails ("'NoneType' object is not callable"). Here the same update (average * decay +
   (1 - decay) * weight, float32) runs jitted on the step's state (trainee._jax_state).
2. A cosine that ends at the deadline. The step count is not known before the call, so the
   learning rate is lr * (r + (1 - r) * (1 + cos(pi * step / total)) / 2), Keras' CosineDecay
   with alpha r = --lr-min-ratio and no warm-up, where `total` is an optimizer variable
   (so the compiled step reads it) that every log interval re-sets to the step that the
   measured s/step reaches by TRAIN_DEADLINE; the run stops there (--steps is only a cap).
   Each interval's (step, total, lr, s/step) goes to schedule.jsonl in the run directory.
3. Batches come from DATA_PROCS (default 12) worker processes, forked before JAX starts,
   each holding its own copy of the training pairs (the same load_pairs call); a batch is a
   pure function of (seed, step), so the stream is unchanged, and the real-web-sharp chain
   (Python-heavy, ~0.14 s per batch of 32 on one core) is not held back by the GIL as in
   loop's 4 threads. Batches travel as uint8 and are divided by 255 here, as batch_at does.
   DATA_PROCS=0: threads (DATA_THREADS, default 12) instead.
Extra snapshots (checkpoint + snapshots/step-*.weights.h5) at the steps in EXTRA_SNAPSHOTS.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

DEADLINE = float(os.environ["TRAIN_DEADLINE"])
RESERVE = float(os.environ.get("TRAIN_RESERVE", "4"))  # s left for the final save
THREADS = int(os.environ.get("DATA_THREADS", "12"))
EXTRA = {int(s) for s in os.environ.get("EXTRA_SNAPSHOTS", "").split(",") if s}

PROCS = int(os.environ.get("DATA_PROCS", "12"))

import itertools  # noqa: E402
import multiprocessing  # noqa: E402
from collections import deque  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

_CACHE: dict = {}


def _worker_pairs(key):
    if key not in _CACHE:
        from srgan_cli.train.data import load_pairs

        files, side, scales = key
        _CACHE[key] = load_pairs([Path(f) for f in files], side, scales)
    return _CACHE[key]


def _worker_warm(key):
    _worker_pairs(key)
    time.sleep(0.5)  # so that each worker takes one warm-up task
    return os.getpid()


def _worker_batch(spec, step):
    key, patch, batch, seed, degradation = spec
    sampler = _CACHE.get(spec)
    if sampler is None:
        from srgan_cli.train.data import PatchSampler

        sampler = _CACHE[spec] = PatchSampler(_worker_pairs(key), patch, batch, seed, degradation)
    lr, hr = sampler.batch_at(step)
    return np.rint(lr * 255.0).astype(np.uint8), np.rint(hr * 255.0).astype(np.uint8)


# After the worker functions (the forked workers' __main__ must hold them), before JAX.
_POOL = multiprocessing.get_context("fork").Pool(PROCS) if PROCS else None
if _POOL is not None:
    import atexit

    atexit.register(_POOL.terminate)

import jax  # noqa: E402
import keras  # noqa: E402
from keras import ops  # noqa: E402

from srgan_cli.train import loop  # noqa: E402


class AdaptiveCosine(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, lr: float, ratio: float, total0: int) -> None:
        self.lr, self.ratio, self.total0 = float(lr), float(ratio), int(total0)
        self.total = None  # optimizer variable, attached in build_trainable

    def __call__(self, step):
        total = ops.maximum(ops.cast(self.total, "float32"), 1.0)
        frac = ops.minimum(ops.cast(step, "float32") / total, 1.0)
        return self.lr * (self.ratio + (1.0 - self.ratio) * 0.5 * (1.0 + ops.cos(math.pi * frac)))

    def value_at(self, step: int, total: float) -> float:
        frac = min(step / max(total, 1.0), 1.0)
        return self.lr * (self.ratio + (1.0 - self.ratio) * 0.5 * (1.0 + math.cos(math.pi * frac)))

    def get_config(self):
        return {"lr": self.lr, "ratio": self.ratio, "total0": self.total0}


_SCHED: dict = {}


def _schedule(cfg):
    if cfg.warmup_steps:
        raise SystemExit("train_jax.py: no warm-up in the adaptive cosine")
    _SCHED["s"] = AdaptiveCosine(cfg.lr, cfg.lr_min_ratio, int(os.environ.get("TOTAL0", cfg.steps)))
    return _SCHED["s"]


_orig_build = loop.build_trainable


def build_trainable(cfg):
    model, gen = _orig_build(cfg)
    sched = _SCHED["s"]
    sched.total = model.optimizer.add_variable(
        shape=(),
        initializer=keras.initializers.Constant(float(sched.total0)),
        dtype="float32",
        name="cosine_total",
    )
    return model, gen


_orig_batch_end = loop._Progress.on_train_batch_end
_orig_epoch_end = loop._Progress.on_epoch_end


def on_train_batch_end(self, batch, logs=None):
    if self.ema is None:
        return
    state = getattr(self.trainee, "_jax_state", None)
    if state is None:
        return _orig_batch_end(self, batch, logs)
    if not hasattr(self, "_ema_idx"):
        index = {id(v): i for i, v in enumerate(self.trainee.trainable_variables)}
        self._ema_idx = [index[id(w)] for w in self.gen.weights]
        decay = float(self.cfg.ema)
        self._ema_fn = jax.jit(
            lambda avg, cur: [a * decay + (1.0 - decay) * c for a, c in zip(avg, cur, strict=True)]
        )
        self.ema = [jax.numpy.asarray(a, dtype="float32") for a in self.ema]
    weights = state["trainable_variables"]
    self.ema = self._ema_fn(self.ema, [weights[i] for i in self._ema_idx])


def on_epoch_end(self, epoch, logs=None):
    _orig_epoch_end(self, epoch, logs)
    sched, every, now = _SCHED["s"], self.cfg.log_every, time.time()
    if self.step in EXTRA and not self.trainee.stop_training:
        self.save()
        now = time.time()
    if not hasattr(self, "_t_ref"):  # the first interval holds the compile: no rate yet
        self._t_ref, self._step_ref = now, self.step
        per_step, total = float("nan"), float(sched.total0)
    else:
        per_step = (now - self._t_ref) / (self.step - self._step_ref)
        extra = int((DEADLINE - RESERVE - now) / per_step) // every * every
        total = float(self.step + max(0, extra))
    if total <= self.step:
        total = float(self.step)
        self.trainee.stop_training = True
    sched.total.assign(total)
    row = {
        "step": self.step,
        "total": int(total),
        "lr_next": sched.value_at(self.step, total),
        "s_per_step": per_step,
        "left_s": round(DEADLINE - now, 1),
        "time": now,
    }
    with open(self.run_dir / "schedule.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


_SPEC: dict = {}
_orig_load_pairs = loop.load_pairs


def load_pairs(files, min_lr_side=1, scales=(1.0,)):
    if "key" not in _SPEC:  # loop.run loads the training photos first, then the held-out
        _SPEC["key"] = (tuple(str(f) for f in files), int(min_lr_side), tuple(scales))
        if _POOL is not None:
            _SPEC["warm"] = [_POOL.apply_async(_worker_warm, (_SPEC["key"],)) for _ in range(PROCS)]
    return _orig_load_pairs(files, min_lr_side, scales)


class PoolSampler(loop.PatchSampler):
    def __init__(self, pairs, patch, batch, seed, degradation="bicubic"):
        super().__init__(pairs, patch, batch, seed, degradation)
        self.degradation = degradation

    def batches(self, start_step, threads=1):
        if _POOL is None:
            yield from super().batches(start_step, threads)
            return
        spec = (_SPEC["key"], self.patch, self.batch, self.seed, self.degradation)
        steps = itertools.count(start_step)
        ahead = deque(
            _POOL.apply_async(_worker_batch, (spec, next(steps))) for _ in range(2 * PROCS)
        )
        while True:
            lr8, hr8 = ahead.popleft().get()
            ahead.append(_POOL.apply_async(_worker_batch, (spec, next(steps))))
            yield lr8.astype(np.float32) / 255.0, hr8.astype(np.float32) / 255.0


loop.load_pairs = load_pairs
loop.PatchSampler = PoolSampler
loop._schedule = _schedule
loop.build_trainable = build_trainable
loop._Progress.on_train_batch_end = on_train_batch_end
loop._Progress.on_epoch_end = on_epoch_end
loop.data_threads = lambda: THREADS

if __name__ == "__main__":
    from srgan_cli.cli import main

    sys.argv = ["srgan", "train", *sys.argv[1:]]
    main()
