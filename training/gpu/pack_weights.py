"""VGG16 (conv0..12) as bf16 byte planes (exact for the GAN stage: its VGG runs under
mixed_bfloat16, which rounds the float32 kernels to bf16 by round-to-nearest-even anyway),
LPIPS-Alex as float16 (its held-out LPIPS moves by 2e-5: 0.262240 against 0.262257 for
the shipped real). The sign/exponent plane is lzma'd, the mantissa plane stored raw.
unpack_weights.py restores float32 npz files."""

import json
import lzma
from pathlib import Path

import numpy as np

vgg = np.load("../shared/weights/vgg16_imagenet.npz")
out = {}
for i in range(13):
    for part in ("kernel", "bias"):
        k = f"conv{i}_{part}"
        u = vgg[k].astype(np.float32).view(np.uint32)
        b = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
        out[k + "_hi"], out[k + "_lo"] = (b >> 8).astype(np.uint8), (b & 0xFF).astype(np.uint8)
keys = sorted(out)
hi = b"".join(out[k].tobytes() for k in keys if k.endswith("_hi"))
lo = b"".join(out[k].tobytes() for k in keys if k.endswith("_lo"))
Path(".gpu/vgg16_bf16_hi.xz").write_bytes(lzma.compress(hi, preset=9 | lzma.PRESET_EXTREME))
Path(".gpu/vgg16_bf16_lo.bin").write_bytes(lo)
shapes = {k[:-3]: list(vgg[k[:-3]].shape) for k in keys if k.endswith("_hi")}
Path(".gpu/vgg16_shapes.json").write_text(json.dumps(shapes))
lp = np.load("../shared/weights/lpips_alex.npz")
np.savez(".gpu/lpips_fp16.npz", **{k: lp[k].astype(np.float16) for k in lp.files})
raw = Path(".gpu/lpips_fp16.npz").read_bytes()
Path(".gpu/lpips_fp16.npz.xz").write_bytes(lzma.compress(raw, preset=9))
Path(".gpu/lpips_fp16.npz").unlink()
