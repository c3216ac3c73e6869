#!/usr/bin/env bash
# Thirty-seventh session, call 7: the first stage's mask bits under the lone S (branch s37-maskafter)
# against head's kernels (47bea6b), same-call A/B, outputs compared.
#   bash bench/experiments/run_s37f.sh      (carry .gpu/s37f.tar.gz: main/, new/, lib/)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s37f.tar.gz f
timeout 200 bash bench/ab_gpu.sh --out $R/ab --rounds ${ROUNDS:-3} --seq 16384,65536 --masks triangle,causal \
  --agree 4000 main=$B/main/attention_bench new=$B/new/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; tail -8 $R/ab.log
tar czf $OUT/s37f.tar.gz -C $R .
