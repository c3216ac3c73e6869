#!/usr/bin/env bash
# Build, test, sanitize and benchmark trimix on an NVIDIA GPU machine, in one go.
#
#   scripts/gpu/check.sh --kokkos PREFIX [--build DIR] [--out DIR] [--steps build,test,sanitize,bench]
#                        [--seq 16384,32768,65536,131072] [--kokkos-host PREFIX] [--cpu-seq 2048,4096,8192]
#   (steps: build,test,sanitize,bench,profile,cpu)
#
# PREFIX is a Kokkos install with the CUDA backend (its bin/nvcc_wrapper is the compiler; getting
# Kokkos onto the machine is up to you, DESIGN.md section 6). Steps:
#   build     configure + build tests, examples and bench with Kokkos::Cuda (sm_90 from Kokkos)
#   test      the unit tests on Kokkos::Cuda, then the demo on a small shape
#   sanitize  compute-sanitizer memcheck and racecheck on the tests tagged [sanitize]
#   bench     bench/compare_gpu.py: trimix and the PyTorch peers on the same inputs
#   profile   bench/profile_gpu.sh: Nsight Compute sections of the causal and triangle kernels at N=16K
#   cpu       the host CPU: an OpenMP build (--kokkos-host, a Kokkos with OpenMP) of attention_bench
#             next to PyTorch's CPU SDPA (bench/compare_cpu.py), all cores
# Logs and CSVs go to --out (default: <build>/out).
# Hopper: the build adds sm_90a code (the engine's wgmma path) beside Kokkos' sm_90 through nvcc's
# NVCC_APPEND_FLAGS (nvcc_wrapper takes one -arch only); set TRIMIX_SM90A=0 to build without it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kokkos="" build="$root/build/gpu" out="" steps="build,test,sanitize,bench" seq="16384,32768,65536,131072"
kokkos_host="" cpu_seq="2048,4096,8192"
while [ $# -gt 0 ]; do
  case $1 in
    --kokkos) kokkos=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --seq) seq=$2; shift 2 ;;
    --kokkos-host) kokkos_host=$2; shift 2 ;;
    --cpu-seq) cpu_seq=$2; shift 2 ;;
    -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
out=${out:-$build/out}
mkdir -p "$out"
has() { case ",$steps," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
log() { printf '[trimix gpu] %s\n' "$*"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/device.txt"
generator=Ninja; command -v ninja >/dev/null || generator="Unix Makefiles"
commit=${TRIMIX_COMMIT:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)}
export TRIMIX_COMMIT=$commit  # for trees without .git (bench/CMakeLists.txt reads it)

if has build; then
  if [ "${TRIMIX_SM90A:-1}" = 1 ]; then
    # --threads 2: nvcc compiles the two targets of a TU at once (a bench-only build: 172 s).
    export NVCC_APPEND_FLAGS="${NVCC_APPEND_FLAGS:+$NVCC_APPEND_FLAGS }-gencode=arch=compute_90a,code=sm_90a --threads 2"
  fi
  [ -n "$kokkos" ] || { echo "check.sh: --kokkos PREFIX is required to build" >&2; exit 2; }
  start=$SECONDS
  cmake -S "$root" -B "$build" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_COMPILER="$kokkos/bin/nvcc_wrapper" -DKokkos_ROOT="$kokkos" \
    -DTRIMIX_WARNINGS_AS_ERRORS=OFF -DTRIMIX_BENCH_NATIVE=OFF -DTRIMIX_TEST_BACKENDS=cuda \
    >"$out/configure.log" 2>&1
  cmake --build "$build" --parallel --target trimix_tests_cuda attention_bench trianglemix_demo \
    >"$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
  log "build: $((SECONDS - start)) s"
  # ptxas serializes wgmmas it cannot pipeline, with no error but this note (one such build: causal
  # +24%, bench/NOTES.md).
  if grep -q "wgmma.mma_async instructions are serialized" "$out/build.log"; then
    log "WARNING: ptxas serialized the wgmmas of these kernels:"
    grep -o "serialized due to [^']*'[A-Za-z0-9_]*" "$out/build.log" | sort -u | sed 's/^/  /'
  fi
fi

tests=$build/tests/trimix_tests_cuda
if has test; then
  start=$SECONDS
  "$tests" --reporter compact >"$out/tests.log" 2>&1 || { tail -60 "$out/tests.log"; log "unit tests FAILED"; exit 1; }
  tail -2 "$out/tests.log"
  "$build/trianglemix_demo" --seq 4096 --dtype bf16 --repeat 2 >"$out/demo.log" 2>&1 \
    || { tail -30 "$out/demo.log"; log "demo FAILED"; exit 1; }
  tail -12 "$out/demo.log"
  log "tests: $((SECONDS - start)) s"
fi

if has sanitize; then
  start=$SECONDS
  # Both CUDA kernels: the warp-specialised one (default where it runs) and attention_kernel
  # (TRIMIX_CUDA_WS=0).
  for tool in memcheck racecheck; do
    for ws in 1 0; do
      logfile="$out/sanitize-$tool-ws$ws.log"
      if TRIMIX_CUDA_WS=$ws compute-sanitizer --tool "$tool" --error-exitcode 3 "$tests" "[sanitize]" >"$logfile" 2>&1; then
        grep -E "ERROR SUMMARY|RACECHECK SUMMARY|All tests passed" "$logfile" | tail -2
      else
        tail -40 "$logfile"; log "compute-sanitizer $tool (TRIMIX_CUDA_WS=$ws) FAILED"; exit 1
      fi
    done
  done
  log "sanitize: $((SECONDS - start)) s"
fi

if has bench; then
  start=$SECONDS
  TRIMIX_COMMIT=$commit python3 "$root/bench/compare_gpu.py" --bench "$build/attention_bench" \
    --out "$out" --seq "$seq" 2>&1 | tee "$out/compare.log"
  log "bench: $((SECONDS - start)) s"
fi

if has profile; then
  start=$SECONDS
  "$root/bench/profile_gpu.sh" "$build/attention_bench" "$out" --seq 16384 --masks causal,triangle
  log "profile: $((SECONDS - start)) s"
fi

if has cpu; then
  [ -n "$kokkos_host" ] || { echo "check.sh: --kokkos-host PREFIX is required for the cpu step" >&2; exit 2; }
  start=$SECONDS
  cpu_build=$build-openmp
  cmake -S "$root" -B "$cpu_build" -G "$generator" -DCMAKE_BUILD_TYPE=Release -DKokkos_ROOT="$kokkos_host" -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
    -DTRIMIX_BUILD_TESTS=OFF -DTRIMIX_BUILD_EXAMPLES=OFF -DTRIMIX_WARNINGS_AS_ERRORS=OFF \
    >"$out/cpu-configure.log" 2>&1
  cmake --build "$cpu_build" --parallel --target attention_bench >"$out/cpu-build.log" 2>&1 \
    || { tail -50 "$out/cpu-build.log"; exit 1; }
  TRIMIX_COMMIT=$commit python3 "$root/bench/compare_cpu.py" --bench "$cpu_build/attention_bench" \
    --out "$out" --seq "$cpu_seq" --threads "$(nproc)" 2>&1 | tee "$out/cpu-compare.log"
  log "cpu: $((SECONDS - start)) s"
fi
