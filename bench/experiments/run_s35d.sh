#!/usr/bin/env bash
# Thirty-fifth session, call 4: stage boxes (branch s35-boxes: K and V of two adjacent tiles in one
# 5-d box each) against 1a04edd.
#   bash bench/experiments/run_s35d.sh      (carry .gpu/s35d.tar.gz: lean/, boxes/, tests/, lib/)
# The CUDA suite, memcheck / racecheck on the pair-kernel tests, the demo, outputs of lean, boxes
# and boxes with TRIMIX_CUDA_STAGE_BOXES=0 on the same random inputs, three alternating rounds,
# then compare_gpu.py at 16K (SDPA flash skipped) with the boxes binary.
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s35d.tar.gz r
cuda_checks $B/tests "tile-engine band items with the sink keys in another tile*,tile-engine: consumers that run many items in a row*"
bash bench/ab_gpu.sh --out $R/ab --rounds 3 --seq 16384,65536 --masks triangle,causal,streaming \
  --agree 4000 --timeout 90 --env off:TRIMIX_CUDA_STAGE_BOXES=0 \
  lean=$B/lean/attention_bench boxes=$B/boxes/attention_bench off=$B/boxes/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; cat $R/ab/agree.txt $R/ab/summary.txt
if [ $((SECONDS - t0)) -lt 400 ]; then
  TRIMIX_COMMIT=${COMMIT:-boxes} timeout $((560 - SECONDS + t0)) python3 bench/compare_gpu.py --bench $B/boxes/attention_bench \
    --out $R/cmp --seq 16384 --skip-peers flash > $R/cmp.log 2>&1
  echo "compare rc=$? at $((SECONDS - t0)) s"; tail -6 $R/cmp.log
fi
tar czf $OUT/s35d_logs.tar.gz -C $R . && rm -rf $R/ab $R/cmp
