#!/usr/bin/env bash
# Thirty-third session, call 3: the lone piece (0b54ba5): the CUDA suite, then a same-call A/B of
# head (0a98ec6) / piece / piece switched off (TRIMIX_CUDA_LONE_PIECE=0) with --agree, the demo,
# and memcheck / racecheck on the band-item tests, each under a timeout (the device budget is
# short); logs straight into $OUT so that a cut call still returns them.
set -uo pipefail
t0=$SECONDS
R=$OUT/r; B=/tmp/s33c; mkdir -p $B $R
tar xzf .gpu/s33c.tar.gz -C $B
export LD_LIBRARY_PATH=$B/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $R/device.txt
timeout 120 $B/tests/trimix_tests_cuda > $R/tests.log 2>&1
echo "tests rc=$? at $((SECONDS - t0)) s"; tail -4 $R/tests.log
timeout 150 bench/ab_gpu.sh --out $R/ab --rounds 2 --seq 16384,65536 --masks triangle,causal --agree 16384 \
  --env off:TRIMIX_CUDA_LONE_PIECE=0 head=$B/head/attention_bench piece=$B/piece/attention_bench \
  off=$B/piece/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; cat $R/ab/agree.txt $R/ab/summary.txt 2>/dev/null | tail -30
timeout 20 $B/tests/trianglemix_demo > $R/demo.log 2>&1; echo "demo rc=$?"; tail -2 $R/demo.log
for tool in memcheck racecheck; do
  timeout 45 compute-sanitizer --tool $tool --error-exitcode 3 $B/tests/trimix_tests_cuda \
    "tile-engine band items with the sink keys in another tile" > $R/$tool.log 2>&1
  echo "$tool rc=$? at $((SECONDS - t0)) s"; tail -2 $R/$tool.log
done
