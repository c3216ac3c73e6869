#!/usr/bin/env bash
# Fortieth session, first call: run_s39f.sh's landing checks of s39-spec (the speculative softmax)
# against head (same-call A/B, 3 rounds, outputs compared; CUDA suite, memcheck / racecheck, demo),
# then the bound that says whether a two-CTA K / V multicast is worth building: halfkv (each CTA
# copies half of every stage: the L2 -> SM bytes a cluster multicast leaves) beside filledkv (no
# K / V bytes after the ring's first fill) on s39-spec's kernel, same binary, 2 rounds; the clock64
# timelines last, if time is left.
# Predicted: s39-spec triangle -1 to -2%, causal -1.5 to -2%; halfkv -3 to -5% (half of filledkv's
# -8.5%, less the L2 hits that were cheap).
#   bash bench/experiments/run_s40a.sh    (carry .gpu/s40a.tar.gz: s39f.tar.gz's main/, sp/, tests/,
#   maintl/, sptl/, lib/, and hk/ attention_bench of branch s40-halfkv built with
#   -DCMAKE_CXX_FLAGS=-DTRIMIX_CUDA_PAIR_BOUNDS; all by scripts/gpu/build_variant.sh)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s40a.tar.gz a
timeout 200 bash bench/ab_gpu.sh --out $R/ab --rounds ${ROUNDS:-3} --seq 16384,65536 --masks triangle,streaming,causal \
  --agree 4000 main=$B/main/attention_bench sp=$B/sp/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; tail -8 $R/ab.log
cp $R/ab/agree.txt $R/ 2>/dev/null
rm -rf $R/ab
cuda_checks $B/tests "tile-engine band items with the sink keys in another tile*,tile-engine: consumers that run many items in a row*,the running max*" 60
timeout 120 bash bench/ab_gpu.sh --out $R/bound --rounds 2 --seq 16384,65536 --masks triangle,causal \
  --env halfkv:TRIMIX_CUDA_PAIR_BOUND=halfkv --env filledkv:TRIMIX_CUDA_PAIR_BOUND=filledkv \
  none=$B/hk/attention_bench halfkv=$B/hk/attention_bench filledkv=$B/hk/attention_bench > $R/bound.log 2>&1
echo "bound rc=$? at $((SECONDS - t0)) s"; tail -6 $R/bound.log
rm -rf $R/bound
for v in maintl sptl; do
  [ $((SECONDS - t0)) -lt 500 ] || break
  pair_timeline $v $B/$v/attention_bench triangle,causal --warmup-ms 100 --rep-ms 100
  grep -E "^==|SM clock" $R/tl_$v.txt | head -2
done
rm -f $R/tl_*.log
tar czf $OUT/s40a_results.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
