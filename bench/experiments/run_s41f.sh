#!/usr/bin/env bash
# For the forty-first session's last call (~60 s): the lockstep multicast with CUTLASS's remote
# arrive (s42-mcr 32f86d0: .release.cta, no cluster-scope release per stage; run_s41d.sh's
# .release.cluster form made pack + release 1106 -> 5498 cycles a band item, mcr / head triangle
# 1.244, causal 1.300). Same-call A/B at 16K, 3 rounds: head, mcr3, mcr30 (TRIMIX_CUDA_MULTICAST=0).
# Predicted: mcr3 / mcr30 triangle 0.95-1.00 (the release back to ~1100 cycles an item; the clock
# of halfkv's bytes), causal 0.98-1.01.
#   bash bench/experiments/run_s41f.sh    (carry .gpu/s41f.tar.gz: head/ and lib/ as run_s41d.sh's,
#   mcr3/ attention_bench of s42-mcr at the commit above; wgmma_serialized.py checked here)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s41f.tar.gz s41f
timeout 150 bash bench/ab_gpu.sh --out $R/ab --rounds 3 --timeout 40 --seq ${SEQS:-16384} --masks triangle,causal --no-serialized \
  --env mcr30:TRIMIX_CUDA_MULTICAST=0 head=$B/head/attention_bench mcr3=$B/mcr3/attention_bench mcr30=$B/mcr3/attention_bench \
  > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; tail -4 $R/ab.log
tar czf $OUT/s41f_ab.tar.gz -C $R . && rm -rf $R
