#!/usr/bin/env bash
# Nsight Compute profile of trimix's attention kernels on the GPU machine: one launch per mask after
# a warm-up, with the sections that say what limits a tile loop (speed of light, memory, occupancy,
# launch statistics, warp stalls).
#   bench/profile_gpu.sh BENCH OUT [--seq 16384] [--masks causal,triangle] [--inputs normal]
#                        [--kernel REGEX]
# BENCH is a CUDA build of attention_bench; reports go to OUT/ncu_<mask>.txt (and .ncu-rep).
# --kernel picks another kernel of the call by its demangled name, e.g. the vertical-slash column
# pass: --masks vslash --inputs structured --kernel VerticalSlashScores (every Kokkos kernel's base
# name is cuda_parallel_launch_*, so ncu has to match on the demangled name, as here).
set -euo pipefail
bench=$1 out=$2; shift 2
seq=16384 masks=causal,triangle inputs=normal kernel=""
while [ $# -gt 0 ]; do
  case $1 in
    --seq) seq=$2; shift 2 ;;
    --masks) masks=$2; shift 2 ;;
    --inputs) inputs=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    *) echo "profile_gpu.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
for mask in ${masks//,/ }; do
  policy=$(tr '[:lower:]' '[:upper:]' <<<"${mask:0:1}")${mask:1}  # the policy type in the kernel's name
  pattern=${kernel:-attention_kernel.*$policy}
  ncu --kernel-name-base demangled --kernel-name "regex:$pattern" --launch-skip 1 --launch-count 1 \
      --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
      --section LaunchStats --section WarpStateStats --section ComputeWorkloadAnalysis \
      -o "$out/ncu_$mask" -f \
      "$bench" --seq "$seq" --masks "$mask" --inputs "$inputs" --dtypes bf16 --warmup 1 --repeat 1 \
      >"$out/ncu_$mask.log" 2>&1 \
    || { tail -20 "$out/ncu_$mask.log"; exit 1; }
  ncu --import "$out/ncu_$mask.ncu-rep" --page details > "$out/ncu_$mask.txt"
  echo "== $mask (N=$seq)"
  grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|L2 Cache Throughput|Achieved Occupancy|Registers Per|Executed Ipc A|Local Memory|Stall" "$out/ncu_$mask.txt" | head -20 || true
done
