#!/bin/bash
# Second device call: srresnet PSNR stage with scale augmentation, fixed steps (speed known).
set -u
T0=$(date +%s)
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu2.log") 2>&1
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=${PY:-python3}
if [ -z "${SKIP_WHEELS:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=$PWD/src:/tmp/site
else
  export PYTHONPATH=$PWD/src
fi
STOP=$((T0 + ${TRAIN_SECONDS:-290}))
MINUTES=$($PY -c "print(round(($STOP - $(date +%s)) / 60, 2))")
timeout $((STOP - $(date +%s) + 20)) $PY -m srgan_cli train --stage psnr --init-weights weights/srresnet.weights.h5 \
  --batch ${B:-64} --patch ${P:-48} --precision bf16 --data ${DATA:-.gpu/data} --run-dir /tmp/run2 \
  --steps ${STEPS:-10000} --log-every ${EVERY:-250} --checkpoint-minutes 2 --max-minutes "$MINUTES" \
  --lr ${LR:-5e-5} --lr-min-ratio 0 --warmup-steps 200 --seed 42 --scales 1,0.9,0.8,0.7,0.6 >/tmp/main2.out 2>&1
echo "main rc=$? at $(( $(date +%s) - T0 ))s"; tail -c 600 /tmp/main2.out; echo
for f in best.weights.h5 last.weights.h5 log.jsonl config.json; do cp /tmp/run2/$f "$OUT/" 2>/dev/null; done
tail -2 /tmp/run2/log.jsonl; cat /tmp/run2/best.json 2>/dev/null; ls "$OUT"
