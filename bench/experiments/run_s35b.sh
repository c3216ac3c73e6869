#!/usr/bin/env bash
# Thirty-fifth session, call 2: 1a04edd (32-bit producer tiles for sink-folding masks only).
#   bash bench/experiments/run_s35b.sh     (carry .gpu/s35b.tar.gz: main/, new/, tests/, lib/)
# The CUDA suite, memcheck / racecheck on the band-item tests, the demo, then outputs against
# main's on the same random inputs and three alternating rounds (main = 29a1284's kernels).
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s35b.tar.gz r
cuda_checks $B/tests "tile-engine band items with the sink keys in another tile*" 60
bash bench/ab_gpu.sh --out $R/ab --rounds 3 --seq 16384,65536 --masks triangle,causal,streaming \
  --agree 4000 --timeout 90 main=$B/main/attention_bench new=$B/new/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; cat $R/ab/agree.txt $R/ab/summary.txt
# Few files back: the logs in one tarball.
tar czf $OUT/s35b_logs.tar.gz -C $R . && rm -rf $R/ab
