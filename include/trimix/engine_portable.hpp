#pragma once
/// \file engine_portable.hpp
/// The portable tile engine: the two matrix products of a tile, on fp32 tiles in team scratch,
/// written with Kokkos' team model only, so it is correct on every backend.
///
/// Work is cut into register micro-tiles of `row_block` rows x `lane_block` columns that one team
/// member computes alone, distributed over all threads and vector lanes of the team with
/// TeamVectorRange (no lane repeats another's work, whatever the vector length). The innermost
/// loops run over `lane_block` contiguous floats with compile-time bounds, which CPU compilers turn
/// into SIMD FMAs; on GPUs each member keeps its micro-tile in registers.

#include <trimix/config.hpp>
#include <trimix/element.hpp>
#include <trimix/softmax.hpp>

#include <type_traits>

/// Marks a loop whose iterations are independent as a SIMD loop on host compilers that support
/// OpenMP SIMD (active with -fopenmp or -fopenmp-simd). Without it GCC vectorises the wrong loop of
/// the portable micro-kernels (the reduction over head_dim, with strided loads and shuffles).
#if defined(_OPENMP) && !defined(__CUDA_ARCH__) && !defined(__HIP_DEVICE_COMPILE__)
#define TRIMIX_SIMD _Pragma("omp simd")
#else
#define TRIMIX_SIMD
#endif

namespace trimix {

/// Launch and tile parameters of the portable engine on an execution space. Specialise it to tune
/// a backend; the defaults suit CPUs (one thread per team, cache-sized tiles).
/// `q_rows` must be a multiple of `row_block`, the rows of the engine's register micro-tile.
template <class ExecSpace, class = void>
struct portable_engine_traits {
  static constexpr int team_size = 1;
  static constexpr int vector_length = 1;
  static constexpr index_t q_rows = 48;
  static constexpr index_t kv_tile = 64;
  static constexpr index_t max_heads_per_item = 8;
  /// 6 rows x 16 columns: 12 independent AVX2 accumulators (enough to cover the FMA latency) and
  /// 8 loads per 12 FMAs; 4 rows were 1.8x slower (bench/NOTES.md).
  static constexpr index_t row_block = 6;
  /// Columns of a micro-tile. With AVX-512 a 16-column block is one register, so 6 x 16 would
  /// leave 6 accumulators (fewer than latency x 2 FMA pipes) and 7 loads per 6 FMAs; 6 x 32 keeps
  /// 12 accumulators in the 32 zmm registers, like 6 x 16 on AVX2.
#if defined(__AVX512F__)
  static constexpr index_t lane_block = 32;
#else
  static constexpr index_t lane_block = 16;
#endif
};

/// GPU-like spaces (device memory not host accessible): many threads per team, smaller tiles.
template <class ExecSpace>
struct portable_engine_traits<
    ExecSpace, std::enable_if_t<!Kokkos::SpaceAccessibility<Kokkos::HostSpace,
                                                           typename ExecSpace::memory_space>::accessible>> {
  static constexpr int team_size = 64;
  static constexpr int vector_length = 1;
  static constexpr index_t q_rows = 16;
  static constexpr index_t kv_tile = 32;
  static constexpr index_t max_heads_per_item = 4;
  static constexpr index_t row_block = 4;
  static constexpr index_t lane_block = 16;
};

namespace impl {

/// Head dims and kv-tiles are multiples of this many columns (the narrowest micro-tile).
constexpr index_t portable_min_lane_block = 16;

/// The tile math with register micro-tiles of `RowBlock` rows x `LaneBlock` columns
/// (portable_engine_traits::row_block, ::lane_block).
template <index_t RowBlock = 4, index_t LaneBlock = portable_min_lane_block>
struct PortableEngine {
  static_assert(LaneBlock % portable_min_lane_block == 0, "lane_block: a multiple of 16 columns");
  static constexpr index_t row_block = RowBlock;    ///< rows of a register micro-tile
  static constexpr index_t lane_block = LaneBlock;  ///< contiguous columns of a micro-tile

  /// Whether the kernel stores Q pre-multiplied by scale * log2(e) (else it scales the scores).
  TRIMIX_FUNCTION static constexpr bool prescales_q(index_t, index_t, index_t) { return true; }

  /// The fp32 operand tiles of one kv-tile: kt[dim][kv_tile] = K transposed (dim-major, for the
  /// score micro-kernel) and v[kv_tile][dim], from `keys` rows of K and V (`k_seq` / `v_seq`
  /// elements apart, head-dim steps `k_dim` / `v_dim`); zeros past `keys`.
  template <class Team, class TK, class TV>
  TRIMIX_FUNCTION static void load_kv(const Team& team, const TK* k, index_t k_seq, index_t k_dim, const TV* v,
                                      index_t v_seq, index_t v_dim, index_t keys, index_t dim, index_t kv_tile,
                                      float* kt, float* vt) {
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, kv_tile), [&](index_t j) {
      float* kt_column = kt + j;
      float* v_out = vt + j * dim;
      if (j >= keys) {
        Kokkos::parallel_for(Kokkos::ThreadVectorRange(team, dim), [&](index_t d) {
          kt_column[d * kv_tile] = 0.0f;
          v_out[d] = 0.0f;
        });
        return;
      }
      const TK* k_row = k + j * k_seq;
      const TV* v_row = v + j * v_seq;
      // The head-dim steps as compile-time 1 (contiguous, the usual layouts: unit-stride loads
      // without stride products) or run-time strides.
      auto copy_row = [&](auto k_step, auto v_step) {
        Kokkos::parallel_for(Kokkos::ThreadVectorRange(team, dim), [&](index_t d) {
          kt_column[d * kv_tile] = element_traits<TK>::to_float(k_row[d * k_step]);
          v_out[d] = element_traits<TV>::to_float(v_row[d * v_step]);
        });
      };
      using unit_step = std::integral_constant<index_t, 1>;
      if (k_dim == 1 && v_dim == 1) copy_row(unit_step{}, unit_step{});
      else copy_row(k_dim, v_dim);
    });
  }

  /// S = Q Kt and the online-softmax step of a full tile (no column masked, no score scaling) in
  /// one pass, where an engine has such a kernel: returns false here, and the kernel runs scores
  /// and softmax_rows.
  template <class Team>
  TRIMIX_FUNCTION static bool scores_softmax(const Team&, const float*, const float*, float*, float*, float*,
                                             float*, index_t, index_t, index_t) {
    return false;
  }

  /// The online-softmax step of every row: rows of s[rows][kv_tile] (base-2 scores, masked ones
  /// -inf) become probabilities in place, columns at or past `keys` 0; m, l (running max and sum)
  /// move on and alpha[row] receives the factor that rescales the row's output.
  template <class Team>
  TRIMIX_FUNCTION static void softmax_rows(const Team& team, float* s, float* m, float* l, float* alpha,
                                           index_t rows, index_t keys, index_t kv_tile) {
    Kokkos::parallel_for(Kokkos::TeamVectorRange(team, rows), [&](index_t r) {
      softmax_row(s + r * kv_tile, keys, kv_tile, m[r], l[r], alpha[r]);
    });
  }

  /// One row of softmax_rows.
  TRIMIX_FUNCTION static void softmax_row(float* s, index_t keys, index_t kv_tile, float& m, float& l,
                                          float& alpha) {
    constexpr index_t lanes = portable_min_lane_block;  // independent partial max / sum: vectorisable
    for (index_t j = keys; j < kv_tile; ++j) s[j] = minus_infinity;
    float lane_max[lanes], lane_sum[lanes];
    for (index_t c = 0; c < lanes; ++c) lane_max[c] = minus_infinity, lane_sum[c] = 0.0f;
    for (index_t j0 = 0; j0 < kv_tile; j0 += lanes)
      for (index_t c = 0; c < lanes; ++c) lane_max[c] = lane_max[c] < s[j0 + c] ? s[j0 + c] : lane_max[c];
    float tile_max = minus_infinity;
    for (index_t c = 0; c < lanes; ++c) tile_max = tile_max < lane_max[c] ? lane_max[c] : tile_max;
    const float m_new = m < tile_max ? tile_max : m;
    const float shift = m_new == minus_infinity ? 0.0f : m_new;  // masked so far: p = 0, no NaN
    for (index_t j0 = 0; j0 < kv_tile; j0 += lanes) {
      TRIMIX_SIMD
      for (index_t c = 0; c < lanes; ++c) {
        const float e = exp2_nonpositive(s[j0 + c] - shift);
        s[j0 + c] = e;
        lane_sum[c] += e;
      }
    }
    float tile_sum = 0.0f;
    for (index_t c = 0; c < lanes; ++c) tile_sum += lane_sum[c];
    alpha = rescale_factor(m, m_new);
    l = l * alpha + tile_sum;
    m = m_new;
  }

  /// S[rows][kv_tile] = Q[rows][dim] * Kt[dim][kv_tile]. rows % row_block == 0,
  /// kv_tile % lane_block == 0.
  template <class Team>
  TRIMIX_FUNCTION static void scores(const Team& team, const float* q, const float* kt, float* s,
                                     index_t rows, index_t dim, index_t kv_tile) {
    const index_t col_blocks = kv_tile / lane_block;
    Kokkos::parallel_for(Kokkos::TeamVectorRange(team, (rows / row_block) * col_blocks),
                         [&](index_t tile) {
      const index_t r0 = (tile / col_blocks) * row_block;
      const index_t c0 = (tile % col_blocks) * lane_block;
      float acc[row_block][lane_block] = {};
      for (index_t d = 0; d < dim; ++d) {
        const float* k_row = kt + d * kv_tile + c0;
        for (index_t r = 0; r < row_block; ++r) {
          const float qv = q[(r0 + r) * dim + d];
          TRIMIX_SIMD
          for (index_t c = 0; c < lane_block; ++c) acc[r][c] += qv * k_row[c];
        }
      }
      for (index_t r = 0; r < row_block; ++r) {
        TRIMIX_SIMD
        for (index_t c = 0; c < lane_block; ++c) s[(r0 + r) * kv_tile + c0 + c] = acc[r][c];
      }
    });
  }

  /// O[rows][dim] = O * alpha[row] + P[rows][keys] * V[keys][dim], the first `keys` columns of P
  /// (row stride kv_tile). dim % 16 == 0; head dims that lane_block does not divide (80) take
  /// 16-column micro-tiles.
  template <class Team>
  TRIMIX_FUNCTION static void accumulate(const Team& team, const float* p, const float* v,
                                         const float* alpha, float* o, index_t rows, index_t dim,
                                         index_t kv_tile, index_t keys) {
    if (lane_block == portable_min_lane_block || dim % lane_block == 0)
      accumulate_blocks<lane_block>(team, p, v, alpha, o, rows, dim, kv_tile, keys);
    else
      accumulate_blocks<portable_min_lane_block>(team, p, v, alpha, o, rows, dim, kv_tile, keys);
  }

 private:
  template <index_t Lanes, class Team>
  TRIMIX_FUNCTION static void accumulate_blocks(const Team& team, const float* p, const float* v,
                                                const float* alpha, float* o, index_t rows,
                                                index_t dim, index_t kv_tile, index_t keys) {
    const index_t dim_blocks = dim / Lanes;
    Kokkos::parallel_for(Kokkos::TeamVectorRange(team, (rows / row_block) * dim_blocks),
                         [&](index_t tile) {
      const index_t r0 = (tile / dim_blocks) * row_block;
      const index_t d0 = (tile % dim_blocks) * Lanes;
      float acc[row_block][Lanes];
      // The column loops of the prologue and epilogue too: unmarked, GCC built them from xmm
      // shuffles (10-15% of the function in perf).
      for (index_t r = 0; r < row_block; ++r) {
        const float scale = alpha[r0 + r];
        TRIMIX_SIMD
        for (index_t c = 0; c < Lanes; ++c) acc[r][c] = o[(r0 + r) * dim + d0 + c] * scale;
      }
      for (index_t j = 0; j < keys; ++j) {
        const float* v_row = v + j * dim + d0;
        for (index_t r = 0; r < row_block; ++r) {
          const float pv = p[(r0 + r) * kv_tile + j];
          TRIMIX_SIMD
          for (index_t c = 0; c < Lanes; ++c) acc[r][c] += pv * v_row[c];
        }
      }
      for (index_t r = 0; r < row_block; ++r) {
        TRIMIX_SIMD
        for (index_t c = 0; c < Lanes; ++c) o[(r0 + r) * dim + d0 + c] = acc[r][c];
      }
    });
  }
};

}  // namespace impl
}  // namespace trimix
