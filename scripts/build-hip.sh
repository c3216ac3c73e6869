#!/usr/bin/env bash
# Compiles trimix for AMD GPUs (Kokkos::HIP) with Debian bookworm's hipcc 5.2.3: the library, the
# unit tests (one executable, for Kokkos::HIP), the examples and the benchmarks. Compile and link
# only: nothing is run (there is no AMD GPU here; running needs the ROCm kernel driver and the GPU).
#   1. scripts/install-deps.sh: build tools, Catch2 v3 and Debian's trilinos source package,
#   2. hipcc, libamdhip64-dev and rocm-device-libs from bookworm, as root, when missing,
#   3. Kokkos 3.4.01 (HIP + Serial) from that source package into
#      $TRIMIX_CACHE/kokkos-3.4.01-hip-<arch>, reused when present,
#   4. trimix with the `hip-gfx908` CMake preset into build/hip-<arch>: the tests and examples
#      (benchmarks off), compiled and linked.
# Environment:
#   TRIMIX_CACHE            cache folder (default: ~/.cache/trimix)
#   TRIMIX_HIP_ARCH         gfx908 (default, MI100), gfx906 or gfx900: the AMD targets of Kokkos 3.4.01
#   TRIMIX_HIP_KOKKOS_ROOT  a HIP-enabled Kokkos install to use instead of building one
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

cache=${TRIMIX_CACHE:-${HOME:-/root}/.cache/trimix}
arch=${TRIMIX_HIP_ARCH:-gfx908}
kokkos_version=3.4.01
log() { printf '[trimix hip] %s\n' "$*"; }
timed() {  # timed <label> <command...>
  local label=$1 start=$SECONDS; shift
  log "$label ..."
  "$@"
  log "$label: $((SECONDS - start)) s"
}
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

case $arch in
  gfx900 | gfx906 | gfx908) kokkos_arch=VEGA${arch#gfx} ;;
  *) log "TRIMIX_HIP_ARCH=$arch: Kokkos $kokkos_version knows gfx900, gfx906 and gfx908 (README, section 'Running on AMD GPUs', for newer GPUs)"
     exit 2 ;;
esac
# hipcc asks rocm_agent_enumerator for the GPUs of this machine whenever no target is on its
# command line (links, --version); without a GPU that prints a Python traceback. Name the target.
export HCC_AMDGPU_TARGET=$arch

# ---- 1 + 2: tools, Catch2, the trilinos source package, the HIP compiler -------------------------

deps() { scripts/install-deps.sh >/dev/null; }

hip_packages=(hipcc libamdhip64-dev rocm-device-libs)
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
install_hip() {
  local missing=()
  for p in "${hip_packages[@]}"; do have_pkg "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (Debian bookworm)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  log "$(hipcc --version | grep -E '^(HIP version|.*clang version)' | paste -sd ';' -)"
}

# ---- 3: Kokkos 3.4.01 with HIP -------------------------------------------------------------------

kokkos_prefix=${TRIMIX_HIP_KOKKOS_ROOT:-$cache/kokkos-$kokkos_version-hip-$arch}
build_kokkos() {
  if [ -f "$kokkos_prefix/lib/cmake/Kokkos/KokkosConfig.cmake" ] || \
     [ -f "$kokkos_prefix/lib64/cmake/Kokkos/KokkosConfig.cmake" ]; then
    log "Kokkos (HIP) at $kokkos_prefix"; return
  fi
  [ -z "${TRIMIX_HIP_KOKKOS_ROOT:-}" ] || { log "TRIMIX_HIP_KOKKOS_ROOT=$kokkos_prefix has no KokkosConfig.cmake"; exit 1; }
  local work=$cache/src tarball
  tarball=$(compgen -G "$work/trilinos_*.orig.tar.*" | head -n1) || true
  [ -n "$tarball" ] || { log "no trilinos source package in $work (install-deps.sh downloads it unless Kokkos_ROOT is set)"; exit 1; }
  local src=$work/kokkos-hip build=$work/kokkos-hip-build
  rm -rf "$src" "$build"; mkdir -p "$src"
  tar -xf "$tarball" -C "$src" --strip-components=3 --wildcards '*/packages/kokkos/*'
  grep -q 'Kokkos_VERSION_MAJOR 3' "$src/CMakeLists.txt" || { log "unexpected Kokkos version in $tarball"; exit 1; }
  # Serial is the host backend; ROCm's Thrust and the TPLs stay off (Kokkos 3.4 uses none for HIP).
  cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=hipcc \
    -DCMAKE_CXX_STANDARD=17 -DCMAKE_INSTALL_PREFIX="$kokkos_prefix" \
    -DKokkos_ENABLE_HIP=ON -DKokkos_ENABLE_SERIAL=ON "-DKokkos_ARCH_$kokkos_arch=ON" \
    -DKokkos_ENABLE_TESTS=OFF -DKokkos_ENABLE_EXAMPLES=OFF >/dev/null
  cmake --build "$build" --parallel
  cmake --install "$build" >/dev/null
  rm -rf "$src" "$build"
}

# ---- 4: trimix -----------------------------------------------------------------------------------

tree=build/hip-$arch
configure() {
  cmake --preset hip-gfx908 -B "$tree" -DCMAKE_PREFIX_PATH="$kokkos_prefix" >/dev/null
}
build() { cmake --build "$tree" --parallel "$(nproc)"; }

total=$SECONDS
timed "dependencies" deps
timed "HIP compiler" install_hip
timed "Kokkos $kokkos_version (HIP, $arch)" build_kokkos
timed "trimix: configure ($tree)" configure
timed "trimix: build" build
log "compiled for Kokkos::HIP ($arch) in $((SECONDS - total)) s; nothing was run (no AMD GPU here)"
