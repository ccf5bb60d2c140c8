#!/usr/bin/env bash
# The SAM 2 engine's GPU checks, in under 8 minutes on one GPU (run from the repository root):
#   1. the equivalence tests against Meta's SAM2VideoPredictor on CUDA, float32 and bf16 autocast;
#   2. benchmarks/propagation.py --device cuda: tiny and large at image size 1024, 200 slices,
#      with and without torch.compile (the compiled runs time our engine only), and the walk
#      modes (batched objects, overlapped walks, padded memories) on 100 slices, 1 and 3 objects,
#      and 3 objects with a correction each (memories of different lengths); what a batch costs
#      in the memory attention (benchmarks/batch_cost.py);
#   3. benchmarks/train_step.py --devices cuda.
# Each step has its own time limit, so one slow step cannot eat the others' time. The log goes to
# $OUT/gpu_check.log (or ./gpu_check.log). Packages not installed (sam2, hydra) can be put on
# PYTHONPATH beforehand. Record the figures in benchmarks/RESULTS.md.
set -u
LOG="${OUT:-.}/gpu_check.log"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
: >"$LOG"

step() {  # step SECONDS NAME COMMAND...
  local limit=$1 name=$2
  shift 2
  echo "=== $name (limit ${limit}s): $*" | tee -a "$LOG"
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | grep -v -e "Skipping the post-processing" -e "pred_masks_gpu = fill" \
    -e "cannot import name '_C'" | tee -a "$LOG"
  echo "=== $name: exit ${PIPESTATUS[0]} after $((SECONDS - t0)) s" | tee -a "$LOG"
}

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, sam2; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
} 2>&1 | tee -a "$LOG"

TESTS="tests/engines/test_sam2_equivalence.py tests/engines/test_sam2_equivalence_long.py
  tests/engines/test_sam2_feature_cache.py tests/engines/test_sam2_overlap.py"
# float32 and bf16 side by side (16 CPU cores; the GPU is mostly idle in these small tests).
# float32 encodes one slice per call, as the official predictor does: cuDNN's TF32 convolutions
# round differently at other batch sizes (benchmarks/RESULTS.md).
# Batched objects and overlapped walks (batches of both walks' slices) are compared in float32
# without TF32 only: TF32 convolutions and bf16 kernels round differently at other batch sizes
# (1e-3 on the H200 with TF32, up to 5e-3 under bf16 on the CPU; benchmarks/RESULTS.md).
SAM2VOL_TEST_DEVICE=cuda SAM2VOL_TEST_PRECISION=float32 SAM2VOL_TEST_ENCODE_BATCH=1 \
  NVIDIA_TF32_OVERRIDE=0 timeout 120 \
  python3 -m pytest -q -p no:cacheprovider $TESTS tests/engines/test_sam2_batched.py \
  tests/engines/test_sam2_padded_attention.py \
  >"${LOG%.log}_fp32.log" 2>&1 &
SAM2VOL_TEST_DEVICE=cuda SAM2VOL_TEST_PRECISION=bfloat16 SAM2VOL_TEST_BATCH_OBJECTS=0 \
  SAM2VOL_TEST_OVERLAP_WALKS=0 timeout 120 python3 -m pytest -q -p no:cacheprovider $TESTS \
  -k "not feature_cache and not batched and not overlap" \
  >"${LOG%.log}_bf16.log" 2>&1 &
wait
for p in fp32 bf16; do
  echo "=== equivalence tests on CUDA, $p:" | tee -a "$LOG"
  grep -v "propagate in video" "${LOG%.log}_$p.log" | tail -15 | tee -a "$LOG"
done

BENCH="python3 benchmarks/propagation.py --device cuda --slices 200 --image-size 1024"
step 80 "tiny, 1024, 200 slices" $BENCH --checkpoint random:sam2.1_hiera_t
step 60 "tiny, 1024, 200 slices, compiled (ours only)" \
  $BENCH --checkpoint random:sam2.1_hiera_t --compile --skip-official
step 80 "large, 1024, 200 slices, 4 rounds" $BENCH --checkpoint random:sam2.1_hiera_l --rounds 4
WALKS="python3 benchmarks/propagation.py --device cuda --walks --slices 100 --image-size 1024"
step 60 "walk modes, tiny, 1024, 100 slices, 1 and 3 objects (ours only)" \
  $WALKS --repeats 1 --skip-official
step 30 "walk modes, 3 objects, a correction each (ours only)" \
  $WALKS --repeats 1 --skip-official --walk-objects 3 --walk-corrections
step 20 "memory attention, batch cost" python3 benchmarks/batch_cost.py --device cuda --image-size 1024
step 30 "train step" python3 benchmarks/train_step.py --devices cuda
echo "=== done" | tee -a "$LOG"
