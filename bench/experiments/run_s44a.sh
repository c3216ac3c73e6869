#!/usr/bin/env bash
# For the forty-fourth session: one call (at most ~570 s) that does what run_s43a.sh and
# run_s43b.sh did in two. No machine started in the two sessions before (every start refused), so
# everything runs in the one call that starts.
#   (1) Same-call A/B at 16K, 2 rounds, triangle and causal; streaming one round. Labels: head, mcf,
#       mcf0 (mcf's binary with TRIMIX_CUDA_MULTICAST=0), mcg (run_s43a.sh's header says what each is;
#       mcf/ here is branch s44-mcfw at 35c9bb9: s43-mcf with its pair test as plan.hpp functions that
#       tests/test_plan.cpp checks on the CPU; sass_diff.py against b01be16: counts unchanged in every
#       pair kernel, Causal's and the ws kernels' code identical, Triangle's take reordered).
#   (2) The winner: mcf or mcg, whichever has the lower triangle time, provided it beats head on the
#       triangle and is no slower than head on causal and streaming (x 1.005 for noise). If neither
#       qualifies, the winner is head and the call stops after (1).
#   (3) The winner's own checks (tests_<winner>/ of the pack): the whole CUDA suite, memcheck and
#       racecheck on the band items, memcheck on the many-items tests, and the demo.
#   (4) The winner against every peer (compare_gpu.py under nvml_power.py, as run_s43b.sh) at
#       16K-64K. The step's time limit is what is left of SECS (default 560 s), and it is skipped
#       below 150 s.
#   bash bench/experiments/run_s44a.sh   (carry .gpu/s44.tar.gz, 50 MB: head/ mcf/ mcg/ attention_bench,
#   tests_mcf/ and tests_mcg/ (trimix_tests_cuda + trianglemix_demo of s44-mcfw 35c9bb9 and
#   s43-mcg 633181f; never run, since no form won), lib/; built by scripts/gpu/build_variant.sh, wgmma_serialized.py checked here)
# Predicted as in run_s43a.sh: mcf / head triangle 0.95-0.99, causal 0.97-0.99, mcf0 / head
# 1.00-1.02, mcg / mcf triangle 0.98-1.01; the winner against Flex's triangle 0.35-0.365.
# Measured (H100, SECS=360, 76 s; bench/results/gpu_h100_s44_multicast_ab.txt): mcf / head triangle
# 1.079, streaming 1.101, causal 0.997; mcg 1.069 / 1.099 / 0.992; mcf0 1.005 / 0.984 / 1.030.
# Winner: head (no checks, no compare).
set -uo pipefail
. bench/experiments/device_common.sh
device_setup ${PACK:-.gpu/s44.tar.gz} s44
secs=${SECS:-560}
for d in $B/*/; do [ -f $d/commit.txt ] && echo "$(basename $d): $(cat $d/commit.txt)"; done
labels=(head=$B/head/attention_bench mcf=$B/mcf/attention_bench mcf0=$B/mcf/attention_bench mcg=$B/mcg/attention_bench)
timeout 240 bash bench/ab_gpu.sh --out $R/ab --rounds 2 --timeout 60 --seq 16384 --masks triangle,causal \
  --no-serialized --env "mcf0:TRIMIX_CUDA_MULTICAST=0" "${labels[@]}" > $R/ab.log 2>&1
echo "ab rc=$? at $((SECONDS - t0)) s"; tail -4 $R/ab.log
timeout 60 bash bench/ab_gpu.sh --out $R/ab_streaming --rounds 1 --timeout 30 --seq 16384 --masks streaming \
  --no-serialized --env "mcf0:TRIMIX_CUDA_MULTICAST=0" "${labels[@]}" > $R/ab_streaming.log 2>&1
echo "ab streaming rc=$? at $((SECONDS - t0)) s"; tail -2 $R/ab_streaming.log
tar czf $OUT/s44_ab.tar.gz -C $R . # back even if a later step runs out of time
winner=$(python3 - $R/ab/summary.txt $R/ab_streaming/summary.txt <<'PY'
import sys
# Rows: "mask seq | head ms | mcf ms | mcf0 ms | mcg ms | mcf/head | mcf0/head | mcg/head".
ratio = {}
for path in sys.argv[1:]:
    try:
        for line in open(path):
            cells = [c.strip() for c in line.split("|")]
            if len(cells) == 8 and not line.startswith("mask"):
                mask = cells[0].split()[0]
                ratio[mask] = {"mcf": float(cells[5]), "mcg": float(cells[7])}
    except (OSError, ValueError):
        pass
ok = [w for w in ("mcf", "mcg")
      if {"triangle", "causal", "streaming"} <= ratio.keys() and ratio["triangle"][w] < 1.0
      and ratio["causal"][w] <= 1.005 and ratio["streaming"][w] <= 1.005]
print(min(ok, key=lambda w: ratio["triangle"][w]) if ok else "head")
PY
)
echo "winner: $winner"
[ "$winner" = head ] && { rm -rf $R; echo "all at $((SECONDS - t0)) s"; exit 0; }
rm -rf $R/*
echo "$winner" > $R/winner.txt
cuda_checks $B/tests_$winner "tile-engine band items with the sink keys in another tile*" 60
timeout 45 compute-sanitizer --tool memcheck --error-exitcode 3 $B/tests_$winner/trimix_tests_cuda \
  "tile-engine: consumers that run many items in a row*" > $R/memcheck_many.log 2>&1
echo "memcheck many rc=$? at $((SECONDS - t0)) s"; tail -1 $R/memcheck_many.log
tar czf $OUT/s44_checks.tar.gz -C $R . && rm -rf $R/*
left=$((secs - (SECONDS - t0)))
if [ $left -lt 150 ]; then echo "compare skipped: $left s left"; exit 0; fi
stamp() { python3 -c 'import sys, time
for line in sys.stdin: print(f"{time.monotonic():.3f} {line}", end="", flush=True)'; }
TRIMIX_COMMIT=$winner python3 bench/nvml_power.py --every-ms 20 --csv $R/power.csv -- \
  timeout $((left - 10)) python3 -u bench/compare_gpu.py --bench $B/$winner/attention_bench --out $R/cmp \
  --seq ${SEQS:-16384,32768,65536} 2>&1 | stamp > $R/cmp.log
echo "compare rc=${PIPESTATUS[0]} at $((SECONDS - t0)) s"; grep -v "^[0-9.]* *$" $R/cmp.log | grep "N=\|nvml\|W" | tail -24
tar czf $OUT/s44_compare.tar.gz -C $R . && rm -rf $R
echo "all at $((SECONDS - t0)) s"
