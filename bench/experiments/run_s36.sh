#!/usr/bin/env bash
# Thirty-sixth session, call 1: a lone first tile's P V in 4 k-steps instead of 8 (half of zeros).
#   bash bench/experiments/run_s36.sh     (carry .gpu/s36.tar.gz: main/, new/, lib/)
# Outputs against main's on the same random inputs, then three alternating rounds (main = 1a04edd's kernels).
set -uo pipefail
t0=$SECONDS
R=$OUT/r; B=/tmp/s36; mkdir -p $B $R
tar xzf .gpu/s36.tar.gz -C $B
export LD_LIBRARY_PATH=$B/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $R/device.txt
bash bench/ab_gpu.sh --out $R/ab --rounds 3 --seq 16384,65536 --masks triangle,causal,streaming \
  --agree 4000 --timeout 90 main=$B/main/attention_bench new=$B/new/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; cat $R/ab/agree.txt $R/ab/summary.txt
tar czf $OUT/s36_logs.tar.gz -C $R . && rm -rf $R/ab
