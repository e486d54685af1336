#!/bin/bash
# One device call (lent GPU, JAX): a srresnet PSNR stage from the shipped weights.
#   gpu-psnr3: LR=1.5e-4 SEED=41 bash training/gpu/device_run.sh
#              (no STEPS: a 300-step probe sizes the run to TRAIN_SECONDS, so the cosine ends at ~0)
#   gpu-psnr4: STEPS=10000 LR=5e-5 SEED=42 SCALES=1,0.9,0.8,0.7,0.6 TRAIN_SECONDS=285 \
#              bash training/gpu/device_run.sh
# Needs .gpu/data (training/gpu/to_webp.py) and .whl (keras, namex, optree for Python 3.12),
# both carried; the best/last generator, log and config come back in $OUT.
set -u
T0=$(date +%s)
END=$((T0 + ${TRAIN_SECONDS:-520}))
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
DATA=${DATA:-.gpu/data}; EVERY=${MAIN_EVERY:-250}
COMMON="--stage psnr --init-weights weights/srresnet.weights.h5 --batch ${B:-64} --patch ${P:-48} --precision bf16"
STEPS=${STEPS:-}
if [ -z "$STEPS" ]; then  # probe: seconds per step at the real shapes, on 24 photos
  mkdir -p /tmp/probe_data && ls "$DATA"/*/*.webp | head -24 | xargs -I{} ln -sf "$PWD/{}" /tmp/probe_data/
  PSTART=$(date +%s)
  timeout 150 $PY -m srgan_cli train $COMMON --data /tmp/probe_data --run-dir /tmp/probe \
    --steps ${PROBE_STEPS:-300} --log-every ${PROBE_EVERY:-100} --val-images 2 --lr 1e-6 >/tmp/probe.out 2>&1
  cp /tmp/probe/log.jsonl "$OUT/probe.jsonl" 2>/dev/null
  STEPS=$($PY training/gpu/steps_that_fit.py /tmp/probe/log.jsonl "$PSTART" "$END" "$EVERY") || STEPS=6000
fi
echo "main start $(( $(date +%s) - T0 ))s steps=$STEPS"
MINUTES=$($PY -c "print(round(($END - $(date +%s)) / 60, 2))")
timeout $((END - $(date +%s) + 30)) $PY -m srgan_cli train $COMMON --data "$DATA" --run-dir /tmp/run \
  --steps "$STEPS" --log-every "$EVERY" --checkpoint-minutes 2 --max-minutes "$MINUTES" \
  --lr "${LR:-5e-5}" --lr-min-ratio 0 --warmup-steps 200 --seed "${SEED:-42}" --scales "${SCALES:-1}" \
  >/tmp/main.out 2>&1
echo "main rc=$? at $(( $(date +%s) - T0 ))s"; tail -c 800 /tmp/main.out; echo
for f in best.weights.h5 best.json last.weights.h5 log.jsonl config.json; do cp /tmp/run/$f "$OUT/" 2>/dev/null; done
tail -3 /tmp/run/log.jsonl; ls -la "$OUT"
