#!/usr/bin/env bash
# Thirty-ninth session: s39-spec alone (the speculative softmax, the mask bits where head computes
# them) against head's kernels, same-call A/B with outputs compared: run_s39d.sh's timeline showed
# s39-both's mask bits inside the turn lengthening the turn by as much as they left the chain.
# Predicted: triangle -1 to -2%, streaming -1 to -2%, causal -1.5 to -2%.
#   bash bench/experiments/run_s39e.sh    (carry .gpu/s39e.tar.gz: main/, sp/ attention_bench, lib/)
set -uo pipefail
. bench/experiments/device_common.sh
device_setup .gpu/s39e.tar.gz e
timeout 200 bash bench/ab_gpu.sh --out $R/ab --rounds ${ROUNDS:-2} --seq 16384,65536 --masks triangle,streaming,causal \
  --agree 4000 main=$B/main/attention_bench sp=$B/sp/attention_bench > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; tail -8 $R/ab.log
cp $R/ab/agree.txt $R/ 2>/dev/null
rm -rf $R/ab
