#!/usr/bin/env bash
# Fortieth session, second call: the two-CTA K / V multicast (branch s40-mc) in one call: its CUDA
# suite, memcheck / racecheck on pair-kernel tests and the demo first (a deadlock shows as a
# timeout), then the same-call A/B of head, s40-mc and s40-mc with TRIMIX_CUDA_MULTICAST=0 (its
# code, one CTA a cluster) and s39-bitsturn (a stage's mask bits between its S and P V issue; by
# subtraction from s39-both and s39-spec, -2 to -3% on all three masks), outputs compared, 2
# rounds; then, if time is left, s40-mc's bounds build: multicast off (none), the halfkv bound
# (multicast off) and multicast on (mcast). As run (bench/NOTES.md): the A/B hit its 300 s limit in
# its second round and the `rm -rf $R/ab` below took the round CSVs with it (run_s40c.sh keeps them).
# Predicted: triangle -2 to -4% (a band item's 4 whole stages come by multicast: L2 -> SM bytes of
# K / V -45%; filledkv, all of them, was -8.5%), causal -1 to -3%; mc0 within 1% of head (the
# producer's spills: STL 0 -> 10 in Causal's kernel).
#   bash bench/experiments/run_s40b.sh    (carry .gpu/s40b.tar.gz: main/ attention_bench of head,
#   mc/ and mcb/ (-DTRIMIX_CUDA_PAIR_BOUNDS) attention_bench and tests/ (trimix_tests_cuda,
#   trianglemix_demo) of s40-mc, bt/ attention_bench of s39-bitsturn (99d1ff1), lib/; all by
#   scripts/gpu/build_variant.sh)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s40b.tar.gz b
timeout 150 $B/tests/trimix_tests_cuda > $R/tests.log 2>&1
echo "tests rc=$? at $((SECONDS - t0)) s"; tail -3 $R/tests.log
# memcheck on the many-items test too (one cluster of two running dozens of pairs: pads, items
# without tiles, split items); racecheck on the band items (the many-items test outlasts 60 s there)
timeout 70 compute-sanitizer --tool memcheck --error-exitcode 3 $B/tests/trimix_tests_cuda \
  "tile-engine band items with the sink keys in another tile*,tile-engine: consumers that run many items in a row*" > $R/memcheck.log 2>&1
echo "memcheck rc=$? at $((SECONDS - t0)) s"; tail -1 $R/memcheck.log
timeout 45 compute-sanitizer --tool racecheck --error-exitcode 3 $B/tests/trimix_tests_cuda \
  "tile-engine band items with the sink keys in another tile*" > $R/racecheck.log 2>&1
echo "racecheck rc=$? at $((SECONDS - t0)) s"; tail -1 $R/racecheck.log
timeout 30 $B/tests/trianglemix_demo > $R/demo.log 2>&1; echo "demo rc=$?"; grep -E " ok| FAIL" $R/demo.log
timeout 300 bash bench/ab_gpu.sh --out $R/ab --rounds ${ROUNDS:-2} --timeout 60 --seq 16384,65536 \
  --masks triangle,streaming,causal --agree 4000 --env mc0:TRIMIX_CUDA_MULTICAST=0 \
  main=$B/main/attention_bench mc=$B/mc/attention_bench mc0=$B/mc/attention_bench bt=$B/bt/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; tail -8 $R/ab.log
cp $R/ab/agree.txt $R/ 2>/dev/null
rm -rf $R/ab
if [ $((SECONDS - t0)) -lt 420 ]; then
  timeout 80 bash bench/ab_gpu.sh --out $R/bound --rounds 1 --timeout 30 --seq 16384,65536 --masks triangle \
    --env none:TRIMIX_CUDA_MULTICAST=0 --env halfkv:TRIMIX_CUDA_MULTICAST=0 --env halfkv:TRIMIX_CUDA_PAIR_BOUND=halfkv \
    none=$B/mcb/attention_bench halfkv=$B/mcb/attention_bench mcast=$B/mcb/attention_bench > $R/bound.log 2>&1
  echo "bound rc=$? at $((SECONDS - t0)) s"; tail -4 $R/bound.log
  rm -rf $R/bound
fi
tar czf $OUT/s40b_results.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
