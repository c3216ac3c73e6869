#!/usr/bin/env bash
# Thirty-third session, call 2: head against Flex at 16K on this device (call 1's compare timed out).
# Prepared, not run in the thirty-third session (no device left); run_s33.sh ran.
set -uo pipefail
R=/tmp/r; B=/tmp/s33; mkdir -p $B $R/cmp
tar xzf .gpu/s33.tar.gz -C $B
export LD_LIBRARY_PATH=$B/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $R/device.txt
fin() { tar czf $OUT/r.tgz -C /tmp r; }
trap fin EXIT
t0=$SECONDS
TRIMIX_COMMIT=0a98ec6 timeout 450 python3 -u bench/compare_gpu.py --bench $B/head/attention_bench --out $R/cmp --seq 16384 \
  --skip-peers flash,cudnn 2>&1 | tee $R/cmp/compare.log | grep -v "^ *trace"
echo "compare rc=$? at $((SECONDS - t0)) s"
