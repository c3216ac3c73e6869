#!/usr/bin/env bash
# Thirty-seventh session, call 1: head's attention_bench (47bea6b; its pair kernels' SASS is
# f5fc197's, sass_diff.py: 0 lines differ) against every peer at 16K-128K in one call, the whole
# call under bench/nvml_power.py (energy counter, SM clock, clock-event reasons every 20 ms; the
# compare's lines stamped with the same monotonic clock, so that each case's power can be read).
#   bash bench/experiments/run_s37.sh      (carry .gpu/s37.tar.gz: new/attention_bench, lib/)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s37.tar.gz r
stamp() { python3 -c 'import sys, time
for line in sys.stdin: print(f"{time.monotonic():.3f} {line}", end="", flush=True)'; }
TRIMIX_COMMIT=${COMMIT:-47bea6b} python3 bench/nvml_power.py --every-ms 20 --csv $R/power.csv -- \
  timeout $((575 - SECONDS + t0)) python3 -u bench/compare_gpu.py --bench $B/new/attention_bench --out $R/cmp --seq ${SEQS:-16384,32768,65536,131072} \
  2>&1 | stamp > $R/cmp.log
echo "compare done at $((SECONDS - t0)) s"; grep -v "^[0-9.]* *$" $R/cmp.log | grep "N=\|nvml\|W" | tail -30
tar czf $OUT/s37_logs.tar.gz -C $R .
