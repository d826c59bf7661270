#!/usr/bin/env bash
# `make demo`: the main job end to end on Fashion-MNIST (Debian's dataset-fashion-mnist).
#
#   train W1A2 LmnetV1 (short schedule) -> evaluate -> export QONNX -> convert -> verify codes
#   -> deployed accuracy on the 10,000 test images through the runtime -> latency of the
#   deployed W1A2 model vs its float twin in LibTorch (1 thread, batch 1) -> report.
#
# Everything lands in $DEMO_OUT (default demo-output/): report.md, summary.json, the pictures,
# and the intermediate files of every stage. Environment knobs (defaults in brackets):
#   BUILD_DIR [build]  DEMO_OUT [demo-output]  DEMO_EPOCHS [2]  DEMO_VERIFY_IMAGES [500]
#   DEMO_CONFIG [configs/fmnist_lmnetv1_w1a2.yaml]
set -euo pipefail

BUILD_DIR=${BUILD_DIR:-build}
OUT=${DEMO_OUT:-demo-output}
EPOCHS=${DEMO_EPOCHS:-2}
VERIFY_IMAGES=${DEMO_VERIFY_IMAGES:-500}
CONFIG=${DEMO_CONFIG:-configs/fmnist_lmnetv1_w1a2.yaml}
FLOAT_CONFIG=configs/fmnist_lmnetv1_float.yaml
DATA=/usr/share/datasets/fashion-mnist
PYTHON=${PYTHON:-/usr/bin/python3}
LOWBIT="$BUILD_DIR/bin/lowbit"

[ -x "$LOWBIT" ] || { echo "demo: $LOWBIT is missing; run 'make build' first" >&2; exit 1; }
[ -f "$DATA/t10k-images-idx3-ubyte.gz" ] || {
  echo "demo: $DATA/t10k-images-idx3-ubyte.gz is missing; install dataset-fashion-mnist (make setup)" >&2
  exit 1
}

mkdir -p "$OUT"
rm -rf "$OUT/train" "$OUT/model"
stage_names=()
stage_seconds=()
demo_start=$SECONDS

stage() {  # stage "name" command...
  local name=$1
  shift
  echo
  echo "== demo: $name =="
  local start=$SECONDS
  "$@"
  stage_names+=("$name")
  stage_seconds+=($((SECONDS - start)))
}

stage "train ($EPOCHS epochs, W1A2 LmnetV1)" \
  "$LOWBIT" train "$CONFIG" --out "$OUT/train" --epochs "$EPOCHS"
stage "evaluate the trained model on the 10,000 test images" \
  "$LOWBIT" eval "$OUT/train/checkpoints/best.pt" --report "$OUT" --json "$OUT/eval.json"
stage "export QONNX" \
  "$LOWBIT" export "$OUT/train/checkpoints/best.pt" --out "$OUT/model.onnx"
stage "convert" \
  "$LOWBIT" convert "$OUT/model.onnx" --out "$OUT/model"
stage "verify integer codes against the reference interpreter ($VERIFY_IMAGES test images)" \
  "$LOWBIT" verify "$OUT/model.onnx" "$OUT/model" --data "$DATA" --images "$VERIFY_IMAGES" --json "$OUT/verify.json"
stage "deployed accuracy: the runtime on the 10,000 test images" \
  "$LOWBIT" predict "$OUT/model" --data "$DATA" --json "$OUT/predictions.json"
stage "latency: deployed W1A2 model (runtime, 1 thread, batch 1)" \
  "$LOWBIT" bench "$OUT/model" --threads 1 --runs 2000 --json "$OUT/latency_w1a2.json"
stage "latency: float twin in LibTorch (1 thread, batch 1)" \
  "$LOWBIT" torch-bench "$FLOAT_CONFIG" --threads 1 --runs 2000 --json "$OUT/latency_float.json"

timings=""
for i in "${!stage_names[@]}"; do timings+="${stage_names[$i]}"$'\t'"${stage_seconds[$i]}"$'\n'; done
printf '%s' "$timings" > "$OUT/stage_seconds.tsv"
"$PYTHON" scripts/demo_report.py "$OUT" --dataset "$DATA" --total-seconds $((SECONDS - demo_start))
