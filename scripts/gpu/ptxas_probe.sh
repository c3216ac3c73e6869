#!/usr/bin/env bash
# Registers and spills of the warp-specialised and pair CUDA kernels (sm_90a), from ptxas, without a GPU:
# compiles one translation unit that calls trimix::attention with bf16 Kokkos::Cuda views for
# Causal, Triangle and the other position-only masks the tests build, and prints one line per head
# dim and mask, then any kernel whose wgmmas ptxas serialized (exit status 3 then). About two
# minutes on 2 cores.
#
#   scripts/gpu/ptxas_probe.sh --kokkos PREFIX [--source DIR]
#
# PREFIX: a Kokkos install with the CUDA backend (its bin/nvcc_wrapper compiles); DIR: the trimix
# tree whose include/ is probed (default: this one), e.g. a snapshot of a variant.
#
# ptxas's verdict depends on one kernel's code alone (not on the other kernels of the unit). The
# first cause found (bench/NOTES.md, twenty-seventh session): a wgmma whose accumulators are
# half of another wgmma's, the pair kernel's lone first tile's m64n64 S in the first half of S's
# m64n128 registers; freeing registers elsewhere only moved the serialization between masks.
# Thirty-eighth session: C7515 where a wgmma group is pending across a branch's join or a loop's
# head, or where one arm of a branch issues an S and the other nothing before they join; C7511 (too
# few registers for the wgmma pipeline) for a softmax that interleaves its max and its exponentials.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kokkos="" source="$root"
while [ $# -gt 0 ]; do
  case $1 in
    --kokkos) kokkos=$2; shift 2 ;;
    --source) source=$2; shift 2 ;;
    -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "ptxas_probe.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$kokkos" ] || { echo "ptxas_probe.sh: --kokkos PREFIX is required" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/probe.cpp" <<'CPP'
#include <Kokkos_Core.hpp>
#include <trimix/trimix.hpp>
using View = Kokkos::View<trimix::bf16****, Kokkos::LayoutRight, Kokkos::Cuda>;
void probe(const View& q, const View& k, const View& o) {
  trimix::attention(Kokkos::Cuda{}, q, k, k, o, trimix::Causal{});
  trimix::attention(Kokkos::Cuda{}, q, k, k, o, trimix::Triangle{8, 512, 128});
  // The other position-only masks the tests build: each gets its own register allocation, and
  // a change that leaves the two above clean has serialized one of these (bench/NOTES.md).
  trimix::attention(Kokkos::Cuda{}, q, k, k, o, trimix::Streaming{8, 512});
  trimix::attention(Kokkos::Cuda{}, q, k, k, o, trimix::Window{512});
  trimix::attention(Kokkos::Cuda{}, q, k, k, o, trimix::LastRows{128});
  trimix::attention(Kokkos::Cuda{}, q, k, k, o, trimix::Sink{8} | trimix::Window{512});
  trimix::attention(Kokkos::Cuda{}, q, k, k, o, trimix::Full{});
}
CPP
NVCC_APPEND_FLAGS="-gencode=arch=compute_90a,code=sm_90a -Xptxas -v" "$kokkos/bin/nvcc_wrapper" -std=c++17 -O3 \
  -extended-lambda -arch=sm_90 -I"$source/include" -isystem "$kokkos/include" -c "$work/probe.cpp" \
  -o "$work/probe.o" > "$work/ptxas.log" 2>&1 || { tail -30 "$work/ptxas.log"; exit 1; }
python3 - "$work/ptxas.log" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
for i, line in enumerate(lines):
    if "Compiling entry function" in line and ("ws_attention_kernel" in line or "pair_attention_kernel" in line) and "sm_90a" in line:
        if "pair_attention_kernel" in line:
            kernel = "head dim 128, pair kernel"  # head dim 128 only
        else:
            dim = re.search(r"ws_attention_kernelILi(\d+)E", line)
            kernel = f"head dim {dim.group(1) if dim else '?'}"
        mask = re.search(r"(Causal|Triangle|Streaming|LastRows|Union|Window|Full)", line)
        info = [x.split(":", 1)[-1].strip() for x in lines[i + 1:i + 4] if "spill" in x or "registers" in x]
        print(f"{kernel}, {mask.group(1).replace('Union', 'Sink | Window') if mask else '?'}: " + "; ".join(info))
# ptxas serializes the wgmmas of a kernel it cannot pipeline (a branch between a wgmma and its
# wait, too few registers), with no error but a note (one such build: causal +24%, bench/NOTES.md).
serialized = 0
for line in lines:
    if "wgmma.mma_async instructions are serialized" in line:
        serialized += 1
        name = re.search(r"function '(\w+)'", line)
        why = re.search(r"serialized (due to [^']*?) in the function", line)
        print(f"WGMMA SERIALIZED: {name.group(1) if name else '?'}: {why.group(1) if why else line.strip()}")
sys.exit(3 if serialized else 0)
PY
