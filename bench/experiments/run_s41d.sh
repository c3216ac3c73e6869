#!/usr/bin/env bash
# For the forty-first session's third call (~400 s): the multicast with lockstep rings (branch
# s42-mcr, 14de921: each consumer warp releases a stage on both CTAs' empty barriers, so a
# producer's own wait covers the partner's stage and the producers no longer tell each other,
# s41-mc's peer_free round trip; an item whose partner has none releases twice on its own).
# run_s41c.sh's timelines put s41-mc's loss in the stage waits (a band item's loop_stage_wait
# 785 -> 1864 cycles, first_issue_before_item 3251 -> 1596) while its clock rose as halfkv's
# (1.61 -> 1.72 GHz; halfkv, half the bytes with real operands: -7.5%). (1) Same-call A/B, 2
# rounds, triangle and causal at 16K (64K when SEQS says so: the budget): head, mcr (multicast
# on), mcr0 (the same binary, TRIMIX_CUDA_MULTICAST=0). (2) Timelines at 16K of mcr's timeline
# build, multicast on and off. (3) s42-mcr's checks (run_s41e.sh's): the whole CUDA suite with
# multicast on, memcheck and racecheck on the band items, memcheck on the many-items tests, demo.
# Predicted: mcr / mcr0 triangle 0.95-0.98 (the stage waits back near mc0's, the clock kept),
# causal 0.98-1.00; mcr / head triangle 0.97-1.00 (mcr0 carries the producer's spills: R2UR
# 57 -> 236, STL 3 -> 21 for Triangle).
#   bash bench/experiments/run_s41d.sh    (carry .gpu/s41d.tar.gz: head/ attention_bench of main
#   (85e095c's kernels), mcr/ attention_bench of s42-mcr, mcrtl/ the same with
#   -DCMAKE_CXX_FLAGS=-DTRIMIX_CUDA_PAIR_TIMELINE, tests/ trimix_tests_cuda + trianglemix_demo of
#   s42-mcr, lib/; scripts/gpu/build_variant.sh,
#   wgmma_serialized.py checked here)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s41d.tar.gz s41d
timeout 300 bash bench/ab_gpu.sh --out $R/ab --rounds 2 --timeout 60 --seq ${SEQS:-16384} --masks triangle,causal --no-serialized \
  --env mcr0:TRIMIX_CUDA_MULTICAST=0 head=$B/head/attention_bench mcr=$B/mcr/attention_bench mcr0=$B/mcr/attention_bench \
  > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; tail -6 $R/ab.log
pair_timeline mcr $B/mcrtl/attention_bench triangle,causal --warmup-ms 100 --rep-ms 100
TRIMIX_CUDA_MULTICAST=0 pair_timeline mcr0 $B/mcrtl/attention_bench triangle,causal --warmup-ms 100 --rep-ms 100
for v in mcr mcr0; do grep -E "^==|SM clock" $R/tl_$v.txt | head -2; done
rm -f $R/tl_*.log
tar czf $OUT/s41d_ab.tar.gz -C $R . && rm -rf $R/*  # back even if the checks run out of time
cuda_checks $B/tests "tile-engine band items with the sink keys in another tile*" 60
timeout 45 compute-sanitizer --tool memcheck --error-exitcode 3 $B/tests/trimix_tests_cuda "tile-engine: consumers that run many items in a row*" > $R/memcheck_many.log 2>&1
echo "memcheck many rc=$? at $((SECONDS - t0)) s"; tail -1 $R/memcheck_many.log
tar czf $OUT/s41d_checks.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
