#!/usr/bin/env bash
# For the forty-third session's second call (~300 s, estimated), right after run_s43a.sh on the same warm
# machine: one binary of a pack against every peer at 16K-64K (compare_gpu.py under
# nvml_power.py, as run_s41.sh), so that a landed form has its peer numbers from one call.
#   WHICH=mcf|mcg|mcp|head (a folder of the pack; default mcf); MC=0 runs it with TRIMIX_CUDA_MULTICAST=0; PACK (default .gpu/s43.tar.gz).
#   bash bench/experiments/run_s43b.sh    (carry the pack)
# Predicted (mcf, multicast on): triangle / Flex 0.35-0.365 at 16K-64K (head 0.370-0.372 in the
# forty-first session), causal within 1% of head's 644-666 TFLOP/s or better.
set -uo pipefail
. bench/experiments/device_common.sh
device_setup ${PACK:-.gpu/s43.tar.gz} s43b
which=${WHICH:-mcf}
[ "${MC:-1}" = 0 ] && export TRIMIX_CUDA_MULTICAST=0
stamp() { python3 -c 'import sys, time
for line in sys.stdin: print(f"{time.monotonic():.3f} {line}", end="", flush=True)'; }
TRIMIX_COMMIT=${COMMIT:-$which} python3 bench/nvml_power.py --every-ms 20 --csv $R/power.csv -- \
  timeout 400 python3 -u bench/compare_gpu.py --bench $B/$which/attention_bench --out $R/cmp --seq ${SEQS:-16384,32768,65536} \
  2>&1 | stamp > $R/cmp.log
echo "compare rc=${PIPESTATUS[0]} at $((SECONDS - t0)) s"; grep -v "^[0-9.]* *$" $R/cmp.log | grep "N=\|nvml\|W" | tail -24
tar czf $OUT/s43b_results.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
