#!/usr/bin/env bash
# For the forty-second session (~200 s at 16K; SEQS=16384,65536 ~420 s): run_s42a.sh with the
# form after s42-mcs.
#   mcs = branch s42-mcs at 593f766 (run_s42a.sh's header: lockstep K / V multicast, next pair taken
#     after the item's stages, no per-pair meeting of the producers).
#   mcp = branch s42-mcp at c65f024: mcs with the pair's same-tiles test and pad computed at take
#     (after the item's stages), so the stage loop reads one word; sass_diff.py against mcs:
#     Triangle R2UR 81 -> 61, STL 7 -> 8; Causal 66 -> 56, 0 -> 1 (head: 57, 3; 33, 0).
#   mcp0 = mcp's binary with TRIMIX_CUDA_MULTICAST=0: what the multicast code costs with it off.
# (1) Same-call A/B, 2 rounds, triangle and causal: head, mcs, mcp, mcp0; streaming at 16K, one
# round. (2) The checks of the tests/ build (the whole CUDA suite with multicast on, memcheck and
# racecheck on the band items, memcheck on the many-items tests, demo).
# Predicted: mcp0 / head 1.00-1.03; mcs / head causal 0.97-0.99, triangle 0.99-1.04; mcp / mcs
# 0.99-1.00. Land the fastest form only with its own checks clean and no mask slower than head.
#   bash bench/experiments/run_s42b.sh    (carry .gpu/s42b.tar.gz: head/ attention_bench of main
#   (85e095c's kernels), mcs/ attention_bench of s42-mcs, mcp/ attention_bench of s42-mcp, tests/
#   trimix_tests_cuda + trianglemix_demo of s42-mcp (or s42-mcs: tests/commit.txt says which),
#   lib/; all by scripts/gpu/build_variant.sh in fresh build dirs, wgmma_serialized.py checked on
#   the build machine; if the checkout is new: s42-mcs as in run_s42a.sh, then
#   experiments/kv_multicast_pairword_s42.patch for s42-mcp)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s42b.tar.gz s42b
cat $B/tests/commit.txt 2>/dev/null
multicast_ab_checks s42b mcp0 "${SEQS:-16384}" head=$B/head/attention_bench mcs=$B/mcs/attention_bench \
  mcp=$B/mcp/attention_bench mcp0=$B/mcp/attention_bench
