#!/usr/bin/env bash
# For the forty-first session's first call (~520 s): (1) run_s40d.sh's checks of head's own test
# build (85e095c's kernels: pair-kernel tests, memcheck on the band items, the demo); (2) head
# against every peer at 16K-64K in one call (compare_gpu.py under nvml_power.py, as run_s37.sh);
# (3) streaming, which run_s40c.sh did not time: head against 6cdc01c's kernels (old), 2 rounds;
# (4) the multicast's cost split, triangle only, one round, all against the bounds build of s41-mc
# (s40-mc's two commits on 1db77fe, 85e095c's kernels) with multicast off (mc0): the halfkv bound
# (each CTA copies half of every stage, multicast off: what any multicast could save in L2 -> SM
# bytes), multicast on (mcast), and head.
# Predicted: (2) triangle / Flex ~0.36x at 16K-64K (0.367-0.373 at 47bea6b, x 0.988-0.990);
# (3) head / old 0.99-1.01 (s39-both's streaming was 1.013 with the speculative softmax beside);
# (4) halfkv / mc0 0.96-0.98, mcast / mc0 ~1.08-1.10 (run_s40c.sh), head / mc0 0.99-1.01.
#   bash bench/experiments/run_s41.sh    (carry .gpu/s41.tar.gz: head/ attention_bench of main at
#   85e095c or later, old/ attention_bench of 6cdc01c, tests/ as in run_s40d.sh, mcb/
#   attention_bench of s41-mc built with -DCMAKE_CXX_FLAGS=-DTRIMIX_CUDA_PAIR_BOUNDS, lib/; all by
#   scripts/gpu/build_variant.sh; every binary checked with scripts/gpu/wgmma_serialized.py on the
#   build machine, hence --no-serialized)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s41.tar.gz s41
pair_checks $B/tests
stamp() { python3 -c 'import sys, time
for line in sys.stdin: print(f"{time.monotonic():.3f} {line}", end="", flush=True)'; }
TRIMIX_COMMIT=${COMMIT:-85e095c} python3 bench/nvml_power.py --every-ms 20 --csv $R/power.csv -- \
  timeout 330 python3 -u bench/compare_gpu.py --bench $B/head/attention_bench --out $R/cmp --seq ${SEQS:-16384,32768,65536} \
  2>&1 | stamp > $R/cmp.log
echo "compare rc=${PIPESTATUS[0]} at $((SECONDS - t0)) s"; grep -v "^[0-9.]* *$" $R/cmp.log | grep "N=\|nvml\|W" | tail -20
timeout 60 bash bench/ab_gpu.sh --out $R/streaming --rounds 2 --timeout 30 --seq 16384,65536 --masks streaming \
  --no-serialized old=$B/old/attention_bench head=$B/head/attention_bench > $R/streaming.log 2>&1
echo "streaming rc=$? at $((SECONDS - t0)) s"; tail -3 $R/streaming.log
timeout 80 bash bench/ab_gpu.sh --out $R/split --rounds 1 --timeout 30 --seq 16384,65536 --masks triangle --no-serialized \
  --env mc0:TRIMIX_CUDA_MULTICAST=0 --env halfkv:TRIMIX_CUDA_MULTICAST=0 --env halfkv:TRIMIX_CUDA_PAIR_BOUND=halfkv \
  mc0=$B/mcb/attention_bench halfkv=$B/mcb/attention_bench mcast=$B/mcb/attention_bench head=$B/head/attention_bench > $R/split.log 2>&1
echo "split rc=$? at $((SECONDS - t0)) s"; tail -3 $R/split.log
tar czf $OUT/s41_results.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
