#!/usr/bin/env bash
# Thirty-sixth session, call 3: five more alternating rounds of main (1a04edd's kernels) and
# s36-halfpv on the sink-folding masks (call 1's triangle rounds spread 3%), then the pair timeline
# of both at 16K (triangle and causal), one call each after the timed ones.
#   bash bench/experiments/run_s36c.sh      (carry .gpu/s36c.tar.gz: main/, new/, maintl/, newtl/, lib/)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s36c.tar.gz c
bash bench/ab_gpu.sh --out $R/ab --rounds 5 --seq 16384,65536 --masks triangle,streaming \
  --timeout 60 main=$B/main/attention_bench new=$B/new/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; cat $R/ab/summary.txt
for v in maintl newtl; do pair_timeline $v $B/$v/attention_bench triangle,causal --warmup-ms 100 --rep-ms 300; done
tar czf $OUT/s36c_logs.tar.gz -C $R . && rm -rf $R/ab
