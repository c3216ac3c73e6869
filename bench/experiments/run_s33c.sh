#!/usr/bin/env bash
# Thirty-third session, prepared, not yet run: the lone piece (branch s33-piece, kernel 0b54ba5).
#
#   bash .gpu/run_s33c.sh [--short]      (carry .gpu/s33c.tar.gz and this script as .gpu/run_s33c.sh)
#
# Full (~380 s): the CUDA suite, a same-call A/B at 16K / 64K (two rounds) of head (0a98ec6) /
# piece / piece switched off (TRIMIX_CUDA_LONE_PIECE=0) with --agree, the demo, and memcheck /
# racecheck on the band-item tests. --short (~100 s): the band-item tests only and a one-round
# A/B at 16K. Logs go straight into $OUT, so that a call cut short still returns them.
set -uo pipefail
short=0; [ "${1:-}" = "--short" ] && short=1
t0=$SECONDS
R=$OUT/r; B=/tmp/s33c; mkdir -p $B $R
tar xzf .gpu/s33c.tar.gz -C $B
export LD_LIBRARY_PATH=$B/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $R/device.txt
band_tests="tile-engine band items at TriangleMix's window*,tile-engine band items with the sink keys in another tile*"
band_tests="$band_tests,tile-engine: consumers that run many items in a row*"  # Catch2: one argument, commas
if [ $short = 1 ]; then
  rounds=1 seq=16384
  timeout 60 $B/tests/trimix_tests_cuda "$band_tests" > $R/tests.log 2>&1; rc=$?
else
  rounds=2 seq=16384,65536
  timeout 120 $B/tests/trimix_tests_cuda > $R/tests.log 2>&1; rc=$?
fi
echo "tests rc=$rc at $((SECONDS - t0)) s"; tail -4 $R/tests.log
timeout 150 bench/ab_gpu.sh --out $R/ab --rounds $rounds --seq $seq --masks triangle,causal --agree 16384 \
  --env off:TRIMIX_CUDA_LONE_PIECE=0 head=$B/head/attention_bench piece=$B/piece/attention_bench \
  off=$B/piece/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; cat $R/ab/agree.txt $R/ab/summary.txt 2>/dev/null | tail -30
[ $short = 1 ] && exit 0
timeout 20 $B/tests/trianglemix_demo > $R/demo.log 2>&1; echo "demo rc=$?"; tail -2 $R/demo.log
for tool in memcheck racecheck; do
  timeout 45 compute-sanitizer --tool $tool --error-exitcode 3 $B/tests/trimix_tests_cuda \
    "tile-engine band items with the sink keys in another tile*" > $R/$tool.log 2>&1
  echo "$tool rc=$? at $((SECONDS - t0)) s"; tail -2 $R/$tool.log
done
