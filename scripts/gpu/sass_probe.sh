#!/usr/bin/env bash
# sass_probe.sh SRC_ROOT OUT.o [MASK ...]: compiles trimix::attention for bf16 and only the given
# masks (default Triangle Causal) from SRC_ROOT/include to an sm_90a object, in ~35-40 s instead of
# attention_bench's minutes, so that a kernel change's SASS can be compared before any bench
# build:  scripts/gpu/sass_diff.py BASE.o NEW.o --kernel pair_attention
# Needs a Kokkos CUDA install: $KOKKOS_CUDA (default .gpu/kokkos-cuda, see README's GPU section).
set -euo pipefail
src=$1 out=$2; shift 2
masks=("$@")
[ ${#masks[@]} -gt 0 ] || masks=(Triangle Causal)
kokkos=${KOKKOS_CUDA:-$(cd "$(dirname "$0")/../.." && pwd)/.gpu/kokkos-cuda}
tu=$(mktemp --suffix=.cpp)
trap 'rm -f "$tu"' EXIT
{
  echo '#include <trimix/trimix.hpp>'
  echo 'using View4 = Kokkos::View<trimix::bf16****, Kokkos::LayoutRight, Kokkos::CudaSpace>;'
  echo 'template <class Mask> void run(const Mask& m, View4 q, View4 k, View4 v, View4 o) {'
  echo '  Kokkos::Cuda exec;'
  echo '  trimix::attention(exec, trimix::plan_attention(exec, q, k, v, o, m), q, k, v, o);'
  echo '}'
  for m in "${masks[@]}"; do echo "template void run<trimix::$m>(const trimix::$m&, View4, View4, View4, View4);"; done
} > "$tu"
NVCC_APPEND_FLAGS="-gencode=arch=compute_90a,code=sm_90a --threads 2" "$kokkos/bin/nvcc_wrapper" -O3 -DNDEBUG \
  -extended-lambda -arch=sm_90 -std=c++17 ${CXXFLAGS:-} -I"$src/include" -isystem "$kokkos/include" -c "$tu" -o "$out"
