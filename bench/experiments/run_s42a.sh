#!/usr/bin/env bash
# For the forty-second session's first call (~350 s): the lockstep K / V multicast with a lean
# producer (branch s42-mcr at 2f4d2f9: s41-mc's two-CTA multicast; consumers release each stage on
# both CTAs' empty barriers by CUTLASS's .release.cta remote arrive; with multicast the next pair is
# taken after the item's stages, which brought the producer's SASS near head's: Triangle R2UR 236 ->
# 85, STL / LDL 21 / 29 -> 8 / 13 (head 57, 3 / 4), Causal 177 -> 70, 8 / 13 -> 1 / 3 (head 33, 0 / 0)).
# (1) Same-call A/B, 2 rounds, triangle, causal, streaming at 16K / 64K: head, mcr4 (multicast on),
# mcr40 (the same binary, TRIMIX_CUDA_MULTICAST=0). (2) s42-mcr's checks at 2f4d2f9: the whole CUDA
# suite (multicast on), memcheck and racecheck on the band items, memcheck on the many-items tests,
# demo. The forty-first session measured the 32f86d0 form: mcr3 / mcr30 causal 0.966, triangle
# 1.035; mcr30 / head 1.048 / 1.064 (run_s41f.sh, 16K).
# Predicted: mcr40 / head 1.00-1.02; mcr4 / mcr40 causal 0.96-0.98, triangle 0.98-1.03; so mcr4 /
# head causal 0.97-0.99, triangle 0.99-1.04. Land (multicast on for the masks where it gains) only
# with the checks clean and both masks at or under head.
#   bash bench/experiments/run_s42a.sh    (carry .gpu/s42a.tar.gz: head/ attention_bench of main
#   (85e095c's kernels), mcr4/ attention_bench of s42-mcr at 2f4d2f9, tests/ trimix_tests_cuda +
#   trianglemix_demo of the same, lib/; all by scripts/gpu/build_variant.sh in fresh build dirs,
#   wgmma_serialized.py checked on the build machine; if the checkout is new, apply
#   experiments/kv_multicast_lockstep_s41.patch on 85e095c to rebuild s42-mcr)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s42a.tar.gz s42a
timeout 320 bash bench/ab_gpu.sh --out $R/ab --rounds 2 --timeout 60 --seq ${SEQS:-16384,65536} --masks triangle,causal,streaming \
  --no-serialized --env mcr40:TRIMIX_CUDA_MULTICAST=0 \
  head=$B/head/attention_bench mcr4=$B/mcr4/attention_bench mcr40=$B/mcr4/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; tail -8 $R/ab.log
tar czf $OUT/s42a_ab.tar.gz -C $R . && rm -rf $R/*  # back even if the checks run out of time
cuda_checks $B/tests "tile-engine band items with the sink keys in another tile*" 60
timeout 45 compute-sanitizer --tool memcheck --error-exitcode 3 $B/tests/trimix_tests_cuda "tile-engine: consumers that run many items in a row*" > $R/memcheck_many.log 2>&1
echo "memcheck many rc=$? at $((SECONDS - t0)) s"; tail -1 $R/memcheck_many.log
tar czf $OUT/s42a_checks.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
