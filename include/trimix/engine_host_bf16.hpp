#pragma once
/// \file engine_host_bf16.hpp
/// Host tile engine for bf16 Q, K, V on x86 CPUs with AVX512-BF16 (AMD Zen 4, Intel Sapphire
/// Rapids and newer): both products of a tile with vdpbf16ps, which multiplies pairs of bf16
/// values and adds both products into fp32 lanes: 32 multiply-adds per instruction, twice the
/// fp32 FMA's 16. The kernel's tiles stay fp32 (exact copies of the bf16 inputs, Q unscaled);
/// this engine packs them into bf16 pairs per tile (one conversion per element, each element
/// then used in 48 or more multiply-adds; Q is repacked every tile) and rounds the probabilities
/// P to bf16 for P V, as the GPU engines do. (The instructions treat bf16 subnormals as zero;
/// normal values pack exactly.)
///
/// The instructions are compiled per function (target attribute) and used when the CPU reports
/// them, checked once per process, so a portable build (no -march) runs them where they exist and
/// the portable engine elsewhere. TRIMIX_HOST_BF16DP=0 forces the portable engine (for measuring).

#include <trimix/engine_host_avx512.hpp>
#include <trimix/engine_portable.hpp>
#include <trimix/element.hpp>

#include <cstdint>
#include <cstdlib>
#include <type_traits>
#include <vector>

// The same compilers as the AVX-512 host code (x86-64 GCC >= 10 or Clang host passes).
#define TRIMIX_HAS_HOST_BF16DP TRIMIX_HAS_HOST_AVX512

namespace trimix::impl {

#if TRIMIX_HAS_HOST_BF16DP

namespace host_bf16 {

#define TRIMIX_BF16DP_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

/// Whether this CPU runs vdpbf16ps (and the user did not turn it off).
inline bool enabled() {
  static const bool answer = [] {
    if (switched_off("TRIMIX_HOST_BF16DP")) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512bf16");
  }();
  return answer;
}

/// Per-thread staging for the packed operands (teams are single threads on host spaces).
inline std::uint16_t* staging(std::size_t which, std::size_t elements) {
  static thread_local std::vector<std::uint16_t> buffers[2];
  if (buffers[which].size() < elements) buffers[which].resize(elements);
  return buffers[which].data();
}

/// n floats (n % 32 == 0) -> bf16, in order, round to nearest even.
TRIMIX_BF16DP_TARGET inline void pack_rows(const float* in, std::uint16_t* out, index_t n) {
  for (index_t i = 0; i < n; i += 32) {
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(in + i + 16), _mm512_loadu_ps(in + i));
    _mm512_storeu_si512(reinterpret_cast<void*>(out + i), (__m512i)v);
  }
}

/// Rows a and b (n floats each, n % 16 == 0) -> interleaved bf16 pairs a0 b0 a1 b1 ...
TRIMIX_BF16DP_TARGET inline void pack_pairs(const float* a, const float* b, std::uint16_t* out, index_t n) {
  // cvtne2ps gives [a0..a15, b0..b15]; the permutation interleaves them.
  alignas(64) static constexpr std::uint16_t order[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,
                                                          21, 6, 22, 7, 23, 8,  24, 9,  25, 10, 26,
                                                          11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i interleave = _mm512_load_si512(reinterpret_cast<const void*>(order));
  for (index_t i = 0; i < n; i += 16) {
    const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(b + i), _mm512_loadu_ps(a + i));
    const __m512i pairs = _mm512_permutexvar_epi16(interleave, (__m512i)v);
    _mm512_storeu_si512(reinterpret_cast<void*>(out + 2 * i), pairs);
  }
}

TRIMIX_BF16DP_TARGET inline __m512bh pair_of(const std::uint16_t* p) {
  std::uint32_t bits;
  __builtin_memcpy(&bits, p, sizeof bits);
  return (__m512bh)_mm512_set1_epi32(int(bits));
}
TRIMIX_BF16DP_TARGET inline __m512bh load_pairs(const std::uint16_t* p) {
  return (__m512bh)_mm512_loadu_si512(reinterpret_cast<const void*>(p));
}

/// S[rows][kv_tile] = Q[rows][dim] Kt[dim][kv_tile] from fp32 tiles holding bf16 values.
/// rows % RowBlock == 0, kv_tile % 64 == 0, dim % 32 == 0.
template <int RowBlock>
TRIMIX_BF16DP_TARGET void scores(const float* q, const float* kt, float* s, index_t rows, index_t dim,
                                 index_t kv_tile) {
  std::uint16_t* qb = staging(0, std::size_t(rows * dim));
  std::uint16_t* kp = staging(1, std::size_t(dim * kv_tile));
  pack_rows(q, qb, rows * dim);
  for (index_t d2 = 0; d2 < dim / 2; ++d2)  // kp[d2][key][2]: key's dims 2 d2 and 2 d2 + 1
    pack_pairs(kt + 2 * d2 * kv_tile, kt + (2 * d2 + 1) * kv_tile, kp + 2 * d2 * kv_tile, kv_tile);
  for (index_t r0 = 0; r0 < rows; r0 += RowBlock) {
    for (index_t c0 = 0; c0 < kv_tile; c0 += 64) {
      __m512 acc[RowBlock][4];
      for (int r = 0; r < RowBlock; ++r)
        for (int k = 0; k < 4; ++k) acc[r][k] = _mm512_setzero_ps();
      for (index_t d2 = 0; d2 < dim / 2; ++d2) {
        const std::uint16_t* kb = kp + 2 * (d2 * kv_tile + c0);
        __m512bh b[4];
        for (int k = 0; k < 4; ++k) b[k] = load_pairs(kb + 32 * k);
        for (int r = 0; r < RowBlock; ++r) {
          const __m512bh a = pair_of(qb + (r0 + r) * dim + 2 * d2);
          for (int k = 0; k < 4; ++k) acc[r][k] = _mm512_dpbf16_ps(acc[r][k], a, b[k]);
        }
      }
      for (int r = 0; r < RowBlock; ++r)
        for (int k = 0; k < 4; ++k) _mm512_storeu_ps(s + (r0 + r) * kv_tile + c0 + 16 * k, acc[r][k]);
    }
  }
}

/// O[rows][dim] = O * alpha[row] + P[rows][kv_tile] V[kv_tile][dim], P rounded to bf16. Columns of
/// P at or past the tile's keys are 0 and V's rows there are zeros (the kernel's copy).
/// rows % RowBlock == 0, kv_tile % 32 == 0, dim % 16 == 0.
template <int RowBlock, int Blocks>
TRIMIX_BF16DP_TARGET void accumulate_columns(const std::uint16_t* pb, const std::uint16_t* vp, const float* alpha,
                                             float* o, index_t r0, index_t d0, index_t dim, index_t kv_tile) {
  __m512 acc[RowBlock][Blocks];
  for (int r = 0; r < RowBlock; ++r) {
    const __m512 scale = _mm512_set1_ps(alpha[r0 + r]);
    for (int k = 0; k < Blocks; ++k)
      acc[r][k] = _mm512_mul_ps(_mm512_loadu_ps(o + (r0 + r) * dim + d0 + 16 * k), scale);
  }
  for (index_t j2 = 0; j2 < kv_tile / 2; ++j2) {
    const std::uint16_t* vb = vp + 2 * (j2 * dim + d0);
    __m512bh b[Blocks];
    for (int k = 0; k < Blocks; ++k) b[k] = load_pairs(vb + 32 * k);
    for (int r = 0; r < RowBlock; ++r) {
      const __m512bh a = pair_of(pb + (r0 + r) * kv_tile + 2 * j2);
      for (int k = 0; k < Blocks; ++k) acc[r][k] = _mm512_dpbf16_ps(acc[r][k], a, b[k]);
    }
  }
  for (int r = 0; r < RowBlock; ++r)
    for (int k = 0; k < Blocks; ++k) _mm512_storeu_ps(o + (r0 + r) * dim + d0 + 16 * k, acc[r][k]);
}

template <int RowBlock>
TRIMIX_BF16DP_TARGET void accumulate(const float* p, const float* v, const float* alpha, float* o, index_t rows,
                                     index_t dim, index_t kv_tile) {
  std::uint16_t* pb = staging(0, std::size_t(rows * kv_tile));
  std::uint16_t* vp = staging(1, std::size_t(dim * kv_tile));
  pack_rows(p, pb, rows * kv_tile);
  for (index_t j2 = 0; j2 < kv_tile / 2; ++j2)  // vp[j2][dim][2]: keys 2 j2 and 2 j2 + 1
    pack_pairs(v + 2 * j2 * dim, v + (2 * j2 + 1) * dim, vp + 2 * j2 * dim, dim);
  for (index_t r0 = 0; r0 < rows; r0 += RowBlock) {
    index_t d0 = 0;
    for (; d0 + 64 <= dim; d0 += 64) accumulate_columns<RowBlock, 4>(pb, vp, alpha, o, r0, d0, dim, kv_tile);
    for (; d0 < dim; d0 += 16) accumulate_columns<RowBlock, 1>(pb, vp, alpha, o, r0, d0, dim, kv_tile);
  }
}

#undef TRIMIX_BF16DP_TARGET

}  // namespace host_bf16

#endif  // TRIMIX_HAS_HOST_BF16DP

/// The host engine for bf16 inputs (HostAvx512Engine's copy and softmax), with the AVX512-BF16
/// products where the CPU has them. There Q arrives unscaled (bf16 Q stays exact; the kernel
/// scales the scores), so the bf16 packing is exact for Q, K and V (normal numbers).
/// All translation units of a program must see the same TRIMIX_HAS_HOST_AVX512 (e.g. no mix of
/// nvcc- and g++-compiled calls of one kernel instantiation): the engine is part of the kernel.
template <index_t RowBlock, index_t LaneBlock>
struct HostBf16Engine : HostAvx512Engine<RowBlock, LaneBlock> {
  using Base = HostAvx512Engine<RowBlock, LaneBlock>;
  /// Q unscaled where the bf16 products run (the packing must be exact), pre-scaled elsewhere
  /// (exactly the portable engine).
  static bool prescales_q(index_t rows, index_t dim, index_t kv_tile) { return !uses_bf16dp(rows, dim, kv_tile); }

  /// Whether a tile of this shape takes the vdpbf16ps path.
  static bool uses_bf16dp(index_t rows, index_t dim, index_t kv_tile) {
#if TRIMIX_HAS_HOST_BF16DP
    return host_bf16::enabled() && rows % RowBlock == 0 && kv_tile % 64 == 0 && dim % 32 == 0;
#else
    (void)rows, (void)dim, (void)kv_tile;
    return false;
#endif
  }

  template <class Team>
  static void scores(const Team& team, const float* q, const float* kt, float* s, index_t rows, index_t dim,
                     index_t kv_tile) {
#if TRIMIX_HAS_HOST_BF16DP
    if (team.team_size() == 1 && uses_bf16dp(rows, dim, kv_tile))
      return host_bf16::scores<int(RowBlock)>(q, kt, s, rows, dim, kv_tile);
#endif
    Base::scores(team, q, kt, s, rows, dim, kv_tile);
  }

  template <class Team>
  static void accumulate(const Team& team, const float* p, const float* v, const float* alpha, float* o,
                         index_t rows, index_t dim, index_t kv_tile, index_t keys) {
#if TRIMIX_HAS_HOST_BF16DP
    if (team.team_size() == 1 && uses_bf16dp(rows, dim, kv_tile))
      return host_bf16::accumulate<int(RowBlock)>(p, v, alpha, o, rows, dim, kv_tile);
#endif
    Base::accumulate(team, p, v, alpha, o, rows, dim, kv_tile, keys);
  }
};

/// The engine the portable kernel uses: on host-accessible spaces HostBf16Engine for bf16 Q, K, V
/// and HostAvx512Engine for the other element types (each checks the CPU at run time), else
/// PortableEngine.
template <class ExecSpace, class TQ, class TK, class TV, index_t RowBlock, index_t LaneBlock>
struct portable_engine_select {
  static constexpr bool host = Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename ExecSpace::memory_space>::accessible;
  static constexpr bool bf16_inputs =
      std::is_same_v<TQ, trimix::bf16> && std::is_same_v<TK, trimix::bf16> && std::is_same_v<TV, trimix::bf16>;
  using type = std::conditional_t<
      host && bf16_inputs && TRIMIX_HAS_HOST_BF16DP, HostBf16Engine<RowBlock, LaneBlock>,
      std::conditional_t<host && TRIMIX_HAS_HOST_AVX512, HostAvx512Engine<RowBlock, LaneBlock>,
                         PortableEngine<RowBlock, LaneBlock>>>;
};

}  // namespace trimix::impl
