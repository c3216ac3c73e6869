#!/usr/bin/env bash
# For the fortieth session's first call: s39-spec alone (the speculative softmax; mask bits where
# head computes them) against head's kernels, same-call A/B (3 rounds, outputs compared), then
# s39-spec's CUDA suite, memcheck / racecheck on the pair-kernel tests and the running-max course,
# and the demo: everything a landing needs, in one call (~450 s); then both clock64 timelines at
# 16K (24-word format) where the pack has them.
# Predicted (from s39-both's timeline, bench/NOTES.md): triangle -1 to -2%, streaming -1 to -2%,
# causal -1.5 to -2%.
#   bash bench/experiments/run_s39f.sh    (carry .gpu/s39f.tar.gz: main/, sp/ attention_bench, tests/
#   (trimix_tests_cuda, trianglemix_demo of s39-spec), maintl/, sptl/ (timeline builds), lib/; all by
#   scripts/gpu/build_variant.sh)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s39f.tar.gz f
timeout 240 bash bench/ab_gpu.sh --out $R/ab --rounds ${ROUNDS:-3} --seq 16384,65536 --masks triangle,streaming,causal \
  --agree 4000 main=$B/main/attention_bench sp=$B/sp/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; tail -8 $R/ab.log
cp $R/ab/agree.txt $R/ 2>/dev/null
rm -rf $R/ab  # the per-round CSVs / logs: too many files to come back; ab.log has the table
cuda_checks $B/tests "tile-engine band items with the sink keys in another tile*,tile-engine: consumers that run many items in a row*,the running max*" 75
for v in maintl sptl; do
  [ -x $B/$v/attention_bench ] || continue
  pair_timeline $v $B/$v/attention_bench triangle,causal --warmup-ms 100 --rep-ms 100
  grep -E "^==|SM clock" $R/tl_$v.txt | head -2
done
rm -f $R/tl_*.log
# One archive: a call whose $OUT holds more than a handful of files brings some of them back empty.
tar czf $OUT/s39f_results.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
