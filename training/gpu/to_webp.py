"""Copy the training photos as lossless WebP into the git-ignored ``.gpu/data`` (41 MB instead
of 60 MB), so a device call's working tree stays under its 64 MiB limit. Every file is read
back and compared pixel for pixel; names (and so the held-out split) are unchanged.

Run from the repository root: ``python training/gpu-psnr3/to_webp.py``.
"""

from pathlib import Path

import numpy as np
from PIL import Image

SOURCE, OUT = Path("../shared/datasets/train"), Path(".gpu/data")

for src in sorted(SOURCE.rglob("*.png")):
    dst = OUT / src.relative_to(SOURCE).with_suffix(".webp")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as img:
        img.save(dst, "WEBP", lossless=True, quality=100, method=4)
        with Image.open(dst) as back:
            assert np.array_equal(np.asarray(back.convert(img.mode)), np.asarray(img)), src
print(f"wrote {OUT}")
