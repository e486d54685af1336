#!/bin/bash
# One device call: the srresnet PSNR stage on JAX (H200), sized to the call's time limit.
# A probe measures seconds per step at the real batch/patch, then the main run gets as many
# steps as fit before the deadline, so its cosine schedule really ends at lr ~0.
set -u
T0=$(date +%s)
END=$((T0 + ${TRAIN_SECONDS:-520}))      # main training must be done by here
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu.log") 2>&1
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=${PY:-python3}
if [ -z "${SKIP_WHEELS:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=$PWD/src:/tmp/site
else
  export PYTHONPATH=$PWD/src
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
$PY -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)" || exit 1
DATA=${DATA:-.gpu/data}; EVERY=${MAIN_EVERY:-250}; B=${B:-64}; P=${P:-48}; INIT=weights/srresnet.weights.h5
mkdir -p /tmp/probe_data && ls "$DATA"/*/*.webp | head -24 | xargs -I{} ln -sf "$PWD/{}" /tmp/probe_data/
COMMON="--stage psnr --init-weights $INIT --batch $B --patch $P --precision bf16"
PSTART=$(date +%s); echo "probe start $((PSTART - T0))s"
timeout 150 $PY -m srgan_cli train $COMMON --data /tmp/probe_data --run-dir /tmp/probe --steps ${PROBE_STEPS:-300} \
  --log-every ${PROBE_EVERY:-100} --val-images 2 --lr 1e-6 >/tmp/probe.out 2>&1 || { tail -20 /tmp/probe.out; }
cp /tmp/probe/log.jsonl "$OUT/probe.jsonl" 2>/dev/null
NOW=$(date +%s)
STEPS=$($PY - "$END" "$NOW" "$PSTART" "$EVERY" <<'PYEOF'
import json, sys, time
end, now, pstart, every = map(float, sys.argv[1:5])
rows = [json.loads(l) for l in open("/tmp/probe/log.jsonl")]
sps = rows[-1]["s_per_step"]
# start-up + XLA compile, as the probe's first interval saw it, + 25 s to load 291 photos
overhead = rows[0]["time"] - pstart - rows[0]["step"] * sps + 25.0
print(f"overhead {overhead:.0f} s", file=sys.stderr)
steps = int((end - now - overhead) / (sps * 1.04) // every * every)
steps = max(steps, int(every))
print(steps)
print(f"probe: {sps*1000:.1f} ms/step; main run gets {steps} steps", file=sys.stderr)
PYEOF
) || STEPS=${FALLBACK_STEPS:-6000}
echo "main start $(( $(date +%s) - T0 ))s steps=$STEPS"
MINUTES=$($PY -c "print(round(($END - $(date +%s)) / 60, 2))")
timeout $((END - $(date +%s) + 30)) $PY -m srgan_cli train $COMMON --data "$DATA" --run-dir /tmp/run \
  --steps "$STEPS" --log-every $EVERY --checkpoint-minutes 2 --max-minutes "$MINUTES" \
  --lr ${LR:-1.5e-4} --lr-min-ratio 0 --warmup-steps 200 --seed 41 >/tmp/main.out 2>&1
echo "main rc=$? at $(( $(date +%s) - T0 ))s"; tail -c 800 /tmp/main.out; echo
for f in best.weights.h5 last.weights.h5 log.jsonl config.json validation_images.txt; do cp /tmp/run/$f "$OUT/" 2>/dev/null; done
tail -3 /tmp/run/log.jsonl; cat /tmp/run/best.json 2>/dev/null; ls -la "$OUT"
