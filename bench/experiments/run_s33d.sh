#!/usr/bin/env bash
# Thirty-third session, call 3 cut to the budget left (~340 s with the cold start): the lone piece
# (0b54ba5) on the band-item tests only, then a one-round A/B at 16K of head (0a98ec6) / piece /
# piece switched off (TRIMIX_CUDA_LONE_PIECE=0) with --agree. Logs straight into $OUT.
set -uo pipefail
t0=$SECONDS
R=$OUT/r; B=/tmp/s33c; mkdir -p $B $R
tar xzf .gpu/s33c.tar.gz -C $B
export LD_LIBRARY_PATH=$B/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $R/device.txt
timeout 60 $B/tests/trimix_tests_cuda "tile-engine band items at TriangleMix's window*,tile-engine band items with the sink keys in another tile*,tile-engine: consumers that run many items in a row*" \
  > $R/tests.log 2>&1
echo "tests rc=$? at $((SECONDS - t0)) s"; tail -3 $R/tests.log
timeout 80 bench/ab_gpu.sh --out $R/ab --rounds 1 --seq 16384 --masks triangle,causal --agree 16384 \
  --env off:TRIMIX_CUDA_LONE_PIECE=0 head=$B/head/attention_bench piece=$B/piece/attention_bench \
  off=$B/piece/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; cat $R/ab/agree.txt $R/ab/summary.txt 2>/dev/null | tail -20
