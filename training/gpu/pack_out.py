"""Copy what comes back from the device: meta.tar.gz (run records) and <= MAX snapshots."""

import json
import shutil
import sys
import tarfile
from pathlib import Path

run, out = Path(sys.argv[1]), Path(sys.argv[2])
MAX = int(sys.argv[3]) if len(sys.argv) > 3 else 6
with tarfile.open(out / "meta.tar.gz", "w:gz") as tar:
    for name in (
        "config.json",
        "log.jsonl",
        "schedule.jsonl",
        "scores.jsonl",
        "selected.json",
        "blends.jsonl",
        "validation_images.txt",
        "best.json",
        "last.json",
    ):
        if (run / name).is_file():
            tar.add(run / name, arcname=name)
    for extra in ("/tmp/main.out", "/tmp/score.out"):
        if Path(extra).is_file():
            tar.add(extra, arcname=Path(extra).name)
snaps = {
    int(p.name.split("-")[1].split(".")[0]): p
    for p in (run / "snapshots").glob("step-*.weights.h5")
}
ref, rows = None, []
if (run / "scores.jsonl").is_file():
    for line in (run / "scores.jsonl").read_text().splitlines():
        r = json.loads(line)
        if "reference" in r:
            ref = r
        else:
            rows.append(r)
order = []


def want(step):
    if step is not None and step in snaps and step not in order:
        order.append(step)


if ref and (run / "blends.jsonl").is_file():
    blends = [json.loads(x) for x in (run / "blends.jsonl").read_text().splitlines()]
    good = [
        b for b in blends if b["val_psnr"] > ref["val_psnr"] and b["val_lpips"] < ref["val_lpips"]
    ]
    for b in sorted(good, key=lambda b: b["val_lpips"]):
        want(b["step"])
if ref and rows:
    both = [
        r for r in rows if r["val_psnr"] > ref["val_psnr"] and r["val_lpips"] < ref["val_lpips"]
    ]
    for r in sorted(both, key=lambda r: r["val_lpips"]):
        want(r["step"])
    for drop in (0.05, 0.01, 0.2, 0.5):
        ok = [r for r in rows if r["val_psnr"] >= ref["val_psnr"] - drop]
        if ok:
            want(min(ok, key=lambda r: r["val_lpips"])["step"])
want(max(snaps) if snaps else None)
if rows:
    want(min(rows, key=lambda r: r["val_lpips"])["step"])
for step in sorted(snaps):
    want(step)
for step in order[:MAX]:
    shutil.copyfile(snaps[step], out / f"{run.name}-step-{step:07d}.weights.h5")
print("brought back steps", order[:MAX], "of", sorted(snaps))
