#!/usr/bin/env bash
# Thirty-second session, call 1: (a) lean stage reuse vs head (s32a: agree, cycles and clock);
# (b) what the copies' clock cost is: bounds none / nokv / filledkv (each ring stage copied once,
# real operands, no bytes after) / littlekv, and head on zero K / V (--inputs zerokv); NVML's energy
# counter and clock-event reasons around every run (bench/nvml_power.py).
set -uo pipefail
t0=$SECONDS
R=/tmp/r; B=/tmp/s31; mkdir -p $B $R/tl
tar xzf .gpu/s32a.tar.gz -C $B
tar xzf .gpu/s32b.tar.gz -C $B
export LD_LIBRARY_PATH=$B/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $R/device.txt
fin() { tar czf $OUT/r.tgz -C /tmp r; }
trap fin EXIT
timeout 60 bench/ab_gpu.sh --out $R/agree --agree 16384 --masks triangle,causal --rounds 0 head=$B/head/attention_bench lean=$B/lean/attention_bench lean56=$B/lean56/attention_bench > $R/agree.log 2>&1
echo "agree rc=$?"; cat $R/agree/agree.txt
run() {  # label binary [args...] -- env...
  local label=$1 bin=$2; shift 2
  local args=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  mkdir -p $R/tl/$label
  for m in triangle causal; do
    echo "$label $m start $(date +%T.%N)" >> $R/marks.txt
    python3 bench/nvml_power.py --csv $R/tl/nvml_${label}_$m.csv -- env "$@" TRIMIX_TIMELINE_DIR=$R/tl/$label \
      TRIMIX_DEVICE=$label timeout 40 $bin --seq 16384 --masks $m --dtypes bf16 \
      --warmup-ms 300 --rep-ms 700 "${args[@]}" >> $R/tl/bench_$label.log 2>&1
  done
  python3 bench/pair_timeline_summary.py $R/tl/$label/*.bin > $R/tl/summary_$label.txt 2>&1
  rm -f $R/tl/$label/*.bin
  echo "== $label at $((SECONDS - t0)) s"; grep -h "bf16 \|nvml_power" $R/tl/bench_$label.log | grep -v "\.\.\." ; grep -E "^==|SM clock|span cycles" $R/tl/summary_$label.txt | head -8
}
for round in 1 2; do
run head_$round $B/head/attention_bench
run lean_$round $B/lean/attention_bench
run lean56_$round $B/lean56/attention_bench
done
F=$B/fill/attention_bench
for round in 1 2; do
run none_$round $F -- TRIMIX_CUDA_PAIR_BOUND=none
run nokv_$round $F -- TRIMIX_CUDA_PAIR_BOUND=nokv
run filledkv_$round $F -- TRIMIX_CUDA_PAIR_BOUND=filledkv
run littlekv_$round $F -- TRIMIX_CUDA_PAIR_BOUND=littlekv
run zerokv_$round $F --inputs zerokv -- TRIMIX_CUDA_PAIR_BOUND=none
run samekv_$round $F -- TRIMIX_CUDA_PAIR_BOUND=samekv
run nomask_$round $F -- TRIMIX_CUDA_PAIR_BOUND=nomask
done
for b in head_1 lean_1 lean56_1; do echo "== $b"; awk '/bf16_triangle/{t=1} t&&/-- short5/{p=1} p{print} p&&/first_issue_before_item/{exit}' $R/tl/summary_$b.txt; done
