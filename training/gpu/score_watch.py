"""Score a running GAN run's snapshots as they appear, the way `srgan train --select` does.

Usage: python .gpu/score_watch.py RUN_DIR REFERENCE LPIPS_NPZ STOP_FILE [MAX_DROP]

The same `select.score` (whole held-out photos, the run's degradation chain fixed per photo,
mean Y-PSNR and LPIPS-Alex) on the reference first, then on each snapshots/step-*.weights.h5
once its file is complete; rows go to RUN_DIR/scores.jsonl as they come. When STOP_FILE
exists and every snapshot is scored, it writes RUN_DIR/selected.json in select_snapshot's
format (rule: the lowest LPIPS with PSNR >= reference - MAX_DROP, default 0.05).
Run with JAX_DEFAULT_MATMUL_PRECISION=highest so the float32 scoring matches the CPU's.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

run_dir, reference, lpips_path, stop_file = map(Path, sys.argv[1:5])
max_drop = float(sys.argv[5]) if len(sys.argv) > 5 else 0.05

from scoring import run_scorer  # noqa: E402

while not (run_dir / "validation_images.txt").is_file() or not (run_dir / "config.json").is_file():
    time.sleep(1)
time.sleep(1)
_, scored = run_scorer(run_dir, lpips_path)
log = run_dir / "scores.jsonl"


def emit(row):
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
    print("score", json.dumps(row), flush=True)


t = time.time()
ref = scored(reference)
emit({"reference": str(reference), **ref, "seconds": round(time.time() - t, 1)})
rows, seen = [], {}
while True:
    stopping = stop_file.exists()
    pending = []
    for snap in sorted((run_dir / "snapshots").glob("step-*.weights.h5")):
        if snap.name in seen and seen[snap.name] == "done":
            continue
        st = snap.stat()
        sig = (st.st_size, st.st_mtime)
        if seen.get(snap.name) != sig or time.time() - st.st_mtime < 1.0:
            seen[snap.name] = sig  # not yet seen unchanged: look again next round
            pending.append(snap)
            continue
        step = int(snap.name.split("-")[1].split(".")[0])
        t = time.time()
        try:
            result = scored(snap)
        except Exception as err:  # a half-written file: retry next round
            print("retry", snap.name, err, flush=True)
            seen[snap.name] = None
            pending.append(snap)
            continue
        row = {"step": step, "file": str(snap.relative_to(run_dir)), **result}
        rows.append(row)
        seen[snap.name] = "done"
        emit({**row, "seconds": round(time.time() - t, 1)})
    if stopping and not pending:
        break
    time.sleep(0.5 if pending else 2.0)

rows.sort(key=lambda r: r["step"])
allowed = [r for r in rows if r["val_psnr"] >= ref["val_psnr"] - max_drop]
result = {
    "rule": f"lowest val LPIPS with val PSNR >= reference - {max_drop} dB",
    "reference": {"file": str(reference), **ref},
    "snapshots": rows,
    "selected": min(allowed, key=lambda r: r["val_lpips"]) if allowed else None,
}
(run_dir / "selected.json").write_text(json.dumps(result, indent=2) + "\n")
print("selected", json.dumps(result["selected"]), flush=True)
