#!/usr/bin/env bash
# For the forty-third session (~230 s at 16K; SEQS=16384,65536 ~470 s): run_s42b.sh with the form
# that multicasts the triangle's band pairs at all.
#   mcp = branch s42-mcp at c65f024 (run_s42b.sh's header). Its pair test asked for the same fold
#     tile, but a band pair's even q-tile folds its sink into its last tile and the odd one into its
#     first (plan_pairs.cpp: 1960 of the triangle's 2048 pairs at 16K, 1976 of streaming's), so its
#     triangle and streaming multicast almost nothing: every multicast number of the triangle since
#     the fortieth session is the multicast's cost without its gain.
#   mcf = branch s43-mcf at b01be16: both fold tiles told apart, every other tile of a shared pair
#     multicast tile by tile (a band item's 9 tiles: 7 by multicast); other masks keep mcp's
#     whole-stage form (sass_diff.py against mcp: Triangle R2UR 61 -> 69, STL 8; Causal 56 -> 34,
#     STL 1 -> 0; head 57 / 3, 33 / 0).
#   mcf0 = mcf's binary with TRIMIX_CUDA_MULTICAST=0.
#   mcg = branch s43-mcg at 633181f (where the pack has mcg/): mcf plus the fold tiles' other 56
#     rows by multicast, each CTA copying only its 8 rows there (sink keys or the tile's own);
#     sass_diff.py against mcf: Triangle R2UR 69 -> 94, STL 8 -> 13, Causal unchanged.
# (1) Same-call A/B, 2 rounds, triangle and causal: head, mcp (unless MCP=0 or the pack has none),
# mcf, mcf0, mcg (where the pack has it); streaming at 16K, one round. (2) The pack's tests/ checks
# (the whole CUDA suite with multicast on, memcheck and racecheck on the band items, memcheck on
# the many-items tests, demo); skipped where the pack has no tests/ (.gpu/s43n.tar.gz).
# Times above are estimates from run_s42b.sh's plan, not yet measured.
# Predicted: mcf / head triangle 0.95-0.99 (7 of 9 tiles at half the L2 -> SM bytes; halfkv, all
# of them, was -7.5%), causal 0.97-0.99; mcf0 / head 1.00-1.02; mcf / mcp triangle 0.94-0.98;
# mcg / mcf triangle 0.98-1.01. Land the faster of mcf / mcg (multicast on where it gains) only
# with its own checks clean and no mask slower than head.
#   PACK=.gpu/s43g.tar.gz bash bench/experiments/run_s43a.sh: head / mcf / mcf0 / mcg and mcg's own
#   checks (tests/ of s43-mcg at 633181f; no mcp/).
#   bash bench/experiments/run_s43a.sh    (carry .gpu/s43.tar.gz: head/ mcp/ mcf/ attention_bench,
#   tests/ trimix_tests_cuda + trianglemix_demo of s43-mcf, lib/; by scripts/gpu/build_variant.sh;
#   wgmma_serialized.py checked on the build machine. A new checkout: s42-mcp as in run_s42b.sh, then
#   experiments/kv_multicast_foldapart_s43.patch for s43-mcf)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup ${PACK:-.gpu/s43.tar.gz} s43
cat $B/tests/commit.txt 2>/dev/null
labels=(head=$B/head/attention_bench)
[ "${MCP:-1}" = 0 ] || [ ! -x $B/mcp/attention_bench ] || labels+=(mcp=$B/mcp/attention_bench)  # MCP=0: without mcp, for a short budget
labels+=(mcf=$B/mcf/attention_bench mcf0=$B/mcf/attention_bench)
[ -x $B/mcg/attention_bench ] && labels+=(mcg=$B/mcg/attention_bench)
multicast_ab_checks s43 mcf0 "${SEQS:-16384}" "${labels[@]}"
