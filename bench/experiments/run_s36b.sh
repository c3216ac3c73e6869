#!/usr/bin/env bash
# Thirty-sixth session, call 2: s36-halfpv's CUDA suite, memcheck / racecheck on the pair-kernel
# tests, the demo, then compare_gpu.py at 16K and 64K (SDPA flash skipped) with its attention_bench.
#   bash bench/experiments/run_s36b.sh      (carry .gpu/s36b.tar.gz: new/, tests/, lib/)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s36b.tar.gz r
cuda_checks $B/tests "tile-engine band items with the sink keys in another tile*,tile-engine: consumers that run many items in a row*"
TRIMIX_COMMIT=${COMMIT:-s36-halfpv} timeout $((580 - SECONDS + t0)) python3 bench/compare_gpu.py --bench $B/new/attention_bench \
  --out $R/cmp --seq ${SEQS:-16384,65536} --skip-peers flash > $R/cmp.log 2>&1
echo "compare rc=$? at $((SECONDS - t0)) s"; tail -12 $R/cmp.log
tar czf $OUT/s36b_logs.tar.gz -C $R . && rm -rf $R/cmp
