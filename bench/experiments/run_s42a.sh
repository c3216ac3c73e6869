#!/usr/bin/env bash
# For the forty-second session's first call (~420 s: the A/B ~300 s, the checks ~110 s): the
# lockstep K / V multicast with a lean producer.
#   mcr4 = branch s42-mcr at 2f4d2f9: s41-mc's two-CTA multicast; consumers release each stage on
#     both CTAs' empty barriers by CUTLASS's .release.cta remote arrive; with multicast the next
#     pair is taken after the item's stages (sass_diff.py against head: Triangle R2UR 85 vs 57,
#     STL / LDL 8 / 13 vs 3 / 4; Causal 70 vs 33, 1 / 3 vs 0 / 0; before it 236 and 177).
#   mcs = branch s42-mcs at 593f766: mcr4 without the producers' meeting at each pair's start (rank
#     0 reuses a hand-over slot once rank 1 has read it): Triangle R2UR 81, STL 7; Causal 66, 0.
# (1) Same-call A/B, 2 rounds, triangle and causal at 16K / 64K: head, mcr40 (mcr4's binary with
# TRIMIX_CUDA_MULTICAST=0), mcr4, mcs; streaming at 16K, one round. (2) mcs's checks: the whole
# CUDA suite (multicast on), memcheck and racecheck on the band items, memcheck on the many-items
# tests, demo. The forty-first session measured the 32f86d0 form at 16K: mcr3 / mcr30 causal
# 0.966, triangle 1.035; mcr30 / head 1.048 / 1.064.
# Predicted: mcr40 / head 1.00-1.02; mcr4 / head causal 0.97-0.99, triangle 0.99-1.04; mcs / mcr4
# triangle 0.98-1.00, causal ~1.00. Land the fastest form (multicast on for the masks where it
# gains) only with its checks clean and no mask slower than head.
#   bash bench/experiments/run_s42a.sh    (carry .gpu/s42a.tar.gz: head/ attention_bench of main
#   (85e095c's kernels), mcr4/ attention_bench of s42-mcr at 2f4d2f9, mcs/ attention_bench and
#   tests/ trimix_tests_cuda + trianglemix_demo of s42-mcs at 593f766, lib/; all by
#   scripts/gpu/build_variant.sh in fresh build dirs, wgmma_serialized.py checked on the build
#   machine; if the checkout is new, apply experiments/kv_multicast_lockstep_s41.patch on 85e095c
#   for s42-mcr, then experiments/kv_multicast_oneway_s41.patch for s42-mcs; the patches hold the
#   branches' tips, ad4a92b and ef0c9ec, whose change after the binaries' commits is a comment only)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s42a.tar.gz s42a
multicast_ab_checks s42a mcr40 "${SEQS:-16384,65536}" head=$B/head/attention_bench mcr40=$B/mcr4/attention_bench \
  mcr4=$B/mcr4/attention_bench mcs=$B/mcs/attention_bench
