import io
import json
import lzma
import sys
from pathlib import Path

import numpy as np

dst = sys.argv[1]
shapes = json.loads(Path(".gpu/vgg16_shapes.json").read_text())
hi = np.frombuffer(lzma.decompress(Path(".gpu/vgg16_bf16_hi.xz").read_bytes()), np.uint8)
lo = np.frombuffer(Path(".gpu/vgg16_bf16_lo.bin").read_bytes(), np.uint8)
assert hi.size == lo.size
vgg, at = {}, 0
for k in sorted(shapes):
    n = int(np.prod(shapes[k]))
    b = (hi[at : at + n].astype(np.uint32) << 8) | lo[at : at + n].astype(np.uint32)
    vgg[k] = (b << 16).astype(np.uint32).view(np.float32).reshape(shapes[k])
    at += n
assert at == hi.size
np.savez(f"{dst}/vgg16_imagenet.npz", **vgg)
lp = np.load(io.BytesIO(lzma.decompress(Path(".gpu/lpips_fp16.npz.xz").read_bytes())))
np.savez(f"{dst}/lpips_alex.npz", **{k: lp[k].astype(np.float32) for k in lp.files})
print("unpacked", len(vgg), "vgg arrays,", len(lp.files), "lpips arrays")
