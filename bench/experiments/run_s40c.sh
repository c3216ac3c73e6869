#!/usr/bin/env bash
# Fortieth session, third call: run_s40b.sh's A/B again (its 300 s limit ran out in the second
# round, and the per-round CSVs went with the directory), timing only: head, s40-mc (K / V
# multicast) and s39-bitsturn, 2 rounds, triangle and causal at 16K / 64K. Outputs were compared in
# run_s40b.sh (bit-identical), the builds' wgmmas checked here (0 serialized).
#   bash bench/experiments/run_s40c.sh    (carry .gpu/s40c.tar.gz: main/, mc/, bt/ attention_bench
#   as in run_s40b.sh, lib/)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s40c.tar.gz c
timeout 200 bash bench/ab_gpu.sh --out $R/ab --rounds ${ROUNDS:-2} --timeout 60 --seq 16384,65536 \
  --masks triangle,causal --no-serialized \
  main=$B/main/attention_bench mc=$B/mc/attention_bench bt=$B/bt/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; tail -6 $R/ab.log
tar czf $OUT/s40c_results.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
