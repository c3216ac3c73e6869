#!/usr/bin/env bash
# Thirty-second session, prepared for landing the lean stage reuse (run after run_s32b.sh if lean
# beat head there): A/B head vs lean (macros off) over causal / triangle / streaming at 16K and
# 64K, then lean's CUDA suite, demo, memcheck and racecheck of [sanitize].
# lean = 1c1ec74 + bench/experiments/stage_reuse_lean_s31.patch (macros off; its kernels' code is
# main's: main's later changes are inside the measuring macros).
set -uo pipefail
t0=$SECONDS
R=/tmp/r; B=/tmp/s32c; mkdir -p $B $R
tar xzf .gpu/s32c.tar.gz -C $B
export LD_LIBRARY_PATH=$B/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee $R/device.txt
export CUOBJDUMP=$(command -v cuobjdump)
fin() { tar czf $OUT/r.tgz -C /tmp r; }
trap fin EXIT
timeout 200 bench/ab_gpu.sh --out $R/ab --agree 16384 --masks causal,triangle,streaming --seq 16384,65536 --rounds 2 \
  head=$B/head/attention_bench lean=$B/lean/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; cat $R/ab/agree.txt 2>/dev/null; cat $R/ab/summary.txt 2>/dev/null; cat $R/ab/serialized.txt 2>/dev/null
left=$((420 - (SECONDS - t0)))
timeout $((left > 20 ? left - 10 : 10)) $B/lean/trimix_tests_cuda --reporter compact > $R/tests.log 2>&1; echo "tests rc=$? at $((SECONDS - t0)) s"; tail -3 $R/tests.log
timeout 30 $B/lean/trianglemix_demo --seq 4096 --dtype bf16 --repeat 2 > $R/demo.log 2>&1; echo "demo rc=$?"; tail -8 $R/demo.log
for tool in memcheck racecheck; do
  left=$((560 - (SECONDS - t0)))
  [ $left -gt 20 ] || break
  timeout $((left - 10)) compute-sanitizer --tool $tool --error-exitcode 3 $B/lean/trimix_tests_cuda "[sanitize]" > $R/$tool.log 2>&1
  echo "$tool rc=$? at $((SECONDS - t0)) s"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|All tests passed" $R/$tool.log | tail -2
done
