#!/usr/bin/env bash
# For the forty-fifth session's call (~520 s): (1) what keeping K / V stages resident from one item
# to the next could save, as bounds of one measuring build (head's kernels, -DTRIMIX_CUDA_PAIR_BOUNDS):
# none, filledkv (no bytes after each ring stage's first copy: every byte), reusekv (an item after
# the CTA's first takes its first 3 whole stages without bytes: 3 of a band item's 4.5 stage loads)
# and pairreusekv (the same for odd plan items only: reuse inside pairs 2j, 2j + 1); triangle at
# 16K / 64K, 3 rounds alternating; (2) head against every peer at 16K-64K (compare_gpu.py under
# nvml_power.py); (3) cuobjdump and nvdisasm back for the SASS tools on the build machine.
# Predicted (the forty-first session: filledkv / none 0.887 / 0.876, halfkv 0.922 / 0.925): reusekv
# / none 0.92-0.94, pairreusekv / none 0.96-0.98, filledkv 0.88-0.90; (2) triangle / Flex ~0.37x.
#   bash bench/experiments/run_s45a.sh   (carry .gpu/s45.tar.gz: bounds/ and head/ attention_bench
#   of this commit by scripts/gpu/build_variant.sh, bounds/ with -DCMAKE_CXX_FLAGS=-DTRIMIX_CUDA_PAIR_BOUNDS,
#   lib/libcudart.so.13); LIMIT=S (default 560) ends the compare S s after the start, SEQS its lengths
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s45.tar.gz s45
mkdir -p $OUT/tools && cp /usr/local/cuda/bin/cuobjdump /usr/local/cuda/bin/nvdisasm $OUT/tools/ 2>/dev/null
timeout 170 bash bench/ab_gpu.sh --out $R/bounds --rounds 3 --timeout 50 --seq 16384,65536 --masks triangle \
  --no-serialized --env filledkv:TRIMIX_CUDA_PAIR_BOUND=filledkv --env reusekv:TRIMIX_CUDA_PAIR_BOUND=reusekv \
  --env pairreusekv:TRIMIX_CUDA_PAIR_BOUND=pairreusekv \
  none=$B/bounds/attention_bench filledkv=$B/bounds/attention_bench reusekv=$B/bounds/attention_bench \
  pairreusekv=$B/bounds/attention_bench head=$B/head/attention_bench > $R/bounds.log 2>&1
echo "bounds rc=$? at $((SECONDS - t0)) s"; tail -8 $R/bounds.log
stamp() { python3 -c 'import sys, time
for line in sys.stdin: print(f"{time.monotonic():.3f} {line}", end="", flush=True)'; }
left=$((${LIMIT:-560} - (SECONDS - t0)))  # LIMIT: the call's own limit less ~35 s
TRIMIX_COMMIT=${COMMIT:-head} python3 bench/nvml_power.py --every-ms 20 --csv $R/power.csv -- \
  timeout $left python3 -u bench/compare_gpu.py --bench $B/head/attention_bench --out $R/cmp --seq ${SEQS:-16384,32768,65536} \
  2>&1 | stamp > $R/cmp.log
echo "compare rc=${PIPESTATUS[0]} at $((SECONDS - t0)) s"; grep -v "^[0-9.]* *$" $R/cmp.log | grep "N=\|nvml\|W" | tail -20
tar czf $OUT/s45_results.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
