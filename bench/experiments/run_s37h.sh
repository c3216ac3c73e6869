#!/usr/bin/env bash
# Prepared in the thirty-seventh session for the next (not run): s37-maskafter (the first stage's
# mask bits under the lone S) against head's kernels, 5 alternating rounds with outputs compared,
# then both clock64 timelines at 16K. Predicted: triangle / streaming -1.5 to -2.5%, band item
# up to -700 cycles; causal noise.
#   bash bench/experiments/run_s37h.sh      (carry .gpu/s37h.tar.gz: main/, new/, maintl/, newtl/, lib/)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s37h.tar.gz h
timeout 330 bash bench/ab_gpu.sh --out $R/ab --rounds ${ROUNDS:-5} --seq 16384,65536 --masks triangle,streaming,causal \
  --agree 4000 main=$B/main/attention_bench new=$B/new/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; tail -8 $R/ab.log
for v in maintl newtl; do
  pair_timeline $v $B/$v/attention_bench triangle,causal --warmup-ms 300 --rep-ms 300
  grep -E "^==|SM clock" $R/tl_$v.txt | head -2
done
tar czf $OUT/s37h.tar.gz -C $R .
