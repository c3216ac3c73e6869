#!/usr/bin/env bash
# Builds and runs the whole trimix test suite from a fresh clone (Debian bookworm):
#   scripts/test.sh              provision (scripts/install-deps.sh), then the `cpu-release` preset:
#                                Release, -Werror, every CTest test (unit tests on each Kokkos host
#                                backend, examples, compile-fail pair, package consumers)
#   scripts/test.sh --sanitize   and then the `cpu-debug-sanitize` preset: Debug (-O1) + ASan + UBSan,
#                                unit tests and examples (also: TRIMIX_SANITIZE=1)
# Build trees: build/cpu-release, build/cpu-debug-sanitize. Kokkos: whatever install-deps.sh reports
# (its cache, or Kokkos_ROOT when set).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

sanitize=${TRIMIX_SANITIZE:-0}
for arg in "$@"; do
  case $arg in
    --sanitize) sanitize=1 ;;
    -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "scripts/test.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

# Kokkos' OpenMP backend warns on stdout without these (DESIGN.md section 6); CTest sets them for
# each test too, this covers everything else.
export OMP_PROC_BIND=${OMP_PROC_BIND:-spread} OMP_PLACES=${OMP_PLACES:-threads}

log() { printf '[trimix test] %s\n' "$*"; }
timed() {  # timed <label> <command...>
  local label=$1 start=$SECONDS; shift
  log "$label ..."
  "$@"
  log "$label: $((SECONDS - start)) s"
}

deps() { kokkos_prefix=$(scripts/install-deps.sh | sed -n 's/^KOKKOS_PREFIX=//p' | tail -n1); }
timed "dependencies" deps
[ -n "$kokkos_prefix" ] || { log "install-deps.sh reported no KOKKOS_PREFIX"; exit 1; }
log "Kokkos: $kokkos_prefix"

preset() {  # configure, build and test one CMake preset
  local name=$1
  timed "$name: configure" cmake --preset "$name" -DCMAKE_PREFIX_PATH="$kokkos_prefix"
  timed "$name: build" cmake --build --preset "$name"
  timed "$name: test" ctest --preset "$name"
}

total=$SECONDS
preset cpu-release
if [ "$sanitize" = 1 ]; then preset cpu-debug-sanitize; fi
log "all passed in $((SECONDS - total)) s (after dependencies)"
