#!/usr/bin/env bash
# The worked example of docs/downstream.md, end to end: features -> pseudo-labels -> heads -> scores -> files.
# Usage: docs/examples/worked_example.sh [VIDEO_FOLDER] [WORK_FOLDER]   (run from the project root)
# MODEL: a registered model name (its published weights are downloaded once) or a saved model folder.
set -euo pipefail

VIDEOS=${1:-../shared/data/videos}
WORK=${2:-${TMPDIR:-/tmp}/faceaffect_downstream_example}
MODEL=${MODEL:-enet_b0_8_va_mtl}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK"

# 1. per-frame embeddings and logits of every face (resumable: run it again and finished videos are skipped)
faceaffect features "$VIDEOS" -o "$WORK/features" -m "$MODEL" --stride 2 --detect-images

# 2. annotation folders in the real Aff-Wild2 / Hume-Vidmimic2 formats (PSEUDO-labels, see the script)
python "$HERE/pseudo_annotations.py" "$WORK/features" "$WORK/Annotations"

# 3. heads with the paper's losses; smoothing window and AU thresholds tuned on Validation_Set
for task in va expr au; do
  faceaffect heads train "$task" -f "$WORK/features" --labels "$WORK/Annotations" -o "$WORK/heads/$task" \
    --report "$WORK/heads/$task.json" -q
done
faceaffect heads train emi -f "$WORK/features" --labels "$WORK/Annotations/EMI" -o "$WORK/heads/emi" \
  --epochs 200 --patience 30 -q

# 4. scores on the validation split, zero-shot baselines, compound expressions without labels
faceaffect heads evaluate "$WORK/heads/expr" -f "$WORK/features" --labels "$WORK/Annotations"
faceaffect heads evaluate zero-shot-expr -f "$WORK/features" --labels "$WORK/Annotations"
faceaffect heads evaluate zero-shot-ce -f "$WORK/features" --report "$WORK/ce.json"

# 5. challenge-format prediction files and an ONNX head
faceaffect heads predict "$WORK/heads/au" -f "$WORK/features" -o "$WORK/predictions/au"
faceaffect heads predict "$WORK/heads/emi" -f "$WORK/features" -o "$WORK/predictions/emi"
faceaffect heads export "$WORK/heads/expr" -o "$WORK/expr_head.onnx"
