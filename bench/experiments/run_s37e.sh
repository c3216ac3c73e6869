#!/usr/bin/env bash
# Thirty-seventh session, call 6: noboundary's parts alone (nofirstmask, nofirstsoftmax,
# noostores), timed and timelined as run_s37d.sh, triangle at 16K, two passes.
#   bash bench/experiments/run_s37e.sh      (carry .gpu/s37e.tar.gz: bounds/attention_bench, lib/)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s37e.tar.gz e
for pass in 1 2; do
  for b in none nofirstmask nofirstsoftmax noostores noboundary; do
    TRIMIX_CUDA_PAIR_BOUND=$b pair_timeline ${b}_$pass $B/bounds/attention_bench triangle --warmup-ms 300 --rep-ms 500 \
      --csv $R/t_${b}_$pass.csv
    echo "== $b pass $pass: $(python3 -c "import csv; r=list(csv.DictReader(open('$R/t_${b}_$pass.csv'))); print(r[-1]['time_ms'], 'ms')")"
    grep -E "span|SM clock" $R/tl_${b}_$pass.txt | head -2
    python3 - $R/tl_${b}_$pass.txt <<'PY'
import sys
cat = None
for l in open(sys.argv[1]):
    if l.startswith('-- '): cat = l.split(':')[0][3:]
    w = l.split()
    if cat == 'short5' and w and w[0] in ('item', 'first_stage', 'loop', 'take_q', 'o_stores_issued'): print('  ', l.strip())
PY
  done
done
tar czf $OUT/s37e.tar.gz -C $R .
