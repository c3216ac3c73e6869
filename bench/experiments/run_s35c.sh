#!/usr/bin/env bash
# Thirty-fifth session, call 3: the new head against the PyTorch peers (compare_gpu.py at 16K and
# 64K, SDPA flash skipped), then the pair timeline of main (29a1284's kernels) and of the new
# producer at 16K, triangle and causal, one call each after the timed ones.
#   bash bench/experiments/run_s35c.sh      (carry .gpu/s35c.tar.gz: new/, maintl/, newtl/, lib/)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s35c.tar.gz c
for v in maintl newtl; do pair_timeline $v $B/$v/attention_bench triangle,causal --warmup-ms 100 --rep-ms 300; done
TRIMIX_COMMIT=${COMMIT:-new} timeout 420 python3 bench/compare_gpu.py --bench $B/new/attention_bench --out $R/cmp \
  --seq ${SEQS:-16384,65536} --skip-peers flash > $R/cmp.log 2>&1
echo "compare rc=$? at $((SECONDS - t0)) s"; tail -12 $R/cmp.log
tar czf $OUT/s35c.tar.gz -C $R . && rm -rf $R/cmp
