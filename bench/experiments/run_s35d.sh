#!/usr/bin/env bash
# Thirty-fifth session, call 4: stage boxes (branch s35-boxes: K and V of two adjacent tiles in one
# 5-d box each) against 1a04edd.
#   bash bench/experiments/run_s35d.sh      (carry .gpu/s35d.tar.gz: lean/, boxes/, tests/, lib/)
# The CUDA suite, memcheck / racecheck on the pair-kernel tests, the demo, outputs of lean, boxes
# and boxes with TRIMIX_CUDA_STAGE_BOXES=0 on the same random inputs, three alternating rounds,
# then compare_gpu.py at 16K (SDPA flash skipped) with the boxes binary.
set -uo pipefail
t0=$SECONDS
R=$OUT/r; B=/tmp/s35d; mkdir -p $B $R
tar xzf .gpu/s35d.tar.gz -C $B
export LD_LIBRARY_PATH=$B/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $R/device.txt
timeout 150 $B/tests/trimix_tests_cuda > $R/tests.log 2>&1
echo "tests rc=$? at $((SECONDS - t0)) s"; tail -3 $R/tests.log
pair="tile-engine band items with the sink keys in another tile*,tile-engine: consumers that run many items in a row*"
for tool in memcheck racecheck; do
  timeout 90 compute-sanitizer --tool $tool --error-exitcode 3 $B/tests/trimix_tests_cuda "$pair" > $R/$tool.log 2>&1
  echo "$tool rc=$? at $((SECONDS - t0)) s"; tail -1 $R/$tool.log
done
timeout 30 $B/tests/trianglemix_demo > $R/demo.log 2>&1; echo "demo rc=$?"; grep -E " ok| FAIL" $R/demo.log
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
