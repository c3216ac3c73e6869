#!/usr/bin/env bash
# Thirty-fifth session: the lean producer (branch s35-producer: 32-bit loop state, no fold code
# for masks without a sink fold) against main (29a1284's kernels) in one call.
#   bash bench/experiments/run_s35.sh      (carry .gpu/s35.tar.gz: main/, lean/, lib/)
# Outputs on the same random inputs first (N 4000: a short last tile; bit-identical expected),
# then three alternating rounds of triangle, causal and streaming at 16K and 64K.
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s35.tar.gz ab device_power.txt
bash bench/ab_gpu.sh --out $R --rounds 3 --seq 16384,65536 --masks triangle,causal,streaming \
  --agree 4000 --timeout 90 main=$B/main/attention_bench lean=$B/lean/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; cat $R/agree.txt $R/summary.txt
