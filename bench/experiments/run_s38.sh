#!/usr/bin/env bash
# Thirty-eighth session: s38-s2early (an item's first stage issues the second stage's S too, so that
# the tensor pipe runs it under both consumers' first softmaxes; the loop's first step then issues
# P V alone) against head's kernels, 5 alternating rounds with outputs compared, then both clock64
# timelines at 16K. Predicted: a band item -300 to -600 cycles, triangle / streaming -1.5 to -3%;
# causal noise.
# Call 3 ran the same script on s38-s2lone (the second S after a lone first tile only) with
# PACK=.gpu/s38c.tar.gz.
#   bash bench/experiments/run_s38.sh      (carry .gpu/s38.tar.gz, or PACK=...: main/, new/, maintl/,
#   newtl/, lib/; attention_bench builds by scripts/gpu/build_variant.sh)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup ${PACK:-.gpu/s38.tar.gz} a
timeout 330 bash bench/ab_gpu.sh --out $R/ab --rounds ${ROUNDS:-5} --seq 16384,65536 --masks triangle,streaming,causal \
  --agree 4000 main=$B/main/attention_bench new=$B/new/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; tail -8 $R/ab.log
rm -rf $R/ab  # the per-round CSVs / logs: too many files to come back; ab.log has the table
for v in maintl newtl; do
  pair_timeline $v $B/$v/attention_bench triangle,causal --warmup-ms 300 --rep-ms 300
  grep -E "^==|SM clock" $R/tl_$v.txt | head -2
done
