#!/usr/bin/env bash
# For the forty-sixth session's third call (~400 s cold): every peer against head at 16K-128K on an
# H200 (README's H200 table is f38ed71's), trimix timed both ways (in compare_gpu.py's process by
# do_bench, and attention_bench's host clock), two rounds in turns, under nvml_power.py.
# Predicted (the H100 calls of this session, the H200's earlier 0.37-0.40x): triangle 0.36-0.39x
# Flex, causal 1.02-1.12x cuDNN.
#   bash bench/experiments/run_s46c.sh   (carry .gpu/s46.tar.gz, as run_s46a.sh); LIMIT=S (560)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s46.tar.gz s46c
stamp() { python3 -c 'import sys, time
for line in sys.stdin: print(f"{time.monotonic():.3f} {line}", end="", flush=True)'; }
left=$((${LIMIT:-560} - 20 - (SECONDS - t0)))
TRIMIX_COMMIT=${COMMIT:-head} python3 bench/nvml_power.py --every-ms 20 --csv $R/power.csv -- \
  timeout $left python3 -u bench/compare_gpu.py --bench $B/ctypes/attention_bench --lib $B/ctypes/libtrimix_ctypes.so \
  --trimix-rounds 2 --out $R/cmp --seq ${SEQS:-16384,32768,65536,131072} 2>&1 | stamp > $R/cmp.log
echo "compare rc=${PIPESTATUS[0]} at $((SECONDS - t0)) s"; grep -v "^[0-9.]* *$" $R/cmp.log | grep "N=\|nvml\|rror" | tail -32
tar czf $OUT/s46c_results.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
