"""Score blends of a finished run's snapshots with the reference (ESRGAN network interpolation).

Usage: python .gpu/score_blends.py RUN_DIR REFERENCE LPIPS_NPZ DEADLINE_EPOCH_S ALPHAS

For each snapshot scored in RUN_DIR/scores.jsonl, lowest LPIPS first, and each alpha in
ALPHAS (comma-separated): the weights alpha * snapshot + (1 - alpha) * reference, exactly
what `srgan train --export SNAPSHOT --blend-with REFERENCE --alpha ALPHA` writes, scored by
the same `select.score` as the snapshots (held-out photos, the run's chain). Rows go to
RUN_DIR/blends.jsonl; it stops at DEADLINE_EPOCH_S.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

run_dir, reference, lpips_path = map(Path, sys.argv[1:4])
deadline = float(sys.argv[4])
alphas = [float(a) for a in sys.argv[5].split(",")]

from scoring import run_scorer  # noqa: E402

model, scored = run_scorer(run_dir, lpips_path)
model.load_weights(reference)
ref_weights = model.get_weights()
rows = [json.loads(line) for line in (run_dir / "scores.jsonl").read_text().splitlines()]
snaps = sorted((r for r in rows if "step" in r), key=lambda r: r["val_lpips"])
tmp = Path("/tmp/blend.weights.h5")
for row in snaps:
    model.load_weights(run_dir / row["file"])
    snap_weights = model.get_weights()
    for alpha in alphas:
        if time.time() > deadline:
            sys.exit(0)
        model.set_weights(
            [alpha * s + (1.0 - alpha) * r for s, r in zip(snap_weights, ref_weights, strict=True)]
        )
        model.save_weights(tmp)
        result = scored(tmp)
        out = {"step": row["step"], "alpha": alpha, **result}
        with open(run_dir / "blends.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(out) + "\n")
        print("blend", json.dumps(out), flush=True)
