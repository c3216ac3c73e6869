#!/usr/bin/env bash
# Builds and runs the TriangleMix demo (examples/01_trianglemix_demo) from a fresh clone:
#   scripts/demo.sh [demo arguments...]
# Provisions with scripts/install-deps.sh and builds only the `trianglemix_demo` target of the
# `cpu-release` preset (build/cpu-release). Build output goes to stderr, the demo's to stdout.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

kokkos_prefix=$(scripts/install-deps.sh | sed -n 's/^KOKKOS_PREFIX=//p' | tail -n1)
[ -n "$kokkos_prefix" ] || { echo "scripts/demo.sh: install-deps.sh reported no KOKKOS_PREFIX" >&2; exit 1; }

cmake --preset cpu-release -DCMAKE_PREFIX_PATH="$kokkos_prefix" >&2
cmake --build --preset cpu-release --target trianglemix_demo >&2

export OMP_PROC_BIND=${OMP_PROC_BIND:-spread} OMP_PLACES=${OMP_PLACES:-threads}
exec build/cpu-release/trianglemix_demo "$@"
