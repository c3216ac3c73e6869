#!/usr/bin/env bash
# Thirty-eighth session: Nsight Compute source counters (warp-stall samples per SASS line) of head's
# pair kernel, triangle bf16 at 16K, on an H100: where a consumer's off-turn chain (mask bits,
# softmax, rescale, pack; ~1600 of a loop stage's ~2945 cycles, bench/NOTES.md) waits.
#   bash bench/experiments/run_s38n.sh     (carry .gpu/s38n.tar.gz: main/attention_bench, lib/)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s38n.tar.gz n
timeout 400 ncu --kernel-name-base demangled --kernel-name "regex:pair_attention_kernel.*Triangle" --launch-skip 1 \
  --launch-count 1 --section SourceCounters --section WarpStateStats --section SpeedOfLight -o $R/triangle -f \
  $B/main/attention_bench --seq 16384 --masks triangle --dtypes bf16 --warmup 1 --repeat 1 > $R/ncu.log 2>&1
echo "ncu rc=$? at $((SECONDS - t0)) s"; tail -3 $R/ncu.log
ncu --import $R/triangle.ncu-rep --page source --csv --print-source sass > $R/triangle_source.csv 2>&1
ncu --import $R/triangle.ncu-rep --page details > $R/triangle_details.txt 2>&1
python3 bench/ncu_hotspots.py $R/triangle_source.csv --top 60 --buckets 200 > $R/hotspots.txt 2>&1
echo "hotspots rc=$?"; head -5 $R/hotspots.txt
gzip $R/triangle_source.csv; rm -f $R/triangle.ncu-rep
