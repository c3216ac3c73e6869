#!/usr/bin/env bash
# Thirty-seventh session, call 3: run_s37b.sh again with longer sleeps and the triangle alone, for
# a signal above the rounds' spread: T = 0 / 1200 / 2400 ns, 4 alternating rounds, then each
# variant's timeline at 16K (cycles).
#   bash bench/experiments/run_s37c.sh      (carry .gpu/s37b.tar.gz)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s37b.tar.gz c
timeout 330 bash bench/ab_gpu.sh --out $R/ab --rounds ${ROUNDS:-4} --seq 16384,65536 --masks triangle \
  --env s1200:TRIMIX_CUDA_PAIR_SLEEP_NS=1200 --env s2400:TRIMIX_CUDA_PAIR_SLEEP_NS=2400 \
  s0=$B/sleep/attention_bench s1200=$B/sleep/attention_bench s2400=$B/sleep/attention_bench > $R/ab.log 2>&1
echo "ab done at $((SECONDS - t0)) s"; tail -4 $R/ab.log
for ns in 0 1200 2400; do
  TRIMIX_CUDA_PAIR_SLEEP_NS=$ns pair_timeline $ns $B/sleep/attention_bench triangle --warmup-ms 300 --rep-ms 300
  grep -E "^==|SM clock|^   item |o_stores_issued" $R/tl_$ns.txt | sed -n '1,2p;11,12p'
done
tar czf $OUT/s37c.tar.gz -C $R .
