#!/usr/bin/env bash
# Prepared in the thirty-seventh session for the next (not run): s37-maskafter's CUDA suite,
# memcheck / racecheck on the pair-kernel tests and the demo, before any landing.
#   bash bench/experiments/run_s37g.sh      (carry .gpu/s37g.tar.gz: tests/, lib/; built from
#   s37-maskafter = 1c0b46d with -DTRIMIX_BUILD_TESTS=ON; scripts/gpu/build_variant.sh builds such packs)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s37g.tar.gz g
cuda_checks $B/tests "tile-engine band items with the sink keys in another tile*,tile-engine: consumers that run many items in a row*"
tar czf $OUT/s37g_logs.tar.gz -C $R .
