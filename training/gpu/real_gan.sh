#!/bin/bash
# One device call (lent H200, JAX): a GAN stage of `real` from the shipped weights with
# real-p48b's flags plus --texture-weight 0.1 at batch 32, patch 48, for as many steps as fit
# before TRAIN_END (adaptive cosine, .gpu/train_jax.py). .gpu/score_watch.py scores the shipped
# real and every snapshot on the 10 held-out photos under real-web-sharp while it trains;
# with ALPHAS set, .gpu/score_blends.py then scores each snapshot blended with the shipped real.
#   real-gpu1: RUN=/tmp/real-gpu1 LOWRES=500 SEED=30 EXTRA=200,500 TRAIN_END=480 HARD_END=528 \
#              bash .gpu/real_gan.sh
#   real-gpu2: RUN=/tmp/real-gpu2 LOWRES=1500 SEED=31 EXTRA=200,500,1000 TRAIN_END=460 \
#              HARD_END=545 ALPHAS=0.15,0.3,0.5 bash .gpu/real_gan.sh
# Needs (carried): .gpu (training/gpu/*.py and this script, the data from pack_data.py, the
# bf16 VGG planes and fp16 LPIPS from pack_weights.py, keras/namex/optree for Python 3.12).
set -u
T0=$(date +%s)
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu.log") 2>&1
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=${PY:-python3}
TRAIN_END=${TRAIN_END:-460}; HARD_END=${HARD_END:-545}; ALPHAS=${ALPHAS:-}
if [ -z "${SKIP_WHEELS:-}" ]; then
  mkdir -p /tmp/site && tar -xJf .gpu/site312.tar.xz -C /tmp/site || exit 1  # keras, namex, optree wheels, unzipped
  export PYTHONPATH=$PWD/src:/tmp/site
else
  export PYTHONPATH=$PWD/src${EXTRA_PYTHONPATH:+:$EXTRA_PYTHONPATH}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
$PY -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)" || exit 1
W=/tmp/w; mkdir -p $W; $PY .gpu/unpack_weights.py $W || exit 1
RUN=${RUN:-/tmp/real-gan}; rm -rf "$RUN"; STOP=/tmp/train.done; rm -f $STOP
JAX_DEFAULT_MATMUL_PRECISION=highest $PY .gpu/score_watch.py "$RUN" weights/real.weights.h5 $W/lpips_alex.npz $STOP 0.05 >/tmp/score.out 2>&1 &
WATCH=$!
NOW=$(( $(date +%s) - T0 ))
echo "train start ${NOW}s"
TRAIN_DEADLINE=$((T0 + TRAIN_END)) TOTAL0=${TOTAL0:-6000} EXTRA_SNAPSHOTS=${EXTRA:-200,500} \
timeout $((TRAIN_END + 20 - NOW)) $PY .gpu/train_jax.py --stage gan --data "${DATA:-.gpu/data}" \
  --run-dir "$RUN" --init-weights weights/real.weights.h5 --vgg-weights $W/vgg16_imagenet.npz \
  --degradation real-web-sharp --scales 1,0.9,0.8,0.7,0.6 --precision bf16 \
  --vgg-pre-relu --vgg-taps conv4_3,conv5_3 --relativistic --ema 0.995 \
  --pixel-weight 1 --lowres-weight ${LOWRES:-500} --grid-weight 50 --content-weight 1 --adv-weight 0.7 \
  --texture-weight 0.1 --texture-taps conv2_2,conv3_3 \
  --disc-kind unet --disc-width 32 --disc-spectral-norm \
  --lr 5e-5 --lr-min-ratio 0.01 --warmup-steps 0 --batch ${B:-32} --patch ${P:-48} \
  --steps ${CAP:-100000} --log-every ${EVERY:-100} --checkpoint-minutes ${CKPT:-1} \
  --max-minutes $(( (TRAIN_END + 10 - NOW) / 60 + 1 )) --val-images ${VAL:-10} --seed ${SEED:-30} \
  >/tmp/main.out 2>&1
RC=$?; echo "train rc=$RC at $(( $(date +%s) - T0 ))s"
[ $RC -ne 0 ] && grep -v "^I0000\|WARNING: All\|step/s" /tmp/main.out | tail -c 3000
touch $STOP
LEFT=$([ -n "$ALPHAS" ] && echo 40 || echo 10)  # seconds kept for the blends
while kill -0 $WATCH 2>/dev/null && [ $(( $(date +%s) - T0 )) -lt $((HARD_END - LEFT)) ]; do sleep 1; done
kill $WATCH 2>/dev/null && echo "watcher killed at $(( $(date +%s) - T0 ))s"
if [ -n "$ALPHAS" ]; then
  echo "blends from $(( $(date +%s) - T0 ))s"
  JAX_DEFAULT_MATMUL_PRECISION=highest $PY .gpu/score_blends.py "$RUN" weights/real.weights.h5 \
    $W/lpips_alex.npz $((T0 + HARD_END - 10)) "$ALPHAS" 2>&1 | grep "^blend" | cut -c1-160
fi
grep -v "^\s*$" /tmp/score.out | grep -iv "warning\|^I0000\|absl" | tail -25
grep -o "Error.*\|Traceback.*" /tmp/main.out | tail -5
tail -3 "$RUN/log.jsonl" 2>/dev/null; tail -2 "$RUN/schedule.jsonl" 2>/dev/null
$PY .gpu/pack_out.py "$RUN" "$OUT" 6
ls -la "$OUT"; echo "done at $(( $(date +%s) - T0 ))s"
