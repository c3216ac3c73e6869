#!/usr/bin/env bash
# Thirty-third session: do the known levers together reach the Flex third? Bounds joined by '+'
# (filledkv: no K / V bytes after the ring's first fill; nomask: no mask code; noboundary: no
# first-stage mask bits / softmax and no o stores; nolone: an odd item's lone tile left out) in one
# measuring build, triangle and causal at 16K, twice, each inside bench/nvml_power.py with a
# clock64 timeline; then head's compare_gpu.py against Flex at 16K and 64K in the same call.
set -uo pipefail
t0=$SECONDS
R=/tmp/r; B=/tmp/s33; mkdir -p $B $R/tl
tar xzf .gpu/s33.tar.gz -C $B
export LD_LIBRARY_PATH=$B/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $R/device.txt
fin() { tar czf $OUT/r.tgz -C /tmp r; }
trap fin EXIT
run() {  # label binary seq masks [args...] -- env...
  local label=$1 bin=$2 seq=$3 masks=$4; shift 4
  local args=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  mkdir -p $R/tl/$label
  for m in ${masks//,/ }; do
    python3 bench/nvml_power.py --csv $R/tl/nvml_${label}_$m.csv -- env "$@" TRIMIX_TIMELINE_DIR=$R/tl/$label \
      TRIMIX_DEVICE=$label timeout 60 $bin --seq $seq --masks $m --dtypes bf16 \
      --warmup-ms 300 --rep-ms 700 "${args[@]}" >> $R/tl/bench_$label.log 2>&1
  done
  python3 bench/pair_timeline_summary.py $R/tl/$label/*.bin > $R/tl/summary_$label.txt 2>&1
  rm -f $R/tl/$label/*.bin
  echo "== $label at $((SECONDS - t0)) s"; grep -h "bf16 \|nvml_power" $R/tl/bench_$label.log | grep -v "\.\.\." ; grep -E "^==|SM clock|span cycles" $R/tl/summary_$label.txt | head -8
}
H=$B/head/attention_bench; X=$B/bounds/attention_bench
for round in 1 2; do
  run head_$round $H 16384 triangle,causal
  for b in none filledkv nomask noboundary nolone filledkv+nomask filledkv+nomask+noboundary filledkv+nomask+noboundary+nolone; do
    run ${b//+/_}_$round $X 16384 triangle,causal -- TRIMIX_CUDA_PAIR_BOUND=$b
  done
done
run none64 $X 65536 triangle -- TRIMIX_CUDA_PAIR_BOUND=none
run all64 $X 65536 triangle -- TRIMIX_CUDA_PAIR_BOUND=filledkv+nomask+noboundary+nolone
echo "bounds done at $((SECONDS - t0)) s"
mkdir -p $R/cmp
TRIMIX_COMMIT=head timeout 240 python3 bench/compare_gpu.py --bench $H --out $R/cmp --seq 16384,65536 \
  --skip-peers flash,cudnn > $R/cmp/compare.log 2>&1
echo "compare rc=$? at $((SECONDS - t0)) s"; tail -12 $R/cmp/compare.log
