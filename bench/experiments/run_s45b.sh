#!/usr/bin/env bash
# For the forty-fifth session's second call (~200 s): where filledkv's bytes are worth more than
# reusekv's (run_s45a.sh: reusekv, 54% of the triangle's K / V bytes, -3.5%; filledkv, all of them,
# -11 / -12%). One measuring build (-DTRIMIX_CUDA_PAIR_BOUNDS), triangle at 16K / 64K, 2 rounds
# alternating: none, filledkv, bandkv (no bytes for any stage of the band items after the CTA's
# first: ~81% of the bytes, the split last-rows items keep theirs) and firstkv (no bytes for each
# item's first stage: the copy the item boundary waits on, ~10% of the bytes).
# Predicted: if the bytes count alike wherever they are, bandkv / none ~0.91 and firstkv ~0.99; a
# firstkv well below 0.99 would say the boundary waits on its first stage's copy, a bandkv near 0.96
# (reusekv) that the split items' bytes carry most of filledkv's gain.
#   bash bench/experiments/run_s45b.sh   (carry .gpu/s45b.tar.gz: bounds/attention_bench of this
#   commit's tree by scripts/gpu/build_variant.sh with -DCMAKE_CXX_FLAGS=-DTRIMIX_CUDA_PAIR_BOUNDS,
#   lib/libcudart.so.13)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s45b.tar.gz s45b
timeout ${LIMIT:-200} bash bench/ab_gpu.sh --out $R/bounds --rounds 2 --timeout 50 --seq 16384,65536 --masks triangle \
  --no-serialized --env filledkv:TRIMIX_CUDA_PAIR_BOUND=filledkv --env bandkv:TRIMIX_CUDA_PAIR_BOUND=bandkv \
  --env firstkv:TRIMIX_CUDA_PAIR_BOUND=firstkv \
  none=$B/bounds/attention_bench filledkv=$B/bounds/attention_bench bandkv=$B/bounds/attention_bench \
  firstkv=$B/bounds/attention_bench > $R/bounds.log 2>&1
echo "bounds rc=$? at $((SECONDS - t0)) s"; tail -8 $R/bounds.log
tar czf $OUT/s45b_results.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
