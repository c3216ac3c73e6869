#!/usr/bin/env bash
# build_variant.sh SRC BUILD "TARGETS" [CMAKE_ARG...]: a Release build of trimix tree SRC (a worktree
# of a variant, say) into BUILD with the Kokkos CUDA install $KOKKOS_CUDA (default .gpu/kokkos-cuda
# of this checkout, README's GPU section), sm_90a beside Kokkos' sm_90, for packing binaries that the
# device machine runs (bench/experiments/run_*.sh). Tests and examples are off unless CMAKE_ARGs turn
# them on (-DTRIMIX_BUILD_TESTS=ON -DTRIMIX_BUILD_EXAMPLES=ON; Catch2 from scripts/install-deps.sh).
# On 2 cores: attention_bench ~3 min, trimix_tests_cuda + trianglemix_demo ~15 min; one at a time.
#   scripts/gpu/build_variant.sh ../wt attention_bench_build attention_bench -DCMAKE_CXX_FLAGS=-DTRIMIX_CUDA_PAIR_TIMELINE
set -eo pipefail
[ $# -ge 3 ] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
src=$1 build=$2 targets=$3
shift 3
kokkos=${KOKKOS_CUDA:-$(cd "$(dirname "$0")/../.." && pwd)/.gpu/kokkos-cuda}
export NVCC_APPEND_FLAGS="-gencode=arch=compute_90a,code=sm_90a --threads 2"
TRIMIX_COMMIT=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)
export TRIMIX_COMMIT
mkdir -p "$build"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$kokkos/bin/nvcc_wrapper" \
  -DKokkos_ROOT="$kokkos" -DTRIMIX_WARNINGS_AS_ERRORS=OFF -DTRIMIX_BENCH_NATIVE=OFF -DTRIMIX_TEST_BACKENDS=cuda \
  -DTRIMIX_BUILD_TESTS=OFF -DTRIMIX_BUILD_EXAMPLES=OFF "$@" > "$build/configure.log" 2>&1 ||
  { tail -20 "$build/configure.log"; exit 1; }
start=$SECONDS
# shellcheck disable=SC2086  # TARGETS is a list
cmake --build "$build" --parallel 2 --target $targets > "$build/build.log" 2>&1 || { tail -30 "$build/build.log"; exit 1; }
echo "built $targets in $((SECONDS - start)) s"
