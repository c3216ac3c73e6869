#!/usr/bin/env bash
# Thirty-seventh session, call 5: where the boundary's cycles go when its work goes. The measuring
# build of calls 3-4 (bounds + timeline), triangle at 16K: the clock64 timeline (and time) of
# TRIMIX_CUDA_PAIR_BOUND = none / noboundary / nolone / noboundary+nolone, two passes.
#   bash bench/experiments/run_s37d.sh      (carry .gpu/s37b.tar.gz)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s37b.tar.gz d
for pass in 1 2; do
  for b in none noboundary nolone noboundary+nolone; do
    TRIMIX_CUDA_PAIR_BOUND=$b pair_timeline ${b}_$pass $B/sleep/attention_bench triangle --warmup-ms 300 --rep-ms 500 \
      --csv $R/t_${b}_$pass.csv
    echo "== $b pass $pass: $(python3 -c "import csv,sys; r=list(csv.DictReader(open('$R/t_${b}_$pass.csv'))); print(r[-1]['time_ms'], 'ms')")"
    grep -E "span|SM clock" $R/tl_${b}_$pass.txt | head -2
  done
done
tar czf $OUT/s37d.tar.gz -C $R .
