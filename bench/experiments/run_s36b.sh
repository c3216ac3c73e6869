#!/usr/bin/env bash
# Thirty-sixth session, call 2: s36-halfpv's CUDA suite, memcheck / racecheck on the pair-kernel
# tests, the demo, then compare_gpu.py at 16K and 64K (SDPA flash skipped) with its attention_bench.
#   bash bench/experiments/run_s36b.sh      (carry .gpu/s36b.tar.gz: new/, tests/, lib/)
set -uo pipefail
t0=$SECONDS
R=$OUT/r; B=/tmp/s36b; mkdir -p $B $R
tar xzf .gpu/s36b.tar.gz -C $B
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
TRIMIX_COMMIT=${COMMIT:-s36-halfpv} timeout $((580 - SECONDS + t0)) python3 bench/compare_gpu.py --bench $B/new/attention_bench \
  --out $R/cmp --seq ${SEQS:-16384,65536} --skip-peers flash > $R/cmp.log 2>&1
echo "compare rc=$? at $((SECONDS - t0)) s"; tail -12 $R/cmp.log
tar czf $OUT/s36b_logs.tar.gz -C $R . && rm -rf $R/cmp
