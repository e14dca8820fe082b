#!/usr/bin/env bash
# The GPU measurements, in one go (for a machine with an NVIDIA GPU and driver): installs the GPU
# extra, then prints as JSON lines (bench's format) every figure of `python -m cmri2spec_tf.bench`
# for float32, mixed_float16 and mixed_bfloat16, without and with XLA, at batch 8 and at the
# largest batch that fits; then a few hundred steps of the paper's training run on the phantom;
# nvidia-smi samples GPU utilization and memory every second meanwhile (gpu_samples.csv).
#
#   bash tools/gpu_bench.sh [OUT_DIR]          (default: gpu_bench_out)
#
# Knobs (environment): STEPS (timed steps per round, 20), ROUNDS (3), REPEATS (40),
# BATCHES (the batches tried for "largest that fits", "8 16 32 64 128 256"), TRAIN_PAIRS (pairs
# of the short paper-config run, 3200 = 400 steps of 8), PRECISIONS ("float32 mixed_float16
# mixed_bfloat16"), JITS ("--nojit --jit"), SKIP_INSTALL=1 to use the current environment.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu_bench_out}
mkdir -p "$OUT"
PY=${PYTHON:-.venv/bin/python}
STEPS=${STEPS:-20} ROUNDS=${ROUNDS:-3} REPEATS=${REPEATS:-40}
BATCHES=${BATCHES:-"8 16 32 64 128 256"}
TRAIN_PAIRS=${TRAIN_PAIRS:-3200}
PRECISIONS=${PRECISIONS-"float32 mixed_float16 mixed_bfloat16"}
JITS=${JITS-"--nojit --jit"}

[ -n "${SKIP_INSTALL:-}" ] || make install-gpu 2>&1 | tee "$OUT/install.log"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,memory.total \
      --format=csv -l 1 > "$OUT/gpu_samples.csv" &
  SMI=$!
  trap 'kill $SMI 2>/dev/null' EXIT
fi

bench() {  # precision, jit flag, batch -> one JSON block; returns the bench's status
  echo "{\"run\": \"bench\", \"precision\": \"$1\", \"jit\": \"$2\", \"batch\": $3}"
  "$PY" -m cmri2spec_tf.bench --precision="$1" "$2" --batch="$3" --steps="$STEPS" \
      --rounds="$ROUNDS" --repeats="$REPEATS" 2>>"$OUT/bench.stderr"
}

for precision in $PRECISIONS; do
  for jit in $JITS; do
    bench "$precision" "$jit" 8 | tee -a "$OUT/bench.jsonl"
    largest=""
    for batch in $BATCHES; do  # the largest batch that runs (an out-of-memory error ends it)
      if "$PY" -m cmri2spec_tf.bench --precision="$precision" "$jit" --batch="$batch" \
          --steps=1 --rounds=1 --repeats=1 >/dev/null 2>>"$OUT/bench.stderr"; then
        largest=$batch
      else
        break
      fi
    done
    if [ -n "$largest" ] && [ "$largest" != 8 ]; then
      bench "$precision" "$jit" "$largest" | tee -a "$OUT/bench.jsonl"
    fi
  done
done

echo "{\"run\": \"train\", \"config\": \"paper\", \"pairs\": $TRAIN_PAIRS}" | tee -a "$OUT/bench.jsonl"
/usr/bin/time -v "$PY" -m cmri2spec_tf.train --flagfile=configs/paper.cfg \
    --data_dir="$OUT/phantom" --model_dir="$OUT/paper_run" --cache_dir="$OUT/cache" \
    --epochs=1 --pairs_per_epoch="$TRAIN_PAIRS" --precision=mixed_float16 --verbose=2 \
    > "$OUT/train.log" 2>&1
echo "train exit $?; $(grep -m1 'Elapsed' "$OUT/train.log")" | tee -a "$OUT/bench.jsonl"
[ -f "$OUT/gpu_samples.csv" ] && tail -n 5 "$OUT/gpu_samples.csv"
echo "wrote $OUT/bench.jsonl, train.log, gpu_samples.csv"
