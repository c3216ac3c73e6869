#!/usr/bin/env bash
# For the forty-first session, after run_s41.sh: where the K / V multicast's cycles go. clock64
# timelines (PairTimeline, 16K, triangle and causal) of head and of s41-mc (multicast on), then the
# same s41-mc build with TRIMIX_CUDA_MULTICAST=0; compare producer_empty_wait, loop_stage_wait,
# first_issue_before_item and the item's parts (bench/pair_timeline_summary.py). ~90 s.
# Predicted: multicast on raises loop_stage_wait and first_issue_before_item (the lockstep and the
# per-pair meeting), not the consumers' chain.
#   bash bench/experiments/run_s41b.sh    (carry .gpu/s41b.tar.gz: headtl/ attention_bench of main
#   at 1db77fe or later and mctl/ attention_bench of s41-mc, both built with
#   -DCMAKE_CXX_FLAGS=-DTRIMIX_CUDA_PAIR_TIMELINE by scripts/gpu/build_variant.sh, lib/)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s41b.tar.gz s41b
pair_timeline head $B/headtl/attention_bench triangle,causal --warmup-ms 100 --rep-ms 100
pair_timeline mc $B/mctl/attention_bench triangle,causal --warmup-ms 100 --rep-ms 100
TRIMIX_CUDA_MULTICAST=0 pair_timeline mc0 $B/mctl/attention_bench triangle,causal --warmup-ms 100 --rep-ms 100
for v in head mc mc0; do grep -E "^==|SM clock" $R/tl_$v.txt | head -2; done
rm -f $R/tl_*.log
tar czf $OUT/s41b_results.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
