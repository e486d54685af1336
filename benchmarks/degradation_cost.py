"""What ``--degradation real`` adds to a training step (issue: keep it within ~1.3x).

Times, in one run on the same photos: making a batch with the protocol's precomputed
bicubic LR and with the random real-world chain (both ``PatchSampler.batch_at``), and one
optimizer step of the generator on such a batch (PSNR and GAN stages, the model's cost does
not depend on how the LR was made). Keras ``fit`` draws batches on the training thread, so
a step costs model + batch; the ratio printed is (model + real batch) / (model + clean batch).

    python benchmarks/degradation_cost.py [--batch 8] [--patch 32] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up (graph tracing, caches)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/datasets/train")
    parser.add_argument("--vgg-weights", default="../shared/weights/vgg16_imagenet.npz")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--stages", default="psnr,gan")
    args = parser.parse_args()

    from srgan_cli.train import loop
    from srgan_cli.train.config import TrainConfig
    from srgan_cli.train.data import PatchSampler, list_images, load_pairs
    from srgan_cli.train.networks import LOSS_TERMS

    pairs = load_pairs(list_images(args.data)[:60], args.patch)
    samplers = {
        name: PatchSampler(pairs, args.patch, args.batch, seed=0, degradation=name)
        for name in ("bicubic", "real")
    }
    steps = iter(range(10**9))
    batch_s = {
        name: _median_seconds(lambda s=sampler: s.batch_at(next(steps)), args.repeats)
        for name, sampler in samplers.items()
    }
    result = {"batch": args.batch, "patch": args.patch, "batch_s": batch_s, "stages": {}}
    lr, hr = samplers["bicubic"].batch_at(0)
    for stage in args.stages.split(","):
        cfg = TrainConfig(stage=stage, batch=args.batch, patch=args.patch, precision="bf16")
        cfg.vgg_weights = args.vgg_weights
        model, _ = loop.build_trainable(cfg)
        if stage == "psnr":
            x, y = lr, hr
        else:
            x, y = (lr, hr), np.zeros((args.batch, len(LOSS_TERMS)), "float32")
        step_s = _median_seconds(lambda m=model, x=x, y=y: m.train_on_batch(x, y), args.repeats)
        result["stages"][stage] = {
            "model_step_s": step_s,
            "ratio_real_vs_clean": (step_s + batch_s["real"]) / (step_s + batch_s["bicubic"]),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
