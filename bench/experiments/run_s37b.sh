#!/usr/bin/env bash
# Thirty-seventh session, call 2: does a cycle reach the time at the power cap? One measuring
# build (TRIMIX_CUDA_PAIR_BOUNDS + TRIMIX_CUDA_PAIR_TIMELINE) of head with TRIMIX_CUDA_PAIR_SLEEP_NS:
# each consumer sleeps ~T ns after an item's o stores (cycles added, no work added). Same-binary
# A/B of T = 0 / 400 / 800 under nvml_power.py (lines stamped on its clock), then each variant's
# clock64 timeline at 16K.
#   bash bench/experiments/run_s37b.sh      (carry .gpu/s37b.tar.gz: sleep/attention_bench, lib/)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s37b.tar.gz b
stamp() { python3 -c 'import sys, time
for line in sys.stdin: print(f"{time.monotonic():.3f} {line}", end="", flush=True)'; }
python3 bench/nvml_power.py --every-ms 20 --csv $R/power.csv -- \
  timeout 300 bash bench/ab_gpu.sh --out $R/ab --rounds ${ROUNDS:-3} --seq 16384,65536 --masks triangle,causal \
  --env s400:TRIMIX_CUDA_PAIR_SLEEP_NS=400 --env s800:TRIMIX_CUDA_PAIR_SLEEP_NS=800 \
  s0=$B/sleep/attention_bench s400=$B/sleep/attention_bench s800=$B/sleep/attention_bench 2>&1 | stamp > $R/ab.log
echo "ab done at $((SECONDS - t0)) s"; grep -v "^[0-9.]* *$" $R/ab.log | tail -12
for ns in 0 400 800; do
  TRIMIX_CUDA_PAIR_SLEEP_NS=$ns pair_timeline $ns $B/sleep/attention_bench triangle,causal --warmup-ms 100 --rep-ms 300
  grep -E "^==|SM clock|^-- short5|^   item |o_stores_issued" $R/tl_$ns.txt | head -12
done
tar czf $OUT/s37b.tar.gz -C $R .
