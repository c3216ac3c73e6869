#!/usr/bin/env bash
# Fortieth session's last call (the ~176 s of budget left could not start it; run_s41.sh repeats
# its steps): head's own test build since 85e095c (a stage's mask bits between its S and P V
# issue) on the pair-kernel tests (band items, many items in a row on one and three CTAs, the running max), then
# memcheck on the band items, then the demo; ~60 s.
#   bash bench/experiments/run_s40d.sh    (carry .gpu/s40d.tar.gz: tests/ (trimix_tests_cuda,
#   trianglemix_demo) of branch s40-bitsturn, the same kernels as 85e095c, by
#   scripts/gpu/build_variant.sh, lib/)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s40d.tar.gz d
pair_checks $B/tests
tar czf $OUT/s40d_results.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
