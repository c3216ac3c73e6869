#!/usr/bin/env bash
# For the forty-sixth session's second call (~350 s): run_s46a.sh's two ways of timing trimix
# (in compare_gpu.py's process by do_bench, "trimix_inproc"; attention_bench's host clock,
# "trimix") measured in turns, three rounds each at every N after the peers (cuDNN, Flex; SDPA
# flash left out), under nvml_power.py: the first call ran them once, in-process first, and its
# causal 64K disagreed by 8.7% (56.93 ms in-process against 52.37), so which turn a way gets may
# matter more than the way. Predicted: triangle inproc / bench 0.97-0.99 in every round; causal
# within 1-2% of each other once alternated.
#   bash bench/experiments/run_s46b.sh   (carry .gpu/s46.tar.gz, as run_s46a.sh); LIMIT=S (560),
#   ROUNDS (3), SKIP (peers left out: flash), SEQS, NAME (s46b: the results' directory and archive)
set -uo pipefail
. bench/experiments/device_common.sh
name=${NAME:-s46b}
device_setup .gpu/s46.tar.gz $name
stamp() { python3 -c 'import sys, time
for line in sys.stdin: print(f"{time.monotonic():.3f} {line}", end="", flush=True)'; }
left=$((${LIMIT:-560} - 20 - (SECONDS - t0)))
TRIMIX_COMMIT=${COMMIT:-head} python3 bench/nvml_power.py --every-ms 20 --csv $R/power.csv -- \
  timeout $left python3 -u bench/compare_gpu.py --bench $B/ctypes/attention_bench --lib $B/ctypes/libtrimix_ctypes.so \
  --trimix-rounds ${ROUNDS:-3} --skip-peers "${SKIP-flash}" --out $R/cmp --seq ${SEQS:-16384,32768,65536} 2>&1 | stamp > $R/cmp.log
echo "compare rc=${PIPESTATUS[0]} at $((SECONDS - t0)) s"; grep -v "^[0-9.]* *$" $R/cmp.log | grep "N=\|nvml\|rror" | tail -32
tar czf $OUT/${name}_results.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
