#!/usr/bin/env bash
# Thirty-sixth session, call 1: a lone first tile's P V in 4 k-steps instead of 8 (half of zeros).
#   bash bench/experiments/run_s36.sh     (carry .gpu/s36.tar.gz: main/, new/, lib/)
# Outputs against main's on the same random inputs, then three alternating rounds (main = 1a04edd's kernels).
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s36.tar.gz r
bash bench/ab_gpu.sh --out $R/ab --rounds 3 --seq 16384,65536 --masks triangle,causal,streaming \
  --agree 4000 --timeout 90 main=$B/main/attention_bench new=$B/new/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; cat $R/ab/agree.txt $R/ab/summary.txt
tar czf $OUT/s36_logs.tar.gz -C $R . && rm -rf $R/ab
