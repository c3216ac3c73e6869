#!/usr/bin/env bash
# For the forty-sixth session's call (~400 s): trimix timed the way the peers are. compare_gpu.py
# times SDPA and FlexAttention by triton.testing.do_bench (CUDA events around each call, the L2
# cleared before it, in its own process), but trimix by attention_bench's host clock around one
# launch and a fence (a subprocess). Here compare_gpu.py --lib also runs trimix in its own process,
# through libtrimix_ctypes.so (bench/trimix_ctypes.cpp), on the same tensors and by the same
# do_bench ("trimix_inproc" rows), beside the usual "trimix" rows; all under nvml_power.py. Then
# ncu's profile of the triangle's pair kernel at 16K (what limits it), and do_bench's source as run.
# Predicted: trimix_inproc / trimix triangle 0.96-0.98 at 16K (the host's launch + fence ~10 us of
# ~380, a cleared L2 costing a little back), ~0.99-1.00 at 64K; causal 0.99-1.00.
#   bash bench/experiments/run_s46a.sh   (carry .gpu/s46.tar.gz: ctypes/attention_bench and
#   ctypes/libtrimix_ctypes.so of this commit by scripts/gpu/build_variant.sh with
#   KOKKOS_CUDA=<a shared-library Kokkos> -DTRIMIX_BUILD_CTYPES=ON, lib/ with libcudart.so.13 and
#   that Kokkos' libkokkos*.so*); LIMIT=S (default 520) ends the compare S s after the start
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s46.tar.gz s46
python3 - > $R/do_bench_source.txt 2>&1 <<'PY'
import inspect, torch, triton, triton.testing as t
print("torch", torch.__version__, "triton", triton.__version__)
print(inspect.getsource(t.do_bench))
PY
head -1 $R/do_bench_source.txt
stamp() { python3 -c 'import sys, time
for line in sys.stdin: print(f"{time.monotonic():.3f} {line}", end="", flush=True)'; }
left=$((${LIMIT:-520} - 60 - (SECONDS - t0)))  # 60 s kept for ncu
TRIMIX_COMMIT=${COMMIT:-head} python3 bench/nvml_power.py --every-ms 20 --csv $R/power.csv -- \
  timeout $left python3 -u bench/compare_gpu.py --bench $B/ctypes/attention_bench --lib $B/ctypes/libtrimix_ctypes.so \
  --out $R/cmp --seq ${SEQS:-16384,32768,65536} 2>&1 | stamp > $R/cmp.log
echo "compare rc=${PIPESTATUS[0]} at $((SECONDS - t0)) s"; grep -v "^[0-9.]* *$" $R/cmp.log | grep "N=\|nvml\|W\|rror" | tail -24
timeout 50 ncu --clock-control none -k regex:pair_attention_kernel -c 1 --section SpeedOfLight \
  --section ComputeWorkloadAnalysis --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats \
  --metrics sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,sm__cycles_elapsed.avg.per_second \
  $B/ctypes/attention_bench --seq 16384 --masks triangle --dtypes bf16 --warmup 0 --repeat 1 > $R/ncu_triangle.txt 2>&1
echo "ncu rc=$? at $((SECONDS - t0)) s"; grep -E "Duration|SM Frequency|Compute \(SM\) Throughput|tensor_op_hmma|Elapsed Cycles" $R/ncu_triangle.txt | head -8
tar czf $OUT/s46_results.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
