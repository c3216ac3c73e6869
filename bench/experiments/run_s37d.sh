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
    mkdir -p $R/tl
    TRIMIX_CUDA_PAIR_BOUND=$b TRIMIX_TIMELINE_DIR=$R/tl timeout 60 $B/sleep/attention_bench --seq 16384 \
      --masks triangle --dtypes bf16 --warmup-ms 300 --rep-ms 500 --csv $R/t_${b}_$pass.csv > $R/tl_${b}_$pass.log 2>&1
    python3 bench/pair_timeline_summary.py $R/tl/bf16_triangle_16384.bin > $R/tl_${b}_$pass.txt 2>&1
    echo "== $b pass $pass: $(python3 -c "import csv,sys; r=list(csv.DictReader(open('$R/t_${b}_$pass.csv'))); print(r[-1]['time_ms'], 'ms')")"
    grep -E "span|SM clock" $R/tl_${b}_$pass.txt | head -2
    rm -rf $R/tl
  done
done
tar czf $OUT/s37d.tar.gz -C $R .
