#!/usr/bin/env bash
# CPU benchmark of trimix from a fresh clone: builds the benchmarks (Release, -march=native), measures
# the machine's fp32 FMA peak, sweeps attention_bench once per thread count and plots the result:
#
#   bench/run_cpu.sh [attention_bench options...]      e.g. bench/run_cpu.sh --seq 4096,8192
#
# Writes bench/results/cpu-<host>-<commit>.csv (one row per case), -peak.csv (peak_probe) and .png.
# Environment:
#   THREADS     thread counts to sweep, e.g. "1 2 4" (default: every core, one run)
#   BUILD_DIR   build tree (default: build/bench-release)
#   SKIP_BUILD  1: use the executables already in BUILD_DIR
# Needs python3-matplotlib for the plot (the CSV is written without it).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-build/bench-release}
log() { printf '[trimix bench] %s\n' "$*" >&2; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  kokkos_prefix=$(scripts/install-deps.sh | sed -n 's/^KOKKOS_PREFIX=//p' | tail -n1)
  [ -n "$kokkos_prefix" ] || { log "install-deps.sh reported no KOKKOS_PREFIX"; exit 1; }
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$kokkos_prefix" \
    -DTRIMIX_BUILD_BENCH=ON -DTRIMIX_BENCH_NATIVE=ON -DTRIMIX_BUILD_EXAMPLES=OFF \
    -DTRIMIX_BUILD_TESTS=OFF >&2
  cmake --build "$build" --target attention_bench peak_probe >&2
fi

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  log "warning: uncommitted changes; the results are labelled with commit $commit"
fi
host=$(hostname -s 2>/dev/null || hostname)
results=bench/results
mkdir -p "$results"
csv=$results/cpu-$host-$commit.csv
peak_csv=$results/cpu-$host-$commit-peak.csv
png=$results/cpu-$host-$commit.png
rm -f "$csv" "$peak_csv"

cores=$(nproc)
threads=${THREADS:-$cores}
export OMP_PROC_BIND=${OMP_PROC_BIND:-spread} OMP_PLACES=${OMP_PLACES:-threads}
# Benchmarks want a quiet machine: say what else is running.
log "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $cores cores"

log "peak probe ($cores threads)"
"$build/peak_probe" --threads "$cores" --csv "$peak_csv"

for t in $threads; do
  log "attention sweep with $t thread(s)"
  OMP_NUM_THREADS=$t "$build/attention_bench" --threads "$t" --csv "$csv" "$@"
done

# The first python3 with matplotlib: the one on PATH, else Debian's (python3-matplotlib installs into
# /usr/bin/python3, which a pyenv or venv python3 on PATH does not see).
python=""
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import matplotlib' 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [ -n "$python" ]; then
  "$python" bench/plot.py "$csv" --peak "$peak_csv" -o "$png"
else
  log "no python3 with matplotlib: no plot (Debian: apt-get install python3-matplotlib)"
fi
log "results: $csv"
