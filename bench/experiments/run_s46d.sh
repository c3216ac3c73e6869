#!/usr/bin/env bash
# For the forty-sixth session's fourth call (~250 s): do the pair kernel's run-time defaults still
# hold at head? One binary (run_s46a.sh's attention_bench, 85e095c's kernels), same call, 3 rounds
# alternating, triangle and causal at 16K / 64K: head against TRIMIX_CUDA_PING_PONG=0 (no turns),
# TRIMIX_CUDA_TMA_STORE=0 (o from registers), TRIMIX_CUDA_LAZY_RESCALE=0 (rescale at every new max),
# TRIMIX_CUDA_SINK_FOLD=0 (band items' sink keys in a tile of their own). Each was measured when it
# landed (the nineteenth to twenty-first sessions, on an H200, kernels since changed).
# Predicted: every switch 1.00-1.03 of head (noise or slower); sinkfold=0 triangle 1.03-1.08.
#   bash bench/experiments/run_s46d.sh   (carry .gpu/s46.tar.gz)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s46.tar.gz s46d
bin=$B/ctypes/attention_bench
timeout 330 bash bench/ab_gpu.sh --out $R/ab --rounds 3 --timeout 60 --seq 16384,65536 --masks triangle,causal \
  --no-serialized --env nopp:TRIMIX_CUDA_PING_PONG=0 --env regstore:TRIMIX_CUDA_TMA_STORE=0 \
  --env eager:TRIMIX_CUDA_LAZY_RESCALE=0 --env nofold:TRIMIX_CUDA_SINK_FOLD=0 \
  head=$bin nopp=$bin regstore=$bin eager=$bin nofold=$bin > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; cat $R/ab/summary.txt 2>/dev/null | tail -14
rm -f $R/ab/*.log
tar czf $OUT/s46d_results.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
