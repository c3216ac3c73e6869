#!/usr/bin/env bash
# Thirty-sixth session, call 4: f5fc197 against the PyTorch peers (compare_gpu.py at 16K and 64K,
# SDPA flash skipped). Asked for an H200 (the README's H200 table is f38ed71's); an H100 came, so
# it is the ratio again on a second H100 (bench/results/gpu_compare_h100_f5fc197_s36_second.csv).
#   bash bench/experiments/run_s36d.sh      (carry .gpu/s36d.tar.gz: new/, lib/)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s36d.tar.gz d
TRIMIX_COMMIT=${COMMIT:-f5fc197} timeout 400 python3 bench/compare_gpu.py --bench $B/new/attention_bench \
  --out $R/cmp --seq ${SEQS:-16384,65536} --skip-peers flash > $R/cmp.log 2>&1
echo "compare rc=$? at $((SECONDS - t0)) s"; tail -12 $R/cmp.log
cp $R/cmp/gpu_compare.csv $R/gpu_compare.csv 2>/dev/null; rm -rf $R/cmp
