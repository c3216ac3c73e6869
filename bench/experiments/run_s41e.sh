#!/usr/bin/env bash
# For the forty-first session, right after run_s41d.sh if mcr gains (~300 s): s42-mcr's checks.
# The whole CUDA suite (multicast on: the suite's band, many-items, split and no-tile items run
# in clusters of two, solo last items included), memcheck and racecheck on the band items, memcheck
# on the many-items tests (one and three CTAs: one cluster running dozens of pairs), the demo.
#   bash bench/experiments/run_s41e.sh    (carry .gpu/s41e.tar.gz: tests/ trimix_tests_cuda and
#   trianglemix_demo of s42-mcr, lib/)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s41e.tar.gz s41e
cuda_checks $B/tests "tile-engine band items with the sink keys in another tile*" 60
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 3 $B/tests/trimix_tests_cuda "tile-engine: consumers that run many items in a row*" > $R/memcheck_many.log 2>&1
echo "memcheck many rc=$? at $((SECONDS - t0)) s"; tail -1 $R/memcheck_many.log
tar czf $OUT/s41e_results.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
