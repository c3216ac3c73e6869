#!/usr/bin/env bash
# Thirty-fourth session: the first overlap (branch s34-overlap) and the producer's dead test (s34-fix).
#   bash .gpu/run_s34.sh     (carry .gpu/s34.tar.gz and this script)
# The overlap build's CUDA suite, memcheck / racecheck on the band-item tests, the demo, then a
# same-call A/B (two rounds, alternating): fix = main with the producer's nolone test compiled out
# (its Causal and Triangle bf16 pair kernels' SASS identical to 0a98ec6's), overlap = fix + the
# first overlap, off = overlap's binary with TRIMIX_CUDA_FIRST_OVERLAP=0.
set -uo pipefail
t0=$SECONDS
R=$OUT/r; B=/tmp/s34; mkdir -p $B $R
tar xzf .gpu/s34.tar.gz -C $B
export LD_LIBRARY_PATH=$B/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $R/device.txt
timeout 120 $B/tests/trimix_tests_cuda > $R/tests.log 2>&1
echo "tests rc=$? at $((SECONDS - t0)) s"; tail -3 $R/tests.log
band="tile-engine band items at TriangleMix's window*,tile-engine band items with the sink keys in another tile*"
for tool in memcheck racecheck; do
  timeout 60 compute-sanitizer --tool $tool --error-exitcode 3 $B/tests/trimix_tests_cuda "$band" > $R/$tool.log 2>&1
  echo "$tool rc=$? at $((SECONDS - t0)) s"; tail -1 $R/$tool.log
done
timeout 20 $B/tests/trianglemix_demo > $R/demo.log 2>&1; echo "demo rc=$?"; grep -E " ok| FAIL" $R/demo.log
for r in 1 2; do for v in fix overlap off; do
  e=""; [ $v = off ] && e="TRIMIX_CUDA_FIRST_OVERLAP=0"; bin=$B/$v/attention_bench; [ $v = off ] && bin=$B/overlap/attention_bench
  env $e timeout 60 $bin --seq 16384,65536 --masks triangle,causal --dtypes bf16 --warmup-ms 100 --rep-ms 400 > $R/${v}_$r.log 2>&1
  echo "== $v round $r at $((SECONDS - t0)) s"; grep "^ *bf16 " $R/${v}_$r.log | grep -v "\.\.\."
done; done
