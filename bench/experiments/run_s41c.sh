#!/usr/bin/env bash
# For the forty-first session's second call (~300 s): what half the K / V bytes is worth, measured
# fairly, and where the multicast's cycles go. run_s41.sh's halfkv left one half of every stage at
# the launch's zeros (zero operands: the power falls, as zerokv), so s41-mc's halfkv (0a76eac) now
# copies a stage whole on its first use and only half (K on even CTAs, V on odd) after: the bytes
# of a two-CTA multicast, real operands, no sync. (1) Triangle, 2 rounds, all the one bounds build
# (mcb2): mc0 (TRIMIX_CUDA_MULTICAST=0), halfkv, filledkv (no bytes after the first fill, the
# thirty-second session's bound), mcast (multicast on). (2) clock64 timelines at 16K (triangle,
# causal): head (headtl), and the timeline + bounds build of s41-mc (mctlb2) under mcast, mc0 and
# halfkv (bench/pair_timeline_summary.py: loop_stage_wait, producer_empty_wait, first_issue_before_item).
# Predicted: halfkv / mc0 0.95-0.97 (filledkv's -8.5% halved, the kernel faster since), filledkv /
# mc0 0.90-0.93, mcast / mc0 1.06-1.09 (run_s41.sh); mcast's loop_stage_wait and first issue up.
#   bash bench/experiments/run_s41c.sh    (carry .gpu/s41c.tar.gz: mcb2/ attention_bench of s41-mc
#   at 0a76eac built with -DCMAKE_CXX_FLAGS=-DTRIMIX_CUDA_PAIR_BOUNDS, mctlb2/ the same with
#   -DTRIMIX_CUDA_PAIR_TIMELINE too, headtl/ main's attention_bench at 1db77fe or later with the
#   timeline, lib/; scripts/gpu/build_variant.sh, wgmma_serialized.py checked here)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s41c.tar.gz s41c
timeout 240 bash bench/ab_gpu.sh --out $R/bytes --rounds 2 --timeout 40 --seq 16384,65536 --masks triangle --no-serialized \
  --env mc0:TRIMIX_CUDA_MULTICAST=0 --env halfkv:TRIMIX_CUDA_MULTICAST=0 --env halfkv:TRIMIX_CUDA_PAIR_BOUND=halfkv \
  --env filledkv:TRIMIX_CUDA_MULTICAST=0 --env filledkv:TRIMIX_CUDA_PAIR_BOUND=filledkv \
  mc0=$B/mcb2/attention_bench halfkv=$B/mcb2/attention_bench filledkv=$B/mcb2/attention_bench mcast=$B/mcb2/attention_bench \
  > $R/bytes.log 2>&1
echo "bytes rc=$? at $((SECONDS - t0)) s"; tail -8 $R/bytes.log
for f in $R/bytes/ab_*_*.csv; do echo "$(basename $f): $(tail -n +2 $f | cut -d, -f11,13 | tr '\n' ' ')"; done
pair_timeline head $B/headtl/attention_bench triangle,causal --warmup-ms 100 --rep-ms 100
pair_timeline mc $B/mctlb2/attention_bench triangle,causal --warmup-ms 100 --rep-ms 100
TRIMIX_CUDA_MULTICAST=0 pair_timeline mc0 $B/mctlb2/attention_bench triangle,causal --warmup-ms 100 --rep-ms 100
TRIMIX_CUDA_MULTICAST=0 TRIMIX_CUDA_PAIR_BOUND=halfkv pair_timeline halfkv $B/mctlb2/attention_bench triangle --warmup-ms 100 --rep-ms 100
for v in head mc mc0 halfkv; do grep -E "^==|SM clock" $R/tl_$v.txt | head -2; done
rm -f $R/tl_*.log
tar czf $OUT/s41c_results.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
