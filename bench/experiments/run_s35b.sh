#!/usr/bin/env bash
# Thirty-fifth session, call 2: 1a04edd (32-bit producer tiles for sink-folding masks only).
#   bash bench/experiments/run_s35b.sh     (carry .gpu/s35b.tar.gz: main/, new/, tests/, lib/)
# The CUDA suite, memcheck / racecheck on the band-item tests, the demo, then outputs against
# main's on the same random inputs and three alternating rounds (main = 29a1284's kernels).
set -uo pipefail
t0=$SECONDS
R=$OUT/r; B=/tmp/s35b; mkdir -p $B $R
tar xzf .gpu/s35b.tar.gz -C $B
export LD_LIBRARY_PATH=$B/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $R/device.txt
timeout 150 $B/tests/trimix_tests_cuda > $R/tests.log 2>&1
echo "tests rc=$? at $((SECONDS - t0)) s"; tail -3 $R/tests.log
band="tile-engine band items with the sink keys in another tile*"
for tool in memcheck racecheck; do
  timeout 60 compute-sanitizer --tool $tool --error-exitcode 3 $B/tests/trimix_tests_cuda "$band" > $R/$tool.log 2>&1
  echo "$tool rc=$? at $((SECONDS - t0)) s"; tail -1 $R/$tool.log
done
timeout 30 $B/tests/trianglemix_demo > $R/demo.log 2>&1; echo "demo rc=$?"; grep -E " ok| FAIL" $R/demo.log
bash bench/ab_gpu.sh --out $R/ab --rounds 3 --seq 16384,65536 --masks triangle,causal,streaming \
  --agree 4000 --timeout 90 main=$B/main/attention_bench new=$B/new/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; cat $R/ab/agree.txt $R/ab/summary.txt
# Few files back: the logs in one tarball.
tar czf $OUT/s35b_logs.tar.gz -C $R . && rm -rf $R/ab
