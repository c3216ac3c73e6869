#!/usr/bin/env bash
# Provision everything trimix needs on a fresh Debian bookworm machine, from Debian's registry only:
#   - compilers and build tools (g++, cmake, ninja), python3 (the bench.trimix_ctypes test),
#   - Catch2 v3 from bookworm-backports,
#   - Kokkos 3.4.01 (OpenMP + Serial) built from Debian's `trilinos` source package into a cache.
# Idempotent: what is already present is reused. A Kokkos the user points to (Kokkos_ROOT) wins.
#
# Prints the Kokkos prefix on its last line as `KOKKOS_PREFIX=<path>` for the calling script.
# Environment:
#   TRIMIX_CACHE  cache folder (default: ~/.cache/trimix)
#   Kokkos_ROOT   an existing Kokkos install to use instead of building one
set -euo pipefail

cache=${TRIMIX_CACHE:-${HOME:-/root}/.cache/trimix}
kokkos_version=3.4.01
kokkos_prefix=$cache/kokkos-$kokkos_version-openmp
log() { printf '[trimix deps] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

# The Debian mirror this machine already uses; never a host name of our own.
debian_mirror() {
  local uri=""
  if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
    uri=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' \
      /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; exit}}' \
      /etc/apt/sources.list | head -n1)
  fi
  [ -n "$uri" ] || { log "no Debian mirror found in the apt configuration"; return 1; }
  printf '%s\n' "$uri"
}

apt_updated=0
apt_update() { [ $apt_updated = 1 ] || { as_root apt-get update -qq; apt_updated=1; }; }

ensure_sources() {
  local list=/etc/apt/sources.list.d/trimix-bookworm.sources
  [ -f "$list" ] && return 0
  local mirror; mirror=$(debian_mirror)
  log "adding deb-src and bookworm-backports from $mirror"
  as_root tee "$list" >/dev/null <<SRC
Types: deb-src
URIs: $mirror
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt_updated=0
}

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

install_tools() {
  local missing=()
  for p in g++ cmake ninja-build make dpkg-dev xz-utils python3; do have_pkg "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt_update
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
  # Catch2 v3 (bookworm itself has only v2).
  if ! { have_pkg catch2 && dpkg-query -W -f='${Version}' catch2 | grep -q '^3'; }; then
    ensure_sources; apt_update
    log "installing Catch2 v3 from bookworm-backports"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports catch2 >&2
  fi
}

build_kokkos() {
  if [ -n "${Kokkos_ROOT:-}" ]; then log "using Kokkos_ROOT=$Kokkos_ROOT"; kokkos_prefix=$Kokkos_ROOT; return; fi
  if [ -f "$kokkos_prefix/lib/cmake/Kokkos/KokkosConfig.cmake" ] || \
     [ -f "$kokkos_prefix/lib64/cmake/Kokkos/KokkosConfig.cmake" ]; then
    log "Kokkos $kokkos_version cached at $kokkos_prefix"; return
  fi
  local work=$cache/src; mkdir -p "$work"
  if ! compgen -G "$work/trilinos_*.orig.tar.*" >/dev/null; then
    ensure_sources; apt_update
    log "downloading Debian's trilinos source package (Kokkos lives in packages/kokkos)"
    (cd "$work" && apt-get source --download-only -qq trilinos >&2)
  fi
  local tarball; tarball=$(compgen -G "$work/trilinos_*.orig.tar.*" | head -n1)
  rm -rf "$work/kokkos"; mkdir -p "$work/kokkos"
  log "extracting packages/kokkos from $(basename "$tarball")"
  tar -xf "$tarball" -C "$work/kokkos" --strip-components=3 --wildcards '*/packages/kokkos/*'
  grep -q "Kokkos_VERSION_MAJOR 3" "$work/kokkos/CMakeLists.txt" || true
  log "building Kokkos (OpenMP + Serial) into $kokkos_prefix"
  cmake -S "$work/kokkos" -B "$work/kokkos-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_COMPILER=g++ -DCMAKE_CXX_STANDARD=17 -DCMAKE_INSTALL_PREFIX="$kokkos_prefix" \
    -DKokkos_ENABLE_OPENMP=ON -DKokkos_ENABLE_SERIAL=ON -DKokkos_ENABLE_TESTS=OFF \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON >&2
  cmake --build "$work/kokkos-build" --parallel >&2
  cmake --install "$work/kokkos-build" >&2
  rm -rf "$work/kokkos-build"
}

install_tools
build_kokkos
echo "KOKKOS_PREFIX=$kokkos_prefix"
