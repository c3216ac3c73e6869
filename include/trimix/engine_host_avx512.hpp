#pragma once
/// \file engine_host_avx512.hpp
/// The portable engine's K / V tile copy and row softmax in AVX-512, for host execution spaces on
/// x86 CPUs that have it (Intel Skylake-SP and newer, AMD Zen 4 and newer). Portable C++ left
/// both slow on CPUs (bench/NOTES.md, Zen 5 profile): K's transpose was one scalar store per
/// element, and the row max and sum became chains of 15 dependent scalar operations per row;
/// together about a quarter of the fp32 kernel. Here K is transposed in 16 x 16 register blocks
/// and each row reduces with vector operations. Full 64-key tiles go further: S and the softmax
/// step in one pass whose scores never leave registers (scores_softmax64: 1.11-1.31x on the H200
/// machine's Xeon host, level with the two passes on Zen 5). Also the shared AVX-512 helpers of
/// the host engines (the AMX engine uses the transpose and the vector exp2).
///
/// Compiled per function (target attribute) and used where the CPU reports AVX-512 F/BW/VL,
/// checked once per process, so a build without -march runs it where it exists.
/// TRIMIX_HOST_AVX512=0 turns it off (the portable copy and softmax then run, for measuring);
/// TRIMIX_HOST_FUSED=0 only the fused pass.

#include <trimix/element.hpp>
#include <trimix/engine_portable.hpp>
#include <trimix/softmax.hpp>

#include <cstdint>
#include <cstdlib>
#include <type_traits>

// x86-64 GCC >= 10 or Clang host compilers only (not nvcc, hipcc, nvc++, SYCL device passes).
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) &&   \
    !defined(__CUDACC__) && !defined(__HIPCC__) && !defined(__INTEL_COMPILER) &&             \
    !defined(__NVCOMPILER) && !defined(__SYCL_DEVICE_ONLY__) && (defined(__clang__) || __GNUC__ >= 10)
#define TRIMIX_HAS_HOST_AVX512 1
#include <immintrin.h>
#else
#define TRIMIX_HAS_HOST_AVX512 0
#endif

namespace trimix::impl {

#if TRIMIX_HAS_HOST_AVX512

namespace host_avx512 {

#define TRIMIX_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))

/// Whether this CPU runs AVX-512 F/BW/VL (and the user did not turn it off).
inline bool enabled() {
  static const bool answer = [] {
    if (switched_off("TRIMIX_HOST_AVX512")) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
  }();
  return answer;
}

// GCC 12 reports the intrinsics' own _mm512_undefined_* sources as uninitialized once inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

/// Transposes 16 rows of 16 32-bit words in registers and stores row j of the result (word j of
/// every input row) at out + j * out_stride. Four rounds of 16 shuffles: 32-bit and 64-bit
/// unpacks transpose the 4 x 4 blocks inside each 128-bit lane, two lane shuffles move the blocks.
TRIMIX_AVX512_TARGET inline void store_transposed(__m512i (&r)[16], std::uint32_t* out, index_t out_stride) {
  __m512i a[16];
  for (int i = 0; i < 16; i += 2) {
    a[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    a[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  // r[i + c], i in {0, 4, 8, 12}: in lane L, column 4 L + c of rows i .. i + 3.
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(a[i], a[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(a[i], a[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(a[i + 1], a[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(a[i + 1], a[i + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i e0 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x44), e1 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xEE);
    const __m512i f0 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x44),
                  f1 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xEE);
    _mm512_storeu_si512(static_cast<void*>(out + (0 + c) * out_stride), _mm512_shuffle_i32x4(e0, f0, 0x88));
    _mm512_storeu_si512(static_cast<void*>(out + (4 + c) * out_stride), _mm512_shuffle_i32x4(e0, f0, 0xDD));
    _mm512_storeu_si512(static_cast<void*>(out + (8 + c) * out_stride), _mm512_shuffle_i32x4(e1, f1, 0x88));
    _mm512_storeu_si512(static_cast<void*>(out + (12 + c) * out_stride), _mm512_shuffle_i32x4(e1, f1, 0xDD));
  }
}

/// out[j][i] = in[i][j] for a 16 x 16 block of 32-bit words: rows of `in` `in_stride` words
/// apart, rows of `out` `out_stride` words apart.
TRIMIX_AVX512_TARGET inline void transpose_words(const std::uint32_t* in, index_t in_stride, std::uint32_t* out,
                                                 index_t out_stride) {
  __m512i r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_si512(static_cast<const void*>(in + i * in_stride));
  store_transposed(r, out, out_stride);
}

/// 2^x for x <= 0 in the lanes of `lanes`, 0 elsewhere and below -126 (and for -inf): the
/// polynomial of the scalar exp2_nonpositive.
TRIMIX_AVX512_TARGET inline __m512 exp2_nonpositive(__m512 x, __mmask16 lanes) {
  const __m512 floor_limit = _mm512_set1_ps(-126.0f);
  const __m512 clamped = _mm512_max_ps(x, floor_limit);
  const __m512 whole = _mm512_roundscale_ps(clamped, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(clamped, whole);
  __m512 poly = _mm512_set1_ps(2.169060899e-4f);
  poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(1.244308194e-3f));
  poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(9.678472765e-3f));
  poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(5.548352376e-2f));
  poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(2.402298003e-1f));
  poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(6.931470037e-1f));
  poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(1.0f));
  const __mmask16 keep = _mm512_mask_cmp_ps_mask(lanes, x, floor_limit, _CMP_GE_OQ);
  // NaN stays NaN (as in the scalar version), so that a NaN score reaches the row's sum and output.
  const __mmask16 nan = _mm512_mask_cmp_ps_mask(lanes, x, x, _CMP_UNORD_Q);
  return _mm512_mask_mov_ps(_mm512_maskz_scalef_ps(keep, poly, whole), nan, x);
}

/// Element types whose 16-element loads convert here (others take the portable copy).
template <class T>
constexpr bool converts = std::is_same_v<T, float> || std::is_same_v<T, bf16> || std::is_same_v<T, fp16>;

/// 16 elements as fp32 (exact conversions).
TRIMIX_AVX512_TARGET inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
TRIMIX_AVX512_TARGET inline __m512 load16(const bf16* p) {  // bf16 is a float's top half
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
TRIMIX_AVX512_TARGET inline __m512 load16(const fp16* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

/// PortableEngine::load_kv for contiguous head dims: kt[dim][kv_tile] (K transposed in 16 x 16
/// blocks) and vt[kv_tile][dim]. dim % 16 == 0, kv_tile % 16 == 0.
template <class TK, class TV>
TRIMIX_AVX512_TARGET void load_kv(const TK* k, index_t k_seq, const TV* v, index_t v_seq, index_t keys, index_t dim,
                                  index_t kv_tile, float* kt, float* vt) {
  for (index_t j = 0; j < kv_tile; ++j)
    for (index_t d = 0; d < dim; d += 16)
      _mm512_storeu_ps(vt + j * dim + d, j < keys ? load16(v + j * v_seq + d) : _mm512_setzero_ps());
  for (index_t j0 = 0; j0 < kv_tile; j0 += 16)
    for (index_t d0 = 0; d0 < dim; d0 += 16) {
      __m512i r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = _mm512_castps_si512(j0 + i < keys ? load16(k + (j0 + i) * k_seq + d0) : _mm512_setzero_ps());
      store_transposed(r, reinterpret_cast<std::uint32_t*>(kt + d0 * kv_tile + j0), kv_tile);
    }
}

/// Lanes of the 16 columns from `c` that hold keys (columns below `keys`).
inline __mmask16 key_lanes(index_t keys, index_t c) {
  return keys - c >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (keys > c ? keys - c : 0)) - 1);
}

/// PortableEngine::softmax_rows, each row reduced in vector registers. kv_tile % 16 == 0.
TRIMIX_AVX512_TARGET inline void softmax_rows(float* s, float* m, float* l, float* alpha, index_t rows,
                                              index_t keys, index_t kv_tile) {
  for (index_t r = 0; r < rows; ++r) {
    float* row = s + r * kv_tile;
    __m512 most = _mm512_set1_ps(minus_infinity);
    for (index_t c = 0; c < kv_tile; c += 16) {
      const __mmask16 lanes = key_lanes(keys, c);
      // max(x, most) returns `most` where x is NaN: NaN scores do not enter the max, as in the
      // portable version (they reach the sum through exp2).
      most = _mm512_mask_max_ps(most, lanes, _mm512_loadu_ps(row + c), most);
    }
    const float tile_max = _mm512_reduce_max_ps(most);
    const float m_new = m[r] < tile_max ? tile_max : m[r];
    const __m512 shift = _mm512_set1_ps(m_new == minus_infinity ? 0.0f : m_new);  // masked so far: p = 0
    __m512 sum = _mm512_setzero_ps();
    for (index_t c = 0; c < kv_tile; c += 16) {
      const __mmask16 lanes = key_lanes(keys, c);
      const __m512 e = exp2_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(row + c), shift), lanes);
      _mm512_storeu_ps(row + c, e);
      sum = _mm512_add_ps(sum, e);
    }
    alpha[r] = rescale_factor(m[r], m_new);
    l[r] = l[r] * alpha[r] + _mm512_reduce_add_ps(sum);
    m[r] = m_new;
  }
}

/// The softmax step of one 6-row block of a fused tile: acc[6][64] scores (base 2) become
/// probabilities in s; m, l, alpha of the rows move on (as softmax_rows). Out of line on purpose:
/// inlined, GCC kept the exp2 polynomial's 8 constants in registers across the products' loop,
/// which then had too few registers for its 24 accumulators and 4 Kt vectors and read Kt from
/// memory in every FMA (1.5x slower on Zen 5).
TRIMIX_AVX512_TARGET __attribute__((noinline)) inline void softmax_block64(const __m512 (&acc)[6][4], float* s,
                                                                           float* m, float* l, float* alpha) {
  for (int r = 0; r < 6; ++r) {
    // As softmax_rows: NaN scores stay out of the max (max(x, most) returns `most` for NaN x).
    __m512 most = _mm512_set1_ps(minus_infinity);
    for (int c = 0; c < 4; ++c) most = _mm512_max_ps(acc[r][c], most);
    const float tile_max = _mm512_reduce_max_ps(most);
    const float m_new = m[r] < tile_max ? tile_max : m[r];
    const __m512 shift = _mm512_set1_ps(m_new == minus_infinity ? 0.0f : m_new);
    __m512 sum = _mm512_setzero_ps();
    for (int c = 0; c < 4; ++c) {
      const __m512 e = exp2_nonpositive(_mm512_sub_ps(acc[r][c], shift), __mmask16(0xFFFF));
      _mm512_storeu_ps(s + r * 64 + 16 * c, e);
      sum = _mm512_add_ps(sum, e);
    }
    alpha[r] = rescale_factor(m[r], m_new);
    l[r] = l[r] * alpha[r] + _mm512_reduce_add_ps(sum);
    m[r] = m_new;
  }
}

/// S = Q Kt and its online-softmax step in one pass, for full 64-key tiles (no column masked):
/// each 6-row block's scores stay in 24 registers from the first FMA to the softmax, instead of a
/// store, a max pass and an exp pass over s. The micro-tile (6 rows x 64 keys: 4 Kt loads and 6
/// broadcasts per 24 FMAs) also loads less per FMA than the portable 6 x 32.
/// q[rows][dim] (base-2 scaled), kt[dim][64]; p (= s) gets [rows][64]. rows % 6 == 0.
TRIMIX_AVX512_TARGET inline void scores_softmax64(const float* q, const float* kt, float* s, float* m, float* l,
                                                  float* alpha, index_t rows, index_t dim) {
  constexpr int block_rows = 6, vectors = 4;  // 24 accumulators + 4 Kt vectors + 1 broadcast
  for (index_t r0 = 0; r0 < rows; r0 += block_rows) {
    __m512 acc[block_rows][vectors];
    for (int r = 0; r < block_rows; ++r)
      for (int c = 0; c < vectors; ++c) acc[r][c] = _mm512_setzero_ps();
    const float* q_block = q + r0 * dim;
    for (index_t d = 0; d < dim; ++d) {
      const float* k_row = kt + d * 64;
      const __m512 b0 = _mm512_loadu_ps(k_row), b1 = _mm512_loadu_ps(k_row + 16), b2 = _mm512_loadu_ps(k_row + 32),
                   b3 = _mm512_loadu_ps(k_row + 48);
      for (int r = 0; r < block_rows; ++r) {
        const __m512 a = _mm512_set1_ps(q_block[r * dim + d]);
        acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
        acc[r][2] = _mm512_fmadd_ps(a, b2, acc[r][2]);
        acc[r][3] = _mm512_fmadd_ps(a, b3, acc[r][3]);
      }
    }
    softmax_block64(acc, s + r0 * 64, m + r0, l + r0, alpha + r0);
  }
}

#pragma GCC diagnostic pop
#undef TRIMIX_AVX512_TARGET

}  // namespace host_avx512

#endif  // TRIMIX_HAS_HOST_AVX512

/// The portable engine on host spaces, with the K / V copy and the row softmax in AVX-512 where
/// the CPU has it (one thread per team, contiguous head dims, float / bf16 / fp16 inputs).
/// All translation units of a program must see the same TRIMIX_HAS_HOST_AVX512 (no mix of nvcc-
/// and g++-compiled calls of one kernel instantiation): the engine is part of the kernel.
template <index_t RowBlock, index_t LaneBlock>
struct HostAvx512Engine : PortableEngine<RowBlock, LaneBlock> {
  using Base = PortableEngine<RowBlock, LaneBlock>;

  template <class Team, class TK, class TV>
  static void load_kv(const Team& team, const TK* k, index_t k_seq, index_t k_dim, const TV* v, index_t v_seq,
                      index_t v_dim, index_t keys, index_t dim, index_t kv_tile, float* kt, float* vt) {
#if TRIMIX_HAS_HOST_AVX512
    if constexpr (host_avx512::converts<TK> && host_avx512::converts<TV>)
      if (team.team_size() == 1 && k_dim == 1 && v_dim == 1 && dim % 16 == 0 && kv_tile % 16 == 0 &&
          host_avx512::enabled())
        return host_avx512::load_kv(k, k_seq, v, v_seq, keys, dim, kv_tile, kt, vt);
#endif
    Base::load_kv(team, k, k_seq, k_dim, v, v_seq, v_dim, keys, dim, kv_tile, kt, vt);
  }

  /// S = Q Kt and the softmax step of a full tile in one pass (64-key tiles, rows a multiple of
  /// 6); false where it does not apply, and the kernel takes scores + softmax_rows.
  template <class Team>
  static bool scores_softmax(const Team& team, const float* q, const float* kt, float* s, float* m, float* l,
                             float* alpha, index_t rows, index_t dim, index_t kv_tile) {
#if TRIMIX_HAS_HOST_AVX512
    if (team.team_size() == 1 && kv_tile == 64 && rows % 6 == 0 && host_avx512::enabled() && fuses()) {
      host_avx512::scores_softmax64(q, kt, s, m, l, alpha, rows, dim);
      return true;
    }
#endif
    (void)team, (void)q, (void)kt, (void)s, (void)m, (void)l, (void)alpha, (void)rows, (void)dim, (void)kv_tile;
    return false;
  }
  /// TRIMIX_HOST_FUSED=0 turns scores_softmax off (for measuring).
  static bool fuses() {
    static const bool answer = !switched_off("TRIMIX_HOST_FUSED");
    return answer;
  }

  template <class Team>
  static void softmax_rows(const Team& team, float* s, float* m, float* l, float* alpha, index_t rows, index_t keys,
                           index_t kv_tile) {
#if TRIMIX_HAS_HOST_AVX512
    if (team.team_size() == 1 && kv_tile % 16 == 0 && host_avx512::enabled())
      return host_avx512::softmax_rows(s, m, l, alpha, rows, keys, kv_tile);
#endif
    Base::softmax_rows(team, s, m, l, alpha, rows, keys, kv_tile);
  }
};

}  // namespace trimix::impl
