#pragma once
/// \file engine_cuda.hpp
/// NVIDIA tensor-core tile engine: bf16 / fp16 inputs, fp32 accumulation, head dims 64 and 128,
/// sm_80 and newer.
///
/// One CTA of one warpgroup (4 warps) per work item of the shared plan; the item's 64 rows (packed
/// GQA heads x query positions) are split 16 per warp; their Q stays in registers for the whole
/// item (wgmma path: at head dim 128, see wgmma_q_in_registers). K and V tiles of 64 keys stream
/// through `stages` shared-memory buffers (cp.async, the next tiles load while the current one is
/// computed); three CTAs share an SM on the wgmma path, two on the mma.sync one. Every tile is
/// stored in the 128-byte-swizzle layout (tile_offset), which both tile-math paths read:
///  - sm_90a code (wgmma): S = Q K^T with Q from registers (head dim 128; 64: a descriptor) and K
///    read by the tensor cores through a shared-memory descriptor, O += P V with P from registers;
///    each K/V byte is read once per 64 rows.
///  - other targets (mma.sync m16n8k16 + ldmatrix): Q in registers, each warp reads K/V itself.
/// Which one runs is decided by the compilation pass the driver loads (a build for Hopper needs
/// `-gencode=arch=compute_90a,code=sm_90a` next to Kokkos' sm_90 for the wgmma path; uses_wgmma()
/// reports it). Scores, the online softmax and the output accumulators stay in registers. The
/// policy's runs, the tile walk, the plan and the split-KV combine are the shared ones; only the
/// tile math lives here.
///
/// On sm_90a at head dims 64 and 128, position-only masks take the warp-specialised kernel of
/// engine_cuda_ws.hpp instead (TMA producer, two consumer warpgroups at 128 and three at 64,
/// persistent CTAs; on the H200 causal 556 TFLOP/s at 16K (af3bbf1) against this kernel's 453
/// (3a26117, another call), triangle and streaming 0-18% faster in dacee65's A/B; at head dim
/// 64 causal, triangle and streaming take 11-14% less time than here in 4b34a86's A/B;
/// bench/NOTES.md); the kernel below
/// serves the other shapes and masks, and all of them where that kernel cannot start
/// (TRIMIX_CUDA_WS=0, scale <= 0, a tensor map the driver refuses).
///
/// The engine owns its launch on the execution space instance's stream (it needs more than the
/// 48 KB of shared memory a Kokkos team gets: 74 KB at head dim 128 with two stages; a device
/// that gives a CTA less takes the portable kernel, see shared_memory_fits).

#include <trimix/engine.hpp>

#if defined(KOKKOS_ENABLE_CUDA) && defined(__CUDACC__)

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>

// The wgmma path exists only in device code compiled for sm_90a (arch-specific features).
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define TRIMIX_CUDA_WGMMA 1
#else
#define TRIMIX_CUDA_WGMMA 0
#endif

namespace trimix::impl::cuda_engine {

/// K/V shared-memory buffers; the tile loop loads stages - 1 tiles ahead. A compile-time knob
/// for measuring: 2 is the tested default; 3 measured within 1% of it only in the two-warpgroup
/// experiment (bench/NOTES.md), and no test has run with another value.
#ifndef TRIMIX_CUDA_KV_STAGES
#define TRIMIX_CUDA_KV_STAGES 2
#endif
/// Warpgroups per CTA, 64 rows each. Two (128-row items sharing each K/V tile, one CTA per SM)
/// took 15% longer for causal than one with two CTAs per SM (before Q moved to registers and a
/// third CTA fitted), also with a producer warpgroup and ping-pong turns (bench/NOTES.md, branch
/// exp/two-warpgroups).
constexpr int warpgroups = 1;
constexpr int warps = 4 * warpgroups;
constexpr int threads = 32 * warps;
constexpr int block_rows = 16 * warps;  ///< rows of a work item (heads_per_item * q_rows)
constexpr int kv_tile = 64;             ///< keys per kv-tile
constexpr int stages = TRIMIX_CUDA_KV_STAGES;
/// Longest tile list of one item (the plan splits longer items, at the price of a partial-output
/// slot each and the combine pass): 2048 covers causal rows up to 128K keys in one item.
constexpr int max_item_tiles = 2048;

/// 1 for bf16 storage, 2 for fp16 storage, 0 for types the engine does not take.
template <class T>
constexpr int operand_kind() {
  if constexpr (std::is_same_v<T, trimix::bf16>) return 1;
  else if constexpr (std::is_same_v<T, trimix::fp16>) return 2;
  else if constexpr (!std::is_same_v<T, float> && std::is_same_v<T, Kokkos::Experimental::half_t>) return 2;
#ifdef KOKKOS_BHALF_T_IS_FLOAT
  else if constexpr (!std::is_same_v<T, float> && std::is_same_v<T, Kokkos::Experimental::bhalf_t>) return 1;
#endif
  else return 0;
}

template <class Elem, class Mask>
struct Params {
  const Elem* q;
  const Elem* k;
  const Elem* v;
  Elem* o;
  float* lse;
  Problem problem;
  TileGeometry geometry;
  Mask mask;
  const WorkItem* items;
  const ItemRuns* runs;
  index_t item_count;
  float* partial_o;
  float* partial_lse;
  index_t heads_per_item;
  float scale_log2;  ///< softmax scale * log2(e): scores leave the mma in base 2
  /// Rows of the plan's items: block_rows, or 2 x block_rows where the plan was made for the pair
  /// kernel (engine_cuda_pair.hpp); attention_kernel then runs one CTA per 64-row half of an item.
  int item_rows = block_rows;
};

__device__ __forceinline__ unsigned smem_address(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

/// 16 bytes global -> shared, asynchronously; zero-fills when !valid (rows past the sequence).
__device__ __forceinline__ void copy_16(unsigned dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void copy_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void copy_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

__device__ __forceinline__ void ldmatrix_x4(unsigned address, unsigned (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned address, unsigned (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

/// The inverse of ldmatrix_x4: four 8 x 8 matrices of 16-bit elements from the mma fragment
/// layout into shared memory (sm_90), lanes 8i to 8i + 7 giving matrix i's row addresses.
__device__ __forceinline__ void stmatrix_x4(unsigned address, const unsigned (&r)[4]) {
#if TRIMIX_CUDA_WGMMA
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(address), "r"(r[0]),
               "r"(r[1]), "r"(r[2]), "r"(r[3])
               : "memory");
#endif
}

/// d += a * b for one m16n8k16 tile (fp32 accumulators).
template <int Kind>
__device__ __forceinline__ void mma(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  if constexpr (Kind == 1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

/// Two floats rounded to one 32-bit pair of 16-bit operands (lo in the low half).
template <int Kind>
__device__ __forceinline__ unsigned pack(float lo, float hi) {
  if constexpr (Kind == 1) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<unsigned*>(&v);
  } else {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<unsigned*>(&v);
  }
}

__device__ __forceinline__ float fast_exp2(float x) {  // ex2(-inf) = +0
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

/// Element offset of (row, 16-byte chunk) in a shared-memory tile of 64 rows of 16-bit elements:
/// each 64-column half of the tile is its own [64][64] block of 128-byte rows, and the 8 chunks of
/// row r sit XOR-swizzled by r % 8. This is the canonical 128-byte-swizzle layout that wgmma reads
/// through a descriptor (blocks 1024-byte aligned), and the 8 rows an ldmatrix reads land in 8
/// different bank groups.
constexpr int tile_rows = 64;
__device__ __forceinline__ int tile_offset(int row, int chunk) {
  return (chunk >> 3) * (tile_rows * 64) + row * 64 + (((chunk & 7) ^ (row & 7)) << 3);
}
constexpr unsigned half_tile_bytes = tile_rows * 128;  ///< one [64][64] block of a tile

/// The mask bits of this thread's two rows (positions row_position[0] and [1]) in a partial tile of
/// 64 keys from first_key, shifted so that bit nt * 8 + e % 2 is the thread's score (nt, e) of
/// the m16n8 / m64nN fragment layout. The four lanes of a quad hold the same two rows: each asks
/// the policy for one 32-key half of one row and the quad trades the words by shuffles: one call
/// per thread and partial tile instead of two (Triangle's four-leaf composition was ~200 SASS
/// instructions a call in 037298b's kernels, cuobjdump on the H200 machine). All 32 lanes of the
/// warp call it.
template <class Mask>
__device__ __forceinline__ void quad_visible_bits(const Mask& mask, const index_t (&row_position)[2],
                                                  index_t first_key, index_t seq_k, int lane,
                                                  std::uint64_t (&seen_bits)[2]) {
  const int quad_lane = lane % 4, half = quad_lane & 1;
  const index_t position = quad_lane < 2 ? row_position[0] : row_position[1];
  const auto word = std::uint32_t(trimix::visible_bits(mask, position, first_key + 32 * half, seq_k));
  const int quad_base = lane & ~3;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const std::uint32_t lo = __shfl_sync(0xffffffffu, word, quad_base + 2 * h);
    const std::uint32_t hi = __shfl_sync(0xffffffffu, word, quad_base + 2 * h + 1);
    seen_bits[h] = ((std::uint64_t(hi) << 32) | lo) >> (quad_lane * 2);
  }
}

/// Makes shared memory written by ordinary or cp.async stores visible to the tensor cores' reads.
__device__ __forceinline__ void fence_async_proxy() {
#if TRIMIX_CUDA_WGMMA
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

/// Warpgroup MMA (sm_90a). Every function is issued by all 128 threads of the warpgroup.
namespace wgmma {

/// Descriptor of a 128-byte-swizzled operand in shared memory. `leading` and `stride` are the
/// byte distances between the core-matrix groups: for K-major operands stride is the next 8 rows
/// (leading unused); for MN-major ones leading is the next 64 columns and stride the next 8 rows.
__device__ __forceinline__ std::uint64_t descriptor(unsigned address, unsigned leading, unsigned stride) {
  return std::uint64_t((address & 0x3FFFFu) >> 4) | std::uint64_t(leading >> 4) << 16 |
         std::uint64_t(stride >> 4) << 32 | std::uint64_t(1) << 62;
}

#if TRIMIX_CUDA_WGMMA
__device__ __forceinline__ void fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wait_all() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }

/// Keeps the compiler from moving reads or writes of accumulators across the asynchronous MMA.
template <int M>
__device__ __forceinline__ void fence_operands(float (&x)[M][4]) {
#pragma unroll
  for (int i = 0; i < M; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(x[i][e])::"memory");
}

// The three instruction shapes, as macros of their element type suffix (TYPE: "bf16" or "f16"):
// the asm text is the same for both types otherwise. Operands: accumulators d ([rows][4] floats,
// the mma fragment layout), then A (descriptor or 4 registers), the B descriptor, and
// `accumulate` as the scale-d predicate (0: D = A B, the first k-step of S; else D += A B).
#define TRIMIX_WGMMA_ACC4(i) "+f"(d[i][0]), "+f"(d[i][1]), "+f"(d[i][2]), "+f"(d[i][3])
#define TRIMIX_WGMMA_ACC32                                                                    \
  TRIMIX_WGMMA_ACC4(0), TRIMIX_WGMMA_ACC4(1), TRIMIX_WGMMA_ACC4(2), TRIMIX_WGMMA_ACC4(3),    \
      TRIMIX_WGMMA_ACC4(4), TRIMIX_WGMMA_ACC4(5), TRIMIX_WGMMA_ACC4(6), TRIMIX_WGMMA_ACC4(7)
#define TRIMIX_WGMMA_ACC64                                                                    \
  TRIMIX_WGMMA_ACC32, TRIMIX_WGMMA_ACC4(8), TRIMIX_WGMMA_ACC4(9), TRIMIX_WGMMA_ACC4(10),      \
      TRIMIX_WGMMA_ACC4(11), TRIMIX_WGMMA_ACC4(12), TRIMIX_WGMMA_ACC4(13), TRIMIX_WGMMA_ACC4(14), \
      TRIMIX_WGMMA_ACC4(15)
#define TRIMIX_WGMMA_REGS32 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15," \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define TRIMIX_WGMMA_REGS64 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15," \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31," \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47," \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define TRIMIX_WGMMA_SS_N64(TYPE)                                                                  \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                        \
               "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " " TRIMIX_WGMMA_REGS32  \
               ", %32, %33, p, 1, 1, 0, 0;\n}\n"                                                    \
               : TRIMIX_WGMMA_ACC32                                                                \
               : "l"(a), "l"(b), "r"(accumulate))
#define TRIMIX_WGMMA_RS_N64(TYPE)                                                                  \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"                                        \
               "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " " TRIMIX_WGMMA_REGS32  \
               ", {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"                                      \
               : TRIMIX_WGMMA_ACC32                                                                \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate))
#define TRIMIX_WGMMA_RS_N64_K(TYPE)                                                                \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"                                        \
               "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " " TRIMIX_WGMMA_REGS32  \
               ", {%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"                                      \
               : TRIMIX_WGMMA_ACC32                                                                \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate))
#define TRIMIX_WGMMA_RS_N128_K(TYPE)                                                               \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                        \
               "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE " " TRIMIX_WGMMA_REGS64 \
               ", {%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"                                      \
               : TRIMIX_WGMMA_ACC64                                                                \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate))
#define TRIMIX_WGMMA_RS_N128(TYPE)                                                                 \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                        \
               "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE " " TRIMIX_WGMMA_REGS64 \
               ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"                                      \
               : TRIMIX_WGMMA_ACC64                                                                \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate))

/// D(64 x 64) += A(64 x 16, shared, K-major) * B(64 x 16, shared, K-major)^T.
template <int Kind>
__device__ __forceinline__ void mma_ss_n64(float (&d)[8][4], std::uint64_t a, std::uint64_t b, int accumulate) {
  if constexpr (Kind == 1) TRIMIX_WGMMA_SS_N64("bf16");
  else TRIMIX_WGMMA_SS_N64("f16");
}

/// D(64 x 64) += A(64 x 16, registers) * B(64 x 16, shared, K-major)^T.
template <int Kind>
__device__ __forceinline__ void mma_rs_n64_k(float (&d)[8][4], const unsigned (&a)[4], std::uint64_t b,
                                             int accumulate) {
  if constexpr (Kind == 1) TRIMIX_WGMMA_RS_N64_K("bf16");
  else TRIMIX_WGMMA_RS_N64_K("f16");
}

/// D(64 x 64) += A(64 x 16, registers) * B(16 x 64, shared, N-major).
template <int Kind>
__device__ __forceinline__ void mma_rs_n64(float (&d)[8][4], const unsigned (&a)[4], std::uint64_t b, int accumulate) {
  if constexpr (Kind == 1) TRIMIX_WGMMA_RS_N64("bf16");
  else TRIMIX_WGMMA_RS_N64("f16");
}

/// D(64 x 128) += A(64 x 16, registers) * B(128 x 16, shared, K-major)^T: S of 128 keys.
template <int Kind>
__device__ __forceinline__ void mma_rs_n128_k(float (&d)[16][4], const unsigned (&a)[4], std::uint64_t b,
                                              int accumulate) {
  if constexpr (Kind == 1) TRIMIX_WGMMA_RS_N128_K("bf16");
  else TRIMIX_WGMMA_RS_N128_K("f16");
}

/// D(64 x 128) += A(64 x 16, registers) * B(16 x 128, shared, N-major).
template <int Kind>
__device__ __forceinline__ void mma_rs_n128(float (&d)[16][4], const unsigned (&a)[4], std::uint64_t b,
                                            int accumulate) {
  if constexpr (Kind == 1) TRIMIX_WGMMA_RS_N128("bf16");
  else TRIMIX_WGMMA_RS_N128("f16");
}

#undef TRIMIX_WGMMA_RS_N128
#undef TRIMIX_WGMMA_RS_N128_K
#undef TRIMIX_WGMMA_RS_N64
#undef TRIMIX_WGMMA_RS_N64_K
#undef TRIMIX_WGMMA_SS_N64
#undef TRIMIX_WGMMA_REGS64
#undef TRIMIX_WGMMA_REGS32
#undef TRIMIX_WGMMA_ACC64
#undef TRIMIX_WGMMA_ACC32
#undef TRIMIX_WGMMA_ACC4

#endif  // TRIMIX_CUDA_WGMMA

}  // namespace wgmma

/// Where S = Q K^T takes Q from on the wgmma path: registers at head dim 128 (each k-step then
/// reads only K from shared memory: with Q too a 64 x 64 step is at the shared-memory bandwidth),
/// a shared-memory descriptor at head dim 64. (The register form gave wrong scores at head dim
/// 64 from the second tile of an item on: tests and demo, H200, CUDA 13; not understood, so that
/// shape keeps the form that passes.) The mma.sync path always holds Q in registers.
template <int Dim>
constexpr bool wgmma_q_in_registers = Dim == 128;

/// Dynamic shared memory of a kernel instantiation: the K/V stages, Q's buffer where S reads Q
/// from shared memory, + 1 KB to align the tiles to 1024 bytes. Where Q lives in registers it has
/// no buffer of its own: it passes through the last stage's V buffer on its way there, before the
/// tile loop first fills that stage.
template <int Dim>
constexpr int shared_bytes() {
  return ((wgmma_q_in_registers<Dim> ? 0 : block_rows) + 2 * stages * kv_tile) * Dim * 2 + 1024;
}
/// Static shared memory of the kernel: the tile list, the item descriptor, the list scan.
constexpr int static_shared_bytes = int(sizeof(int) * (max_item_tiles + 1 + 2 * warps) + sizeof(WorkItem));

/// acc *= alpha per row (a thread's two rows: elements 0-1 and 2-3 of each tile).
template <int DT>
__device__ __forceinline__ void scale_accumulators(float (&acc)[DT][4], const float (&alpha)[2]) {
#pragma unroll
  for (int dt = 0; dt < DT; ++dt) {
    acc[dt][0] *= alpha[0];
    acc[dt][1] *= alpha[0];
    acc[dt][2] *= alpha[1];
    acc[dt][3] *= alpha[1];
  }
}

/// Whether any row of the warp has a rescale factor other than exactly 1 (once a row's maximum
/// settles its factor is exactly 1: long rows skip most tiles; exact).
__device__ __forceinline__ bool warp_rescales(const float (&alpha)[2]) {
  return __any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f);
}

/// acc *= alpha per row, skipped while every row of the warp has alpha exactly 1.
template <int DT>
__device__ __forceinline__ void rescale_accumulators(float (&acc)[DT][4], const float (&alpha)[2]) {
  if (warp_rescales(alpha)) scale_accumulators(acc, alpha);
}

/// CTAs one SM runs at once, which the kernel is compiled for. wgmma path: three (at most 168
/// registers per thread at 128 threads; 3 x 75 KB of shared memory at head dim 128 fit the SM's
/// 228 KB): each CTA's tile steps are a dependent chain (S, softmax, P V, barrier), and a third
/// CTA gives the tensor cores a third chain to switch to (with two the tensor pipe was 44% busy,
/// bench/NOTES.md). mma.sync path: two (its warps also hold the K / V fragments they read).
constexpr int wgmma_ctas_per_sm = 3, mma_sync_ctas_per_sm = 2;

/// One CTA per work item: each warpgroup owns 64 of the item's rows (its own Q tile, scores,
/// softmax and accumulators) and all share every K/V tile, which all threads load. K/V tiles
/// stream through `stages` shared-memory buffers, `stages - 1` tiles ahead of the one computed,
/// with one CTA barrier per tile. Three CTAs per SM overlap one's softmax and prologue with the
/// others' tensor-core work. Q lives in registers (the A operand of S = Q K^T) for the whole item,
/// except on the wgmma path at head dim 64 (wgmma_q_in_registers), where it stays in shared memory.
template <int Dim, int Kind, class Elem, class Mask>
__global__ void __launch_bounds__(threads, TRIMIX_CUDA_WGMMA ? wgmma_ctas_per_sm : mma_sync_ctas_per_sm)
    attention_kernel(const Params<Elem, Mask> p) {
  static_assert(Dim % 64 == 0, "the swizzle needs at least 8 chunks per row");
  static_assert(block_rows == warpgroups * tile_rows && kv_tile == tile_rows, "tiles are 64 rows (tile_offset)");
  static_assert(sizeof(Elem) == 2, "16-bit operands");
  static_assert(stages >= 2, "the next tile loads while the current one is computed");
  constexpr int chunks = Dim / 8;  // 16-byte chunks per row
  constexpr int n_tiles = kv_tile / 8;
  constexpr int d_tiles = Dim / 8;
  constexpr float minus_inf = minus_infinity;
  constexpr bool use_wgmma = TRIMIX_CUDA_WGMMA != 0;

  // Tiles start on 1024-byte boundaries (the swizzle pattern is one of address bits); the launch
  // asks for 1 KB more than the tiles need.
  extern __shared__ __align__(1024) unsigned char shared_raw[];
  unsigned char* shared_tiles = shared_raw + ((1024u - (smem_address(shared_raw) & 1023u)) & 1023u);
  Elem* sk = reinterpret_cast<Elem*>(shared_tiles);
  Elem* sv = sk + stages * kv_tile * Dim;
  // Q's buffer, or its way to registers: the last stage's V buffer.
  Elem* sq = sv + (wgmma_q_in_registers<Dim> ? stages - 1 : stages) * kv_tile * Dim;

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const Problem& pr = p.problem;
  const TileGeometry& g = p.geometry;
  const index_t q_rows = g.q_tile;
  auto first_q_head_of = [&](const WorkItem& it) {
    return it.kv_head * pr.group_size() + it.head_block * p.heads_per_item;
  };

  // Q tile of item `it` (zeros past seq_q).
  // This CTA's item and, where items have more rows than a CTA (item_rows), which 64 of them.
  const int item_halves = p.item_rows / block_rows;
  const int item_index = int(blockIdx.x) / item_halves, row_base = (int(blockIdx.x) % item_halves) * block_rows;
  auto load_q = [&](const WorkItem& it) {
    const index_t first_q_head = first_q_head_of(it), first_row = index_t(it.q_tile) * q_rows;
    const index_t valid_rows = g.q_rows(it.q_tile);
    for (int e = tid; e < block_rows * chunks; e += threads) {
      const int r = e / chunks, c = e % chunks, item_row = row_base + r;
      const index_t i = item_row % q_rows;
      const bool valid = i < valid_rows;
      copy_16(smem_address(sq + tile_offset(r, c)),
              p.q + pr.q(it.batch, first_q_head + item_row / q_rows, first_row + (valid ? i : 0), c * 8), valid);
    }
  };
  // K/V tile loads: thread tid always copies the same 16-byte chunk column (tid % chunks) of rows
  // tid / chunks + row_step * i, and the swizzle of those rows is the same (row_step is a multiple
  // of 8), so per tile only the row base moves: no 64-bit index arithmetic per copy (the stride
  // products cost more issue slots than the copies; tile_offset moves by 64 elements per row).
  static_assert(threads % chunks == 0 && (threads / chunks) % 8 == 0 && kv_tile % (threads / chunks) == 0,
                "one chunk column per thread");
  constexpr int row_step = threads / chunks;
  const int my_chunk = tid % chunks, my_row = tid / chunks;
  const index_t k_seq = pr.k.seq, v_seq = pr.v.seq;
  const int my_smem = tile_offset(my_row, my_chunk);  // + row_step * 64 per step
  auto load_kv = [&](const Elem* k_column, const Elem* v_column, index_t tile, int stage) {
    const int j0 = int(g.first_key(tile)), keys = int(g.kv_keys(tile));
    const unsigned dk = smem_address(sk + stage * kv_tile * Dim + my_smem);
    const unsigned dv = smem_address(sv + stage * kv_tile * Dim + my_smem);
#pragma unroll
    for (int step = 0; step < kv_tile / row_step; ++step) {
      const int r = my_row + step * row_step;
      const bool valid = r < keys;
      const index_t j = j0 + (valid ? r : 0);
      const unsigned offset = unsigned(step * row_step * 64 * int(sizeof(Elem)));
      copy_16(dk + offset, k_column + j * k_seq, valid);
      copy_16(dv + offset, v_column + j * v_seq, valid);
    }
  };

  // The kv-tiles of the item, as a list of entries in shared memory (tile * 2 + partial) built
  // before the accumulators exist; the plan keeps items within the list's length
  // (TileShape::max_tiles_per_item). From the plan's runs when it has them: every thread expands
  // a share. Otherwise (head-dependent masks, items of many runs) from the policy's classify, in
  // chunks of list_chunk kv-tiles: each thread classifies list_per_thread consecutive tiles and a
  // block scan of the counts gives each visited tile its ordinal in run order (the tile contract:
  // runs list exactly the tiles classify calls non-empty, in order), so the item keeps ordinals
  // [tile_begin, tile_end). One thread walking the runs cursor instead kept the other warps at
  // the barrier for ~40% of the block-sparse kernel's stall samples: a block-sparse cursor reads
  // the map one dependent load per tile (bench/NOTES.md). Thread 0 also keeps the item's
  // descriptor beside its list (read from shared memory it is not live across the tile loop).
  constexpr int list_per_thread = 4, list_chunk = list_per_thread * threads;
  __shared__ int tile_list[max_item_tiles];
  __shared__ WorkItem item_slot;
  __shared__ int list_scan[2][warps];  // per-warp counts of a chunk, double-buffered by chunk parity
  auto build_list = [&](const WorkItem& it, const ItemRuns& item_runs) {
    if (tid == 0) item_slot = it;
    const int n = min(it.tile_end - it.tile_begin, max_item_tiles);
    if (item_runs.count >= 0) {
      for (int o = tid; o < n; o += threads) tile_list[o] = run_entry(item_runs, o);
      return;
    }
    // The mask of this item's heads (they share it: the plan packs only heads with the same mask).
    const auto item_mask = bind_head(p.mask, it.batch, first_q_head_of(it), pr.q_heads);
    const index_t kv_tiles = g.kv_tiles();
    const int begin = it.tile_begin, end = it.tile_begin + n;
    int seen = 0;  // visited tiles before the chunk: the same in every thread, so the loop is uniform
    for (index_t base = 0; base < kv_tiles && seen < end; base += list_chunk) {
      const int parity = int(base / list_chunk) & 1;
      const index_t first_tile = base + tid * list_per_thread;
      unsigned classes = 0;
      int mine = 0;
#pragma unroll
      for (int k = 0; k < list_per_thread; ++k) {
        const TileClass c = first_tile + k < kv_tiles ? trimix::classify(item_mask, g, index_t(it.q_tile), first_tile + k)
                                                      : TileClass::empty;
        classes |= unsigned(c) << (2 * k);
        mine += c != TileClass::empty ? 1 : 0;
      }
      int inclusive = mine;  // warp scan of the counts
#pragma unroll
      for (int d = 1; d < 32; d *= 2) {
        const int t = __shfl_up_sync(0xffffffffu, inclusive, d);
        if (lane >= d) inclusive += t;
      }
      if (lane == 31) list_scan[parity][warp] = inclusive;
      __syncthreads();
      int ordinal = seen + inclusive - mine, total = 0;
#pragma unroll
      for (int w = 0; w < warps; ++w) {
        const int t = list_scan[parity][w];
        ordinal += w < warp ? t : 0;
        total += t;
      }
#pragma unroll
      for (int k = 0; k < list_per_thread; ++k) {
        const unsigned c = (classes >> (2 * k)) & 3u;
        if (c == 0u) continue;
        if (ordinal >= begin && ordinal < end)
          tile_list[ordinal - begin] = int(first_tile + k) * 2 + int(c == unsigned(TileClass::partial));
        ++ordinal;
      }
      seen += total;
    }
  };

  // Prologue: Q in flight while the list is built, then the first stages - 1 K/V tiles, one
  // cp.async group each (empty groups keep the count uniform), and a wait for Q and tile 0.
  // With runs every thread knows the first tile before the list exists: its load joins Q's
  // group (without it streaming took 5% longer at 16K, triangle 2%: bench/NOTES.md).
  int first_ahead = 0;  // tiles already loaded
  {
    const WorkItem first = p.items[item_index];
    const ItemRuns first_runs = p.runs[item_index];
    load_q(first);
    if (first_runs.count >= 0 && first.tile_end > first.tile_begin) {
      load_kv(p.k + pr.k(first.batch, first.kv_head, 0, my_chunk * 8), p.v + pr.v(first.batch, first.kv_head, 0, my_chunk * 8),
              run_entry(first_runs, 0) >> 1, 0);
      first_ahead = 1;
    }
    copy_commit();
    build_list(first, first_runs);
  }
  __syncthreads();
  const WorkItem item = item_slot;
  const int tile_count = min(item.tile_end - item.tile_begin, max_item_tiles);
  const Elem* k_column = p.k + pr.k(item.batch, item.kv_head, 0, my_chunk * 8);
  const Elem* v_column = p.v + pr.v(item.batch, item.kv_head, 0, my_chunk * 8);
  for (int s = first_ahead; s < stages - 1; ++s) {
    if (s < tile_count) load_kv(k_column, v_column, tile_list[s] >> 1, s);
    copy_commit();
  }
  asm volatile("cp.async.wait_group %0;\n" ::"n"(stages - 2));
  fence_async_proxy();
  __syncthreads();

  // wgmma descriptors: K-major Q (head dim 64 only) and K (8-row groups 1024 bytes apart),
  // N-major V (64-column halves half_tile_bytes apart); a k16 step moves 32 bytes inside a
  // 128-byte row, or to the next half every 4 steps; a V step of 16 keys moves 16 rows of 128
  // bytes.
  [[maybe_unused]] const std::uint64_t q_desc = wgmma::descriptor(smem_address(sq), 16, 1024);
  [[maybe_unused]] const std::uint64_t k_desc = wgmma::descriptor(smem_address(sk), 16, 1024);
  [[maybe_unused]] const std::uint64_t v_desc = wgmma::descriptor(smem_address(sv), half_tile_bytes, 1024);
  [[maybe_unused]] constexpr std::uint64_t stage_step = (kv_tile * Dim * sizeof(Elem)) >> 4;  // descriptor units
  [[maybe_unused]] auto k_step = [](int kk) {
    return std::uint64_t(((kk >> 2) * half_tile_bytes + (kk & 3) * 32) >> 4);
  };
  const int row_in_warp = lane / 4;  // this thread's rows: row_in_warp and row_in_warp + 8
  const index_t first_q_head = first_q_head_of(item);

  // Q as A fragments, rows warp*16 .. +15, all of Dim (the same register layout for mma.sync and
  // for wgmma with A from registers); the barrier frees the buffer for the tile loop's first load.
  constexpr bool q_registers = !use_wgmma || wgmma_q_in_registers<Dim>;
  unsigned qf[Dim / 16][4];
  if constexpr (q_registers) {
    const int mat = lane / 8, r = lane % 8;
    const int row = warp * 16 + r + (mat % 2) * 8;
#pragma unroll
    for (int kk = 0; kk < Dim / 16; ++kk) ldmatrix_x4(smem_address(sq + tile_offset(row, kk * 2 + mat / 2)), qf[kk]);
    __syncthreads();
  }

  float acc[d_tiles][4];
#pragma unroll
  for (int dt = 0; dt < d_tiles; ++dt) acc[dt][0] = acc[dt][1] = acc[dt][2] = acc[dt][3] = 0.0f;
  float row_max[2] = {minus_inf, minus_inf}, row_sum[2] = {0.0f, 0.0f};
  // Query positions of this thread's two rows, computed once: the mask test inside partial tiles
  // then costs a few compares per score instead of a 64-bit division.
  index_t row_position[2];
#pragma unroll
  for (int h = 0; h < 2; ++h)
    row_position[h] = g.first_position(item.q_tile) + index_t(row_base + warp * 16 + row_in_warp + h * 8) % q_rows;

  int stage = 0;
  for (int i = 0; i < tile_count; ++i) {
    // The tile stages - 1 ahead goes into the stage tile i - 1 left (every warp passed the barrier
    // at the end of the previous tile, so none still reads it).
    {
      const int ahead = i + stages - 1;
      const int ahead_stage = stage + stages - 1 < stages ? stage + stages - 1 : stage - 1;
      if (ahead < tile_count) load_kv(k_column, v_column, tile_list[ahead] >> 1, ahead_stage);
      copy_commit();
    }
    const int entry = tile_list[i];
    const index_t tile = entry >> 1;
    const bool partial = (entry & 1) != 0;

    [[maybe_unused]] const Elem* ks = sk + stage * kv_tile * Dim;
    [[maybe_unused]] const Elem* vs = sv + stage * kv_tile * Dim;
    // Head-dependent (runtime) masks: which of this thread's 32 scores the mask shows is decided
    // before the scores exist, so the element test (a bound block-sparse mask is a dozen
    // registers, its lookups more) never competes with the score registers; inline it spilled
    // (bench/NOTES.md). Position-only masks test in place below (measured faster for them).
    constexpr bool runtime_mask = is_head_dependent<Mask>::value;
    const index_t j0 = g.first_key(tile), keys = g.kv_keys(tile);
    const bool check = partial || keys < kv_tile;
    // S = Q K^T (16 x 64 per warp). wgmma: issued here, waited for after the mask bits below.
    float s[n_tiles][4];
#if TRIMIX_CUDA_WGMMA
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < Dim / 16; ++kk)
      if constexpr (q_registers) wgmma::mma_rs_n64_k<Kind>(s, qf[kk], k_desc + stage * stage_step + k_step(kk), kk > 0);
      else wgmma::mma_ss_n64<Kind>(s, q_desc + k_step(kk), k_desc + stage * stage_step + k_step(kk), kk > 0);
    wgmma::commit();
#endif
    // Position-only policies with visible_bits: each of this thread's two rows as a 64-key bit
    // mask, shifted so that bit nt * 8 + e % 2 is its score (nt, e); computed while the tensor
    // cores work on S (wgmma), and per score a bit test replaces the policy's own arithmetic.
    constexpr bool row_bits = !runtime_mask && has_visible_bits<Mask>::value;
    static_assert(kv_tile == 64, "one 64-bit mask per row and tile");
    std::uint64_t seen_bits[2] = {~std::uint64_t(0), ~std::uint64_t(0)};
    if constexpr (row_bits) {
      if (partial) {
        quad_visible_bits(p.mask, row_position, j0, g.seq_k, lane, seen_bits);
      } else if (check) {
        const std::uint64_t key_bits = keys >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << keys) - 1;
        seen_bits[0] = seen_bits[1] = key_bits >> ((lane % 4) * 2);
      }
    }
    unsigned shown = ~0u;
    if (runtime_mask && check) {
      const auto tile_mask = bind_head(p.mask, item.batch, first_q_head, pr.q_heads);
      shown = 0u;
#pragma unroll
      for (int nt = 0; nt < n_tiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int col = nt * 8 + (lane % 4) * 2 + (e % 2);
          const bool seen =
              col < keys && (!partial || trimix::visible(tile_mask, row_position[e / 2], j0 + col, g.seq_k));
          shown |= unsigned(seen) << (nt * 4 + e);
        }
    }
#if TRIMIX_CUDA_WGMMA
    wgmma::wait_all();
    wgmma::fence_operands(s);
#else
#pragma unroll
    for (int nt = 0; nt < n_tiles; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
    {
      const int mat = lane / 8, r = lane % 8;
#pragma unroll
      for (int kk = 0; kk < Dim / 16; ++kk) {
#pragma unroll
        for (int np = 0; np < n_tiles / 2; ++np) {
          unsigned b[4];
          ldmatrix_x4(smem_address(ks + tile_offset(np * 16 + r + (mat / 2) * 8, kk * 2 + mat % 2)), b);
          mma<Kind>(s[2 * np], qf[kk], b[0], b[1]);
          mma<Kind>(s[2 * np + 1], qf[kk], b[2], b[3]);
        }
      }
    }
#endif
    // The scale (base 2) goes into the exponent's multiply-add below: max(scale s) = scale max(s)
    // for a positive scale (every default); another scale is applied to the scores here first.
    // Then the mask where the policy said partial (or past seq_k), in a loop of its own so that
    // full tiles skip it (with the test inside the scale loop causal was 8% slower: A/B in
    // bench/NOTES.md, 6c5deb1).
    float scale = p.scale_log2;
    if (!(scale > 0.0f)) {
#pragma unroll
      for (int nt = 0; nt < n_tiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[nt][e] *= scale;
      scale = 1.0f;
    }
    if (check) {
#pragma unroll
      for (int nt = 0; nt < n_tiles; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          bool seen;
          if constexpr (runtime_mask) {
            seen = (shown >> (nt * 4 + e)) & 1u;
          } else if constexpr (row_bits) {
            seen = (seen_bits[e / 2] >> (nt * 8 + e % 2)) & 1u;
          } else {
            const int col = nt * 8 + (lane % 4) * 2 + (e % 2);
            seen = col < keys && (!partial || trimix::visible(p.mask, row_position[e / 2], j0 + col, g.seq_k));
          }
          if (!seen) s[nt][e] = minus_inf;
        }
      }
    }
    // Online softmax, per row (the 4 threads of a quad share a row).
    float alpha[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float mx = minus_inf;
#pragma unroll
      for (int nt = 0; nt < n_tiles; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * h], s[nt][2 * h + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(row_max[h], mx * scale);
      const float shift = m_new == minus_inf ? 0.0f : m_new;   // nothing seen yet: p = 0
      alpha[h] = m_new == row_max[h] ? 1.0f : fast_exp2(row_max[h] - m_new);
      float sum = 0.0f;
#pragma unroll
      for (int nt = 0; nt < n_tiles; ++nt) {
        s[nt][2 * h] = fast_exp2(fmaf(s[nt][2 * h], scale, -shift));
        s[nt][2 * h + 1] = fast_exp2(fmaf(s[nt][2 * h + 1], scale, -shift));
        sum += s[nt][2 * h] + s[nt][2 * h + 1];
      }
      row_sum[h] = row_sum[h] * alpha[h] + sum;  // this thread's columns; the quad adds up at the end
      row_max[h] = m_new;
    }
    rescale_accumulators(acc, alpha);
    // O += P V: P leaves the score accumulators as A fragments (the same register layout for
    // mma.sync and wgmma); V through a descriptor (wgmma, transposed B) or ldmatrix.trans.
    {
      auto p_fragment = [&](int kk, unsigned(&a)[4]) {
        a[0] = pack<Kind>(s[2 * kk][0], s[2 * kk][1]);
        a[1] = pack<Kind>(s[2 * kk][2], s[2 * kk][3]);
        a[2] = pack<Kind>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        a[3] = pack<Kind>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
      };
#if TRIMIX_CUDA_WGMMA
      // The tensor cores read the P registers asynchronously: all four stay untouched until the wait.
      unsigned a[kv_tile / 16][4];
#pragma unroll
      for (int kk = 0; kk < kv_tile / 16; ++kk) p_fragment(kk, a[kk]);
      wgmma::fence_operands(acc);
      wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < kv_tile / 16; ++kk) {
        const std::uint64_t b = v_desc + stage * stage_step + ((kk * 16 * 128) >> 4);
        if constexpr (Dim == 128) wgmma::mma_rs_n128<Kind>(acc, a[kk], b, 1);
        else wgmma::mma_rs_n64<Kind>(acc, a[kk], b, 1);
      }
      wgmma::commit();
      wgmma::wait_all();
      wgmma::fence_operands(acc);
#else
      const int mat = lane / 8, r = lane % 8;
#pragma unroll
      for (int kk = 0; kk < kv_tile / 16; ++kk) {
        unsigned a[4];
        p_fragment(kk, a);
#pragma unroll
        for (int dp = 0; dp < Dim / 16; ++dp) {
          unsigned b[4];
          ldmatrix_x4_trans(smem_address(vs + tile_offset(kk * 16 + r + (mat % 2) * 8, dp * 2 + mat / 2)), b);
          mma<Kind>(acc[2 * dp], a, b[0], b[1]);
          mma<Kind>(acc[2 * dp + 1], a, b[2], b[3]);
        }
      }
#endif
    }
    // Tile i + 1 has landed once at most the stages - 2 younger groups are pending.
    asm volatile("cp.async.wait_group %0;\n" ::"n"(stages - 2));
    fence_async_proxy();
    __syncthreads();
    stage = stage + 1 < stages ? stage + 1 : 0;
  }

  // Finish: o = acc / l, lse; or the partial slot of a split item.
  {
    const index_t first_row = index_t(item.q_tile) * q_rows;
    const index_t valid_rows = g.q_rows(item.q_tile);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float l = row_sum[h];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const int r = row_base + warp * 16 + row_in_warp + h * 8;  // row of the item
      const index_t i = r % q_rows;
      if (i >= valid_rows) continue;
      const float inv = !(l <= 0.0f) ? 1.0f / l : 0.0f;
      const index_t head = first_q_head + r / q_rows;
      const float lse = !(l <= 0.0f) ? (row_max[h] + __log2f(l)) * ln2 : minus_inf;
      if (item.split_slot >= 0) {
        float* out = p.partial_o + (index_t(item.split_slot) * p.item_rows + r) * Dim;
#pragma unroll
        for (int dt = 0; dt < d_tiles; ++dt) {
          const int col = dt * 8 + (lane % 4) * 2;
          *reinterpret_cast<float2*>(out + col) = make_float2(acc[dt][2 * h] * inv, acc[dt][2 * h + 1] * inv);
        }
        if (lane % 4 == 0) p.partial_lse[index_t(item.split_slot) * p.item_rows + r] = lse;
      } else {
        Elem* out = p.o + pr.o(item.batch, head, first_row + i, 0);
#pragma unroll
        for (int dt = 0; dt < d_tiles; ++dt) {
          const int col = dt * 8 + (lane % 4) * 2;
          *reinterpret_cast<unsigned*>(out + col) = pack<Kind>(acc[dt][2 * h] * inv, acc[dt][2 * h + 1] * inv);
        }
        if (p.lse && lane % 4 == 0)
          p.lse[item.batch * pr.lse_batch + head * pr.lse_head + (first_row + i) * pr.lse_seq] = lse;
      }
    }
  }
}

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string("trimix::attention (CUDA engine): ") + what + ": " +
                             cudaGetErrorString(status));
}

template <int = 0>
__global__ void wgmma_probe(int* answer) { *answer = TRIMIX_CUDA_WGMMA; }

/// Whether the kernels the driver loaded for this device take the wgmma path (sm_90a code in the
/// binary and a device that runs it). Asked once per process; the answer is the same for every
/// kernel of the translation unit's binary.
inline bool uses_wgmma() {
  static const bool answer = [] {
    int* flag = nullptr;
    int host = 0;
    if (cudaMalloc(&flag, sizeof(int)) != cudaSuccess) return false;
    wgmma_probe<><<<1, 1>>>(flag);
    const bool ok = cudaMemcpy(&host, flag, sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess;
    cudaFree(flag);
    return ok && host == 1;
  }();
  return answer;
}

/// An attribute of the current device, 0 when it cannot be read.
inline int current_device_attribute(cudaDeviceAttr attribute) {
  int device = 0, value = 0;
  if (cudaGetDevice(&device) != cudaSuccess || cudaDeviceGetAttribute(&value, attribute, device) != cudaSuccess)
    return 0;
  return value;
}

/// Shared memory of one CTA of the kernel at head dim `dim`, its static part included.
inline int cta_shared_bytes(index_t dim) {
  return (dim == 128 ? shared_bytes<128>() : shared_bytes<64>()) + static_shared_bytes;
}

/// Whether the current device gives one CTA the kernel's shared memory at head dim `dim` (asked
/// once per process).
inline bool shared_memory_fits(index_t dim) {
  static const int optin = current_device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin);
  return cta_shared_bytes(dim) <= optin;
}

/// Consumer warpgroups, i.e. items at once per SM, of the warp-specialised kernel
/// (engine_cuda_ws.hpp) at head dim Dim, and whether it may run. Three at 64, where a tile's
/// softmax costs as much as its products and attention_kernel keeps three CTAs per SM.
template <int Dim>
constexpr int ws_consumers = Dim == 64 ? 3 : 2;
inline bool ws_enabled();
inline bool pair_enabled();

/// Whether plans at head dim `dim` are made for the pair kernel (engine_cuda_pair.hpp: 128-row
/// items, both consumer warpgroups on one item): head dim 128 on sm_90a, unless switched off
/// (TRIMIX_CUDA_WS=0 or TRIMIX_CUDA_PAIR=0: the 64-row kernels then run, for measuring).
inline bool pair_plans(index_t dim) { return dim == 128 && uses_wgmma() && ws_enabled() && pair_enabled(); }

/// Items the device runs at once at head dim `dim`: SMs for the pair kernel's plans; SMs x
/// ws_consumers where the warp-specialised kernel may run (also for head-dependent masks, which
/// keep attention_kernel: the plan's split share only); else SMs x the CTAs one SM's shared memory
/// holds (1 KB of it reserved per CTA), at most the CTAs the loaded kernels are compiled for.
/// Asked once per process.
inline index_t concurrent_items(index_t dim, bool pair_plan) {
  static const int sms = current_device_attribute(cudaDevAttrMultiProcessorCount);
  if (pair_plan) return index_t(sms);  // one 128-row item per SM
  if ((dim == 64 || dim == 128) && uses_wgmma() && ws_enabled())
    return index_t(sms) * (dim == 64 ? ws_consumers<64> : ws_consumers<128>);
  static const int per_sm_bytes = current_device_attribute(cudaDevAttrMaxSharedMemoryPerMultiprocessor);
  const int ctas = uses_wgmma() ? wgmma_ctas_per_sm : mma_sync_ctas_per_sm;
  return index_t(sms) * std::max(1, std::min(ctas, per_sm_bytes / (cta_shared_bytes(dim) + 1024)));
}

/// Largest power of two dividing the GQA group, at most 8: heads packed into one 64-row item.
inline index_t packed_heads(index_t group) {
  index_t h = 1;
  while (h < 8 && group % (2 * h) == 0) h *= 2;
  return h;
}

}  // namespace trimix::impl::cuda_engine

#include <trimix/engine_cuda_ws.hpp>
#include <trimix/engine_cuda_pair.hpp>

namespace trimix::impl {

template <class T>
struct tile_engine<Kokkos::Cuda, T, T, T, T, std::enable_if_t<(cuda_engine::operand_kind<T>() > 0)>> {
  static constexpr bool available = true;
  static constexpr int kind = cuda_engine::operand_kind<T>();

  static bool handles_shape(const Problem& p) {
    return (p.head_dim == 64 || p.head_dim == 128) && cuda_engine::shared_memory_fits(p.head_dim);
  }

  /// The plan's tiles: 64-row items, or 128-row ones for the pair kernel (position-only masks,
  /// positive scale, head dim 128 on sm_90a: pair_plans). Head-dependent masks keep 64-row items:
  /// q-tiles of 128 positions span two 64-row blocks of a block-sparse map (bench/NOTES.md).
  template <class Mask>
  static TileShape shape(const Problem& p, const Mask&) {
    using namespace cuda_engine;
    const index_t heads = packed_heads(p.kv_heads ? p.group_size() : 1);
    const bool pair = !is_head_dependent<Mask>::value && p.scale > 0 && pair_plans(p.head_dim);
    const index_t rows = pair ? 2 * block_rows : block_rows;
    return TileShape{rows / heads, kv_tile, heads, max_item_tiles, concurrent_items(p.head_dim, pair)};
  }

  /// 16-byte loads need contiguous head_dim and 8-element-aligned rows.
  static bool handles_views(const Problem& p, const void* q, const void* k, const void* v, const void* o) {
    auto aligned = [](const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0; };
    auto rows_ok = [](const Strides4& s) {
      return s.dim == 1 && s.seq % 8 == 0 && s.head % 8 == 0 && s.batch % 8 == 0;
    };
    return aligned(q) && aligned(k) && aligned(v) && aligned(o) && rows_ok(p.q) && rows_ok(p.k) &&
           rows_ok(p.v) && rows_ok(p.o);
  }

  template <class Mask>
  static void run(const Kokkos::Cuda& exec, const Plan<Kokkos::CudaSpace>& work, const Mask& mask,
                  const AttentionArgs<T, T, T, T>& args, float* partial_o, float* partial_lse,
                  std::uint32_t* item_counter) {
    using namespace cuda_engine;
    Params<T, Mask> params{args.q, args.k, args.v, args.o, args.lse, args.problem, work.geometry, mask,
                           work.items.data(), work.runs.data(), work.item_count(), partial_o, partial_lse,
                           work.heads_per_item, args.problem.scale * log2e, int(work.rows_per_item)};
    if (work.rows_per_item == 2 * block_rows) {
      // A plan made for the pair kernel (shape); attention_kernel takes its items in halves where
      // the pair kernel does not launch.
      if constexpr (!is_head_dependent<Mask>::value)
        if (launch_pair(exec, work, params, item_counter)) return;
      launch<128>(exec, work, params);
    } else if (args.problem.head_dim == 128) {
      if constexpr (!is_head_dependent<Mask>::value)
        if (launch_warp_specialised<128>(exec, work, params, item_counter)) return;
      launch<128>(exec, work, params);
    } else {
      if constexpr (!is_head_dependent<Mask>::value)
        if (launch_warp_specialised<64>(exec, work, params, item_counter)) return;
      launch<64>(exec, work, params);
    }
  }

 private:
  /// The warp-specialised kernel (engine_cuda_ws.hpp) where it runs: sm_90a code loaded, the
  /// tensor maps encoded, its shared memory granted. False: the caller launches attention_kernel.
  template <int Dim, class Params>
  static bool launch_warp_specialised(const Kokkos::Cuda& exec, const Plan<Kokkos::CudaSpace>& work,
                                      const Params& params, std::uint32_t* item_counter) {
    using namespace cuda_engine;
    using Mask = decltype(params.mask);
    if (!ws_enabled() || !uses_wgmma() || work.item_count() == 0 || !work.runs_complete) return false;
    // Its softmax takes the row maximum of the unscaled scores (scale > 0: every default).
    if (!(params.scale_log2 > 0.0f)) return false;
    static const int optin = current_device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin);
    static const int sms = current_device_attribute(cudaDevAttrMultiProcessorCount);
    const auto kernel = ws_attention_kernel<Dim, kind, T, Mask>;
    if (!fits_shared_memory(kernel, ws_shared_bytes<Dim>, optin) || sms <= 0) return false;
    WsParams<T, Mask> wp{CUtensorMap{}, CUtensorMap{}, CUtensorMap{}, params, item_counter};
    if (!encode_maps(wp, unsigned(params.geometry.q_tile), unsigned(params.heads_per_item))) return false;
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, ws_shared_bytes<Dim>),
          "cudaFuncSetAttribute");
    const index_t groups = (work.item_count() + ws_consumers<Dim> - 1) / ws_consumers<Dim>;
    index_t grid_limit = index_t(sms);
    if (ws_grid_limit() > 0) grid_limit = std::min<index_t>(grid_limit, ws_grid_limit());
    const unsigned grid = unsigned(std::min<index_t>(groups, grid_limit));
    kernel<<<grid, ws_threads<Dim>, ws_shared_bytes<Dim>, exec.cuda_stream()>>>(wp);
    check(cudaGetLastError(), "kernel launch");
    ++ws_launches();
    return true;
  }

  /// The pair kernel (engine_cuda_pair.hpp) on a plan of 128-row items, where it runs. False: the
  /// caller launches attention_kernel, which takes such items in halves.
  template <class Params>
  static bool launch_pair(const Kokkos::Cuda& exec, const Plan<Kokkos::CudaSpace>& work, const Params& params,
                          std::uint32_t* item_counter) {
    using namespace cuda_engine;
    using Mask = decltype(params.mask);
    if (work.item_count() == 0 || !work.runs_complete || !(params.scale_log2 > 0.0f) || pair_declines()) return false;
    static const int optin = current_device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin);
    static const int sms = current_device_attribute(cudaDevAttrMultiProcessorCount);
    const auto kernel = pair_attention_kernel<kind, T, Mask>;
    if (!uses_wgmma() || !fits_shared_memory(kernel, pair_shared_bytes, optin) || sms <= 0) return false;
    // Items of 2 x 64 rows: heads_per_item of packed_heads (1, 2, 4 or 8), q_tile of 128 / heads.
    if (work.rows_per_item != pair_rows || 128 % params.heads_per_item != 0) return false;
    WsParams<T, Mask> wp{CUtensorMap{}, CUtensorMap{}, CUtensorMap{}, params, item_counter};
    // Each consumer's 64 rows as one Q box: half of the item's heads, or 64 of its positions.
    const int heads = int(params.heads_per_item);
    const bool split_heads = heads >= 2;
    wp.q_row_step = split_heads ? 0 : block_rows;
    wp.q_head_step = split_heads ? heads / 2 : 0;
    const unsigned box_rows = split_heads ? unsigned(params.geometry.q_tile) : unsigned(block_rows);
    const unsigned box_heads = split_heads ? unsigned(heads / 2) : 1u;
    if (!encode_maps(wp, box_rows, box_heads)) return false;
    wp.ping_pong = ping_pong_enabled();
#ifdef TRIMIX_CUDA_PAIR_BOUNDS
    wp.pair_bound = pair_bound();
    wp.pair_sleep_ns = pair_sleep_ns();
#endif
    // o in boxes of one warp's 16 rows: 16 positions of one head, as every Q box holds 16 or more
    // positions a head (handles_views gives o 16-byte rows, as the maps need).
    const Problem& pr = params.problem;
    for (int w = 0; w < 8; ++w) {
      wp.o_warp_row[w] = (w / 4) * wp.q_row_step + int((w % 4) * 16 % box_rows);
      wp.o_warp_head[w] = (w / 4) * wp.q_head_step + int((w % 4) * 16 / box_rows);
    }
    wp.o_by_tma = tma_store_enabled() && box_rows % 16 == 0 &&
                  encode_tensor_map(wp.o_map, kind, params.o, pr.o, pr.batch, pr.q_heads, pr.seq_q, pr.head_dim,
                                    16u, 1u);
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, pair_shared_bytes),
          "cudaFuncSetAttribute");
    index_t grid_limit = index_t(sms);
    if (ws_grid_limit() > 0) grid_limit = std::min<index_t>(grid_limit, ws_grid_limit());
    const unsigned grid = unsigned(std::min<index_t>(work.item_count(), grid_limit));
    kernel<<<grid, pair_threads, pair_shared_bytes, exec.cuda_stream()>>>(wp);
    check(cudaGetLastError(), "kernel launch");
    ++pair_launches();
    return true;
  }

  /// Whether `dynamic_bytes` of shared memory beside the kernel's static shared memory (as the
  /// loaded code has it: the aligned dynamic array pads it) fit the device's opt-in limit.
  template <class Kernel>
  static bool fits_shared_memory(Kernel kernel, int dynamic_bytes, int optin) {
    cudaFuncAttributes attributes{};
    if (cudaFuncGetAttributes(&attributes, kernel) != cudaSuccess) return false;
    return int(attributes.sharedSizeBytes) + dynamic_bytes <= optin;
  }

  /// The tensor maps of the warp-specialised and pair kernels: Q in boxes of q_box_rows positions x
  /// q_box_heads heads, K and V in 64-key boxes, and the sink fold's boxes (SinkWindow policies;
  /// none where the sink leaves no room or the driver refuses). The lazy rescale's slack. False
  /// where the driver refuses a map the kernel needs.
  template <class WsParamsT>
  static bool encode_maps(WsParamsT& wp, unsigned q_box_rows, unsigned q_box_heads) {
    using namespace cuda_engine;
    const auto& params = wp.p;
    const Problem& pr = params.problem;
    if (!lazy_rescale_enabled()) wp.rescale_slack = 0.0f;
    if (!encode_tensor_map(wp.q_map, kind, params.q, pr.q, pr.batch, pr.q_heads, pr.seq_q, pr.head_dim, q_box_rows,
                           q_box_heads) ||
        !encode_tensor_map(wp.k_map, kind, params.k, pr.k, pr.batch, pr.kv_heads, pr.seq_k, pr.head_dim, 64u, 1u) ||
        !encode_tensor_map(wp.v_map, kind, params.v, pr.v, pr.batch, pr.kv_heads, pr.seq_k, pr.head_dim, 64u, 1u))
      return false;
    if constexpr (has_sink_window<decltype(params.mask)>::value) {
      // Boxes for the sink fold: the sink keys rounded up to 8-row swizzle atoms, the rest of a
      // tile beside them.
      const index_t sink = params.mask.sink_window().sink;
      const int rows = sink >= 1 && sink <= kv_tile - 8 ? int(sink + 7) / 8 * 8 : 0;
      if (rows > 0 && sink_fold_enabled() &&
          encode_tensor_map(wp.k_sink_map, kind, params.k, pr.k, pr.batch, pr.kv_heads, pr.seq_k, pr.head_dim, unsigned(rows), 1u) &&
          encode_tensor_map(wp.v_sink_map, kind, params.v, pr.v, pr.batch, pr.kv_heads, pr.seq_k, pr.head_dim, unsigned(rows), 1u) &&
          encode_tensor_map(wp.k_body_map, kind, params.k, pr.k, pr.batch, pr.kv_heads, pr.seq_k, pr.head_dim, unsigned(kv_tile - rows), 1u) &&
          encode_tensor_map(wp.v_body_map, kind, params.v, pr.v, pr.batch, pr.kv_heads, pr.seq_k, pr.head_dim, unsigned(kv_tile - rows), 1u))
        wp.fold_rows = rows;
    }
    return true;
  }

  template <int Dim, class Params>
  static void launch(const Kokkos::Cuda& exec, const Plan<Kokkos::CudaSpace>& work, const Params& params) {
    using namespace cuda_engine;
    using Mask = decltype(params.mask);
    const auto kernel = attention_kernel<Dim, kind, T, Mask>;
    constexpr int bytes = shared_bytes<Dim>();
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), "cudaFuncSetAttribute");
    // All of the SM's unified memory as shared memory: three CTAs need 225 KB of the 228 at head
    // dim 128 (K / V reach the kernel only through shared memory). Not measured against the
    // default at head dim 64, whose streaming kernel has been 8-9% slower since (bench/NOTES.md).
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, int(cudaSharedmemCarveoutMaxShared)),
          "cudaFuncSetAttribute");
    kernel<<<unsigned(work.item_count() * (params.item_rows / block_rows)), threads, bytes, exec.cuda_stream()>>>(params);
    check(cudaGetLastError(), "kernel launch");
  }
};

}  // namespace trimix::impl

#endif  // KOKKOS_ENABLE_CUDA && __CUDACC__
