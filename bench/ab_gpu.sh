#!/usr/bin/env bash
# Same-call A/B of attention_bench builds on one GPU: rounds alternate between the builds (the
# H200's clocks drift within a call, so every build sees every part of it), then one table of the
# minima and each build's ratio to the first; with --agree, each build's o on the same random
# inputs against the first build's (bit-identical or relative L2), before any timing.
#
#   bench/ab_gpu.sh --out DIR [--rounds 2] [--seq 16384,65536] [--masks causal,triangle,streaming]
#                   [--dtype bf16] [--timeout 150] [--agree 16384 [--io IODIR]] [--env LABEL:VAR=VALUE]...
#                   [--no-serialized]
#                   LABEL=BENCH [LABEL=BENCH ...]
#
# BENCH: an attention_bench binary; LABEL names it in the CSVs (TRIMIX_DEVICE=<gpu>-LABEL) and the
# table. The same binary may appear under two labels with --env setting a run-time switch for one
# (e.g. --env nopp:TRIMIX_CUDA_PING_PONG=0 main=b/attention_bench nopp=b/attention_bench).
# Timing is sustained, as compare_gpu.py times the peers (--warmup-ms 100 --rep-ms 500). Writes
# DIR/ab_<label>_<round>.{csv,log}, DIR/agree.txt, DIR/summary.txt and, where cuobjdump is found,
# DIR/serialized.txt (scripts/gpu/wgmma_serialized.py on each distinct BENCH; in run_s40b.sh this
# check of four binaries and --agree took ~135 s before the first round; --no-serialized leaves it
# out where it ran on the build machine); the inputs and outputs of --agree (tens of MB each) go to
# IODIR/{in,<label>/o_<mask>.bin}, a temporary directory unless --io names one. Exit status 1 if
# a run failed or outputs held NaN. Needs nvidia-smi, and python3 with numpy for --agree (the GPU
# machine's PyTorch environment has both).
set -euo pipefail
out="" rounds=2 seq=16384,65536 masks=causal,triangle,streaming dtype=bf16 limit=150 agree="" io=""
declare -A env_of=()
labels=() bins=() check_serialized=1
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seq) seq=$2; shift 2 ;;
    --masks) masks=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    --timeout) limit=$2; shift 2 ;;
    --agree) agree=$2; shift 2 ;;
    --io) io=$2; shift 2 ;;
    --no-serialized) check_serialized=0; shift ;;
    --env) env_of[${2%%:*}]="${env_of[${2%%:*}]:-} ${2#*:}"; shift 2 ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *=*) labels+=("${1%%=*}"); bins+=("${1#*=}"); shift ;;
    *) echo "ab_gpu.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] && [ ${#labels[@]} -ge 1 ] || { echo "ab_gpu.sh: --out DIR and LABEL=BENCH are required" >&2; exit 2; }
mkdir -p "$out"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | awk '{print $NF}')
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader > "$out/device.txt"
status=0
# Builds whose wgmmas ptxas serialized time the serialization, not the change: say so up front.
if [ "$check_serialized" = 0 ]; then
  echo "skipped (--no-serialized)" > "$out/serialized.txt"
elif command -v cuobjdump > /dev/null || [ -n "${CUOBJDUMP:-}" ]; then
  serialized=0
  # Each binary once (a label with --env may repeat one).
  mapfile -t distinct < <(printf '%s\n' "${bins[@]}" | awk '!seen[$0]++')
  "$(dirname "$0")/../scripts/gpu/wgmma_serialized.py" "${distinct[@]}" > "$out/serialized.txt" || serialized=$?
  if [ "$serialized" = 3 ]; then
    grep SERIALIZED "$out/serialized.txt" >&2
    echo "ab_gpu.sh: WARNING: ptxas serialized the kernels above; their times measure that, not the change" >&2
  fi
fi
run() {  # label bench args...: one attention_bench run under the label's switches
  local label=$1 bench=$2; shift 2
  env TRIMIX_DEVICE="$gpu-$label" ${env_of[$label]:-} timeout "$limit" "$bench" "$@"
}

if [ -n "$agree" ]; then
  if [ -z "$io" ]; then
    io=$(mktemp -d)
    trap 'rm -rf "$io"' EXIT
  fi
  # Shared inputs: standard normal Q, K, V ([B, H, S, D], the bench's default heads), as raw files.
  python3 - "$io/in" "$agree" "$dtype" <<'PY'
import os, sys
import numpy as np
d, n, dtype = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(d, exist_ok=True)
rng = np.random.default_rng(7)
def raw(a):
    if dtype == "fp16":
        return a.astype(np.float16).view(np.uint16)
    a = a.astype(np.float32).view(np.uint32)  # bf16: round to nearest even
    return ((a + 0x7FFF + ((a >> 16) & 1)) >> 16).astype(np.uint16)
for name, heads in (("q", 32), ("k", 8), ("v", 8)):
    raw(rng.standard_normal((1, heads, n, 128))).tofile(f"{d}/{name}.bin")
PY
  for i in "${!labels[@]}"; do
    l=${labels[$i]}; mkdir -p "$io/$l"; cp "$io"/in/*.bin "$io/$l/"
    run "$l" "${bins[$i]}" --seq "$agree" --masks "$masks" --dtypes "$dtype" --warmup-ms 5 --rep-ms 5 \
      --io-dir "$io/$l" > "$out/agree_$l.log" 2>&1 || { echo "agree run $l failed: $?"; status=1; }
  done
  python3 - "$io" "$masks" "$dtype" "${labels[@]}" <<'PY' | tee "$out/agree.txt" || status=1
import sys
import numpy as np
io, masks, dtype, labels = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4:]
def load(path):
    raw = np.fromfile(path, dtype=np.uint16)
    if dtype == "fp16":
        return raw.view(np.float16).astype(np.float32)
    return (raw.astype(np.uint32) << 16).view(np.float32)
bad = False
for mask in masks:
    ref = load(f"{io}/{labels[0]}/o_{mask}.bin")
    for label in labels[1:]:
        x = load(f"{io}/{label}/o_{mask}.bin")
        nan = int(np.isnan(x).sum()) + int(np.isnan(ref).sum())
        bad |= nan > 0
        rel = np.linalg.norm(x - ref) / np.linalg.norm(ref)
        print(f"{mask}: {label} vs {labels[0]}: identical {bool(np.array_equal(x, ref))}, "
              f"max |d| {np.nanmax(np.abs(x - ref)):.3e}, rel-L2 {rel:.3e}, NaN {nan}")
sys.exit(1 if bad else 0)
PY
fi

for r in $(seq 1 "$rounds"); do
  for i in "${!labels[@]}"; do
    l=${labels[$i]}
    run "$l" "${bins[$i]}" --seq "$seq" --masks "$masks" --dtypes "$dtype" --warmup-ms 100 --rep-ms 500 \
      --csv "$out/ab_${l}_$r.csv" > "$out/ab_${l}_$r.log" 2>&1 || { echo "round $r $l failed: $?"; status=1; }
    echo "round $r $l done at ${SECONDS} s"
  done
done
python3 - "$out" "$rounds" "${labels[@]}" <<'PY' | tee "$out/summary.txt"
import collections, csv, sys
out, rounds, labels = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
times = collections.defaultdict(list)
for label in labels:
    for r in range(1, rounds + 1):
        try:
            for row in csv.DictReader(open(f"{out}/ab_{label}_{r}.csv")):
                times[(row["mask"], int(row["seq"]), label)].append(float(row["time_ms"]))
        except OSError as e:
            print(f"# {label} round {r}: {e}")
cases = sorted({k[:2] for k in times})
print("mask seq | " + " | ".join(f"{l} ms (min; rounds)" for l in labels) + " | "
      + " | ".join(f"{l}/{labels[0]}" for l in labels[1:]))
for case in cases:
    cells, minima = [], []
    for label in labels:
        t = times.get(case + (label,), [])
        minima.append(min(t) if t else float("nan"))
        cells.append(f"{minima[-1]:.4g}; " + "/".join(f"{x:.4g}" for x in t))
    ratios = [f"{m / minima[0]:.3f}" for m in minima[1:]]
    print(f"{case[0]} {case[1]} | " + " | ".join(cells) + (" | " + " | ".join(ratios) if ratios else ""))
PY
exit $status
