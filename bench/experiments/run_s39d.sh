#!/usr/bin/env bash
# Thirty-ninth session, in one call (device starts were scarce): s39-both (a stage's mask bits
# under its S; the speculative softmax) against head's kernels, same-call A/B with outputs
# compared, both clock64 timelines at 16K, then s39-both's CUDA suite, memcheck / racecheck on the
# pair-kernel tests and the running-max course (jumps past the clamp), and the demo.
# Predicted: a loop stage -220 to -500 cycles; triangle -4 to -8%, causal -3 to -6%.
#   bash bench/experiments/run_s39d.sh    (carry .gpu/s39d.tar.gz: main/, maintl/, both/, bothtl/
#   attention_bench builds and tests/ (trimix_tests_cuda, trianglemix_demo) of s39-both by
#   scripts/gpu/build_variant.sh, lib/)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s39d.tar.gz d
timeout 240 bash bench/ab_gpu.sh --out $R/ab --rounds ${ROUNDS:-3} --seq 16384,65536 --masks triangle,streaming,causal \
  --agree 4000 main=$B/main/attention_bench both=$B/both/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; tail -9 $R/ab.log
cp $R/ab/agree.txt $R/ab/summary.txt $R/ 2>/dev/null
rm -rf $R/ab  # the per-round CSVs / logs: too many files to come back; ab.log has the table
for v in maintl bothtl; do
  pair_timeline $v $B/$v/attention_bench triangle,causal --warmup-ms 300 --rep-ms 300
  grep -E "^==|SM clock" $R/tl_$v.txt | head -2
done
cuda_checks $B/tests "tile-engine band items with the sink keys in another tile*,tile-engine: consumers that run many items in a row*,the running max*" 75
echo "all at $((SECONDS - t0)) s"
