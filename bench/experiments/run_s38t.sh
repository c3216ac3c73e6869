#!/usr/bin/env bash
# Thirty-eighth session: the loop's off-turn chain in parts (PairTimeline words 16-20: mask bits,
# S + P V issue, masking + softmax, rescale, release + pack; beside the waits for the stage, the turn,
# S and P V), head's timeline build, triangle and causal at 16K, two passes.
#   bash bench/experiments/run_s38t.sh     (carry .gpu/s38t.tar.gz: tl/attention_bench, lib/; built by
#   scripts/gpu/build_variant.sh . BUILD attention_bench -DCMAKE_CXX_FLAGS=-DTRIMIX_CUDA_PAIR_TIMELINE)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s38t.tar.gz t
for pass in 1 2; do
  pair_timeline pass$pass $B/tl/attention_bench triangle,causal --warmup-ms 300 --rep-ms 300
  grep -E "^==|SM clock" $R/tl_pass$pass.txt | head -2
done
