"""Pack the training photos for the device call into .gpu/data (git-ignored).

The held-out photos (the 10 that split_validation picks) are lossless WebP; the 281
training photos are JPEG 4:4:4 (optimised, progressive): BSD200 at q94 (about 46 dB PSNR),
T91 at q95 (about 42 dB), because all 291 lossless (41 MB) do not fit in the 64 MiB call
next to the tracked tree (21 MB), the exact bf16 VGG16 (20 MB) and the LPIPS weights.
Names are kept, so the sorted list and the held-out split are the same as ../shared's.
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, "src")
from srgan_cli.train.data import list_images, split_validation

SOURCE, OUT = Path("../shared/datasets/train"), Path(".gpu/data")
files = list_images(SOURCE)
train, val = split_validation(files, 10)
val = set(val)
psnrs = []
for src in files:
    rel = src.relative_to(SOURCE)
    lossy = src not in val
    quality = 94 if rel.parts[0] == "BSD200" else 95
    dst = OUT / rel.with_suffix(".jpg" if lossy else ".webp")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as img:
        a = np.asarray(img.convert("RGB"))
        if lossy:
            Image.fromarray(a).save(
                dst, "JPEG", quality=quality, subsampling=0, optimize=True, progressive=True
            )
            with Image.open(dst) as back:
                b = np.asarray(back.convert("RGB")).astype(float)
            psnrs.append(10 * np.log10(255**2 / np.mean((b - a) ** 2)))
        else:
            img.save(dst, "WEBP", lossless=True, quality=100, method=4)
            with Image.open(dst) as back:
                assert np.array_equal(np.asarray(back.convert(img.mode)), np.asarray(img)), src
print("jpeg psnr mean/min", np.mean(psnrs), np.min(psnrs), len(psnrs))
f2 = list_images(OUT)
t2, v2 = split_validation(f2, 10)


def stems(paths, root):
    return [p.relative_to(root).with_suffix("").as_posix() for p in paths]


assert stems(v2, OUT) == stems(sorted(val), SOURCE)
assert stems(t2, OUT) == stems(train, SOURCE)
print("split identical;", [p.name for p in v2])
