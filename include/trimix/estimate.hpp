#pragma once
/// \file estimate.hpp
/// Dynamic-sparsity estimators: Kokkos kernels that look at Q and K and return a BlockSparseMap
/// with one row of Full kv-blocks per (batch, query head, q-block), meant to be used as
/// `trimix::Causal{} & map.policy()` (the estimators never list a block above the causal diagonal,
/// and the Causal intersection masks the keys past each row inside the diagonal blocks).
///
/// - `estimate_vertical_slash` (MInference's vertical-slash pattern): the softmax rows of the last
///   `last_q` queries, summed per key column (vertical scores) and per diagonal offset o = p - j
///   (slash scores); the top `vertical_size` columns and top `slash_size` diagonals are kept, the
///   first `sink` columns and the `local` most recent diagonals always (they count towards the
///   sizes, as in MInference). A q-block then lists every kv-block that holds a kept column at or
///   before its last position, or that a kept diagonal crosses inside the q-block's positions.
///   Top-k is a per-head radix select on the scores' float bits (4 passes of 8 bits), so no sort
///   and no N-sized scratch. Work: 3 * last_q * seq_k * head_dim multiply-adds per head: the rows'
///   softmax LSE comes from trimix::attention (so on the tile engine: tensor cores on GPUs; it also
///   computes P V, discarded), then one scalar score pass sums the probabilities. Head dims are
///   those attention takes.
/// - `estimate_pooled_blocks` (FlexPrefill / XAttention style): Q and K mean-pooled per block,
///   block scores s(qb, kb) = scale * <qbar, kbar> over the causally visible kv-blocks, softmax per
///   q-block, and the kv-blocks of highest probability kept until their mass (block 0 and the
///   diagonal blocks, always kept, included) reaches `gamma`. The cut is a radix select over the
///   probabilities' float bits whose histogram sums mass instead of counting.
///
/// Memory: never a dense (q_blocks x kv_blocks) map. Working memory is O(seq) per head:
/// vertical-slash holds 2 * seq_k float scores, 2 * seq_k uint32 prefix counts, and last_q LSE
/// values plus a discarded last_q x head_dim output per head; pooled holds the pooled Q and K
/// (head_dim floats per block) and 4 scalars per block row. Team scratch holds at most one block
/// row of scores (pooled) or 16 query rows (vertical-slash). The map is built in two passes, a
/// count per block row, capacity = the longest row, then a fill writing sorted entries: its size
/// is batch * q_heads * q_blocks * capacity.
///
/// Layouts: q (batch, q_heads, seq_q, head_dim) and k (batch, kv_heads, seq_k, head_dim), or both
/// (batch, seq, heads, head_dim) with `layout = Layout::bshd`; any strides (views are read through
/// their strides). GQA: query head h reads kv-head h / (q_heads / kv_heads). seq_q <= seq_k,
/// bottom-right aligned: query row i sits at position seq_k - seq_q + i.

#include <trimix/attention.hpp>
#include <trimix/block_sparse.hpp>
#include <trimix/config.hpp>
#include <trimix/element.hpp>
#include <trimix/problem.hpp>
#include <trimix/softmax.hpp>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

/// OpenMP SIMD on the loops over the 16 query rows of a key (active with -fopenmp or
/// -fopenmp-simd): without it GCC may vectorise the reduction over head_dim instead, 2x slower.
#if defined(_OPENMP) && !defined(__CUDA_ARCH__) && !defined(__HIP_DEVICE_COMPILE__)
#define TRIMIX_ESTIMATE_SIMD _Pragma("omp simd")
#else
#define TRIMIX_ESTIMATE_SIMD TRIMIX_DEVICE_UNROLL
#endif

namespace trimix {

/// Options of estimate_vertical_slash (defaults: MInference's vertical-slash settings).
struct VerticalSlashOptions {
  /// Query rows whose attention is measured: the last `last_q` rows of q (1 <= last_q <= seq_q).
  index_t last_q = 64;
  /// Key columns kept, the `sink` forced ones included.
  index_t vertical_size = 1000;
  /// Diagonals (offsets o = p - j) kept, the `local` forced ones included.
  index_t slash_size = 6096;
  /// The first `sink` keys are always kept.
  index_t sink = 64;
  /// Diagonal offsets 0 .. local - 1 (the most recent keys of every query) are always kept.
  index_t local = 64;
  /// Rows (queries) and columns (keys) per block of the map.
  index_t block_q = 64, block_k = 64;
  /// Softmax scale; 1 / sqrt(head_dim) when unset.
  std::optional<double> scale;
  Layout layout = Layout::bhsd;
};

/// Options of estimate_pooled_blocks.
struct PooledBlockOptions {
  /// Probability mass of a block row the kept blocks must cover, in [0, 1]. 1 keeps every
  /// causally visible block; 0 keeps only block 0 and the diagonal blocks.
  double gamma = 0.9;
  /// Rows (queries) and columns (keys) per block, also the pooling windows.
  index_t block_q = 64, block_k = 64;
  /// Scale of the block scores; 1 / sqrt(head_dim) when unset.
  std::optional<double> scale;
  Layout layout = Layout::bhsd;
};

namespace impl {

/// Validated shapes and strides of an estimator's q and k.
struct EstimateShape {
  index_t batch = 0, q_heads = 0, kv_heads = 1, seq_q = 0, seq_k = 0, head_dim = 0;
  float scale_log2 = 0;  ///< scale * log2(e): scores are kept in base 2, as in softmax.hpp
  Strides4 q, k;
  TRIMIX_FUNCTION index_t group_size() const { return q_heads / kv_heads; }
  /// Position of query row i.
  TRIMIX_FUNCTION index_t position(index_t i) const { return seq_k - seq_q + i; }
};

template <class ExecSpace, class Q, class K>
constexpr bool check_estimate_views() {
  static_assert(Kokkos::is_view<Q>::value && Kokkos::is_view<K>::value,
                "trimix::estimate: q and k must be Kokkos::View");
  static_assert(Q::rank == 4 && K::rank == 4,
                "trimix::estimate: q and k must be rank-4 views (batch, heads, seq, head_dim) or "
                "(batch, seq, heads, head_dim)");
  static_assert(is_element_v<typename Q::non_const_value_type> && is_element_v<typename K::non_const_value_type>,
                "trimix::estimate: element types need a trimix::element_traits specialisation "
                "(float, double, trimix::bf16, trimix::fp16, Kokkos half_t / bhalf_t)");
  static_assert(Kokkos::SpaceAccessibility<ExecSpace, typename Q::memory_space>::accessible,
                "trimix::estimate: q is not accessible from the execution space");
  static_assert(Kokkos::SpaceAccessibility<ExecSpace, typename K::memory_space>::accessible,
                "trimix::estimate: k is not accessible from the execution space");
  return true;
}

/// Shapes of q and k, checked; throws std::invalid_argument naming the argument, touches no data.
template <class Q, class K>
EstimateShape describe_estimate(const char* api, const Q& q, const K& k, Layout layout,
                                const std::optional<double>& scale) {
  TRIMIX_REQUIRE(api, layout == Layout::bhsd || layout == Layout::bshd, "options.layout is not a Layout value");
  const bool bhsd = layout == Layout::bhsd;
  const char* order = bhsd ? "(batch, heads, seq, head_dim)" : "(batch, seq, heads, head_dim)";
  const int h_axis = bhsd ? 1 : 2, s_axis = bhsd ? 2 : 1;
  EstimateShape s;
  s.batch = index_t(q.extent(0));
  s.q_heads = index_t(q.extent(h_axis));
  s.seq_q = index_t(q.extent(s_axis));
  s.head_dim = index_t(q.extent(3));
  s.kv_heads = index_t(k.extent(h_axis));
  s.seq_k = index_t(k.extent(s_axis));
  TRIMIX_REQUIRE(api, q.data() != nullptr || q.span() == 0, "q ", describe_view(q), " is not allocated");
  TRIMIX_REQUIRE(api, k.data() != nullptr || k.span() == 0, "k ", describe_view(k), " is not allocated");
  TRIMIX_REQUIRE(api, index_t(k.extent(0)) == s.batch && index_t(k.extent(3)) == s.head_dim, "k ",
                 describe_view(k), " does not match q ", describe_view(q), " in batch or head_dim ", order);
  TRIMIX_REQUIRE(api, s.q_heads > 0 && s.kv_heads > 0, "q ", describe_view(q), " and k ", describe_view(k),
                 " must have heads ", order);
  TRIMIX_REQUIRE(api, s.q_heads % s.kv_heads == 0, "q heads (", s.q_heads, ") must be a multiple of k heads (",
                 s.kv_heads, "): q ", describe_view(q), ", k ", describe_view(k));
  TRIMIX_REQUIRE(api, s.seq_q <= s.seq_k, "q ", describe_view(q), " has more positions (", s.seq_q, ") than k ",
                 describe_view(k), " (", s.seq_k, "); queries are the last seq_q of seq_k positions");
  TRIMIX_REQUIRE(api, s.head_dim > 0, "head_dim of q ", describe_view(q), " must be positive");
  const double scale_value = scale ? *scale : 1.0 / std::sqrt(double(s.head_dim));
  TRIMIX_REQUIRE(api, std::isfinite(scale_value), "options.scale must be finite, got ", scale_value);
  s.scale_log2 = float(scale_value * double(log2e));
  s.q = strides_of(q, layout);
  s.k = strides_of(k, layout);
  return s;
}

template <class T>
TRIMIX_FORCEINLINE float load_float(const T* data, index_t offset) {
  return element_traits<std::remove_const_t<T>>::to_float(data[offset]);
}

/// Order-preserving key of a non-negative score: its float bits (0 for zero, negative or NaN).
TRIMIX_FORCEINLINE std::uint32_t score_key(float x) { return x > 0.0f ? bits_of(x) : 0u; }

/// Bins of one radix-select digit (8 bits, 4 passes over 32-bit keys).
constexpr int radix_bins = 256;
constexpr int radix_bits = 8;
constexpr int radix_passes = 4;

/// Key of a forced element (sink column, local diagonal): above every score.
constexpr std::uint32_t forced_key = 0xFFFFFFFFu;
/// Threshold above every score's key: keeps only forced elements.
constexpr std::uint32_t keep_forced_only = 0xFFFFFFFFu;

/// Team launch shape of the estimator kernels: one thread per team on CPUs (teams are the unit of
/// parallelism there, as in portable_engine_traits), `device_team_size` threads on GPU-like spaces.
template <class ExecSpace>
inline constexpr bool estimate_on_device_v =
    !Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename ExecSpace::memory_space>::accessible;

/// Bytes of `count` floats in team scratch, padded for get_shmem's alignment.
TRIMIX_FUNCTION std::size_t scratch_floats(index_t count) { return (std::size_t(count) * sizeof(float) + 15) / 16 * 16; }

/// Team policy with `bytes` of team scratch at level 0 when it fits there, else level 1.
template <class ExecSpace, class Tag = void>
auto estimate_team_policy(const ExecSpace& exec, index_t league, int device_team_size, std::size_t bytes,
                          int& level) {
  using Policy = std::conditional_t<std::is_void_v<Tag>, Kokkos::TeamPolicy<ExecSpace>,
                                    Kokkos::TeamPolicy<ExecSpace, Tag>>;
  const int team_size = estimate_on_device_v<ExecSpace> ? device_team_size : 1;
  level = 0;
  if (bytes == 0) return Policy(exec, int(league), team_size);
  bytes += 64;  // get_shmem's per-allocation alignment
  level = bytes <= std::size_t(Policy::scratch_size_max(0)) ? 0 : 1;
  return Policy(exec, int(league), team_size).set_scratch_size(level, Kokkos::PerTeam(bytes));
}

template <class Team>
TRIMIX_FUNCTION float* scratch_array(const Team& team, int level, index_t count) {
  return static_cast<float*>(team.team_scratch(level).get_shmem(scratch_floats(count)));
}

/// Kokkos Tools region for the duration of an estimator call.
struct EstimateRegion {
  explicit EstimateRegion(const std::string& name) { Kokkos::Profiling::pushRegion(name); }
  ~EstimateRegion() { Kokkos::Profiling::popRegion(); }
  EstimateRegion(const EstimateRegion&) = delete;
  EstimateRegion& operator=(const EstimateRegion&) = delete;
};

/// Radix select inside a team over `n` keys `key_of(e)` (e in [0, n)): the largest threshold T
/// such that the keys >= T weigh at least `need`, where an element weighs `weight_of(e)`
/// (1: the k-th largest key, k = need; a probability: the mass cut). Ties at T are all kept.
/// When the elements weigh less than `need` in total (rounding), T drops to the smallest key of
/// the last bin that held enough, i.e. everything that could be kept is kept.
/// `hist` is team scratch of radix_bins Weights, `shared` 2 words of team scratch.
template <class Weight, class Team, class KeyOf, class WeightOf>
TRIMIX_FUNCTION std::uint32_t team_radix_select(const Team& team, index_t n, Weight need, Weight* hist,
                                                std::uint32_t* shared, const KeyOf& key_of,
                                                const WeightOf& weight_of) {
  std::uint32_t prefix = 0;
  Weight remaining = need;
  for (int pass = 0; pass < radix_passes; ++pass) {
    const int shift = 32 - radix_bits * (pass + 1);
    // Keys whose digits above this one equal the prefix chosen so far.
    const std::uint32_t high_mask = pass == 0 ? 0u : 0xFFFFFFFFu << (shift + radix_bits);
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, radix_bins), [&](int bin) { hist[bin] = Weight(0); });
    team.team_barrier();
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, n), [&](index_t e) {
      const std::uint32_t key = key_of(e);
      if ((key & high_mask) == prefix) Kokkos::atomic_add(&hist[(key >> shift) & (radix_bins - 1)], weight_of(e));
    });
    team.team_barrier();
    Kokkos::single(Kokkos::PerTeam(team), [&]() {
      Weight above = 0;
      int chosen = -1;
      for (int bin = radix_bins - 1; bin >= 0; --bin) {
        if (above + hist[bin] >= remaining) {
          chosen = bin;
          break;
        }
        above += hist[bin];
      }
      if (chosen < 0) {
        shared[0] = prefix;  // not enough weight: keep the whole bin chosen so far
        shared[1] = 1u;
      } else {
        shared[0] = prefix | (std::uint32_t(chosen) << shift);
        shared[1] = 0u;
        hist[0] = remaining - above;  // handed to every thread below
      }
    });
    team.team_barrier();
    prefix = shared[0];
    const bool exhausted = shared[1] != 0u;
    if (!exhausted) remaining = hist[0];
    team.team_barrier();  // hist is cleared next pass
    if (exhausted) break;
  }
  return prefix;
}

// ---- vertical-slash -----------------------------------------------------------------------------

/// Query rows whose scores one thread holds in registers (per key).
constexpr index_t vs_rows_per_group = 16;
/// Keys per team of the score kernels.
constexpr index_t vs_key_chunk = 128;
/// Device score pass: query rows per team and group, head dims per scratch slice, and the block
/// of scores one thread holds (rows x keys).
constexpr index_t vs_device_rows = 64, vs_dim_slice = 32, vs_row_tile = 16, vs_key_tile = 4;

/// The score pass of the vertical-slash estimator, one team per (batch, query head, chunk of
/// vs_key_chunk keys). Rows are the last `last_q` queries, loaded 16 at a time into scratch as
/// [head_dim][16]; each thread takes keys of the chunk and computes their 16 scores. Their
/// probabilities p = exp2(s - lse2), lse2 the row's base-2 LSE, are summed per key (vertical, the
/// chunk's keys belong to the team) and per diagonal (slash: accumulated in scratch over the rows,
/// then one atomic add per diagonal the chunk touches).
template <class ExecSpace, class QElement, class KElement>
struct VerticalSlashScores {
  using memory_space = typename ExecSpace::memory_space;
  using Team = typename Kokkos::TeamPolicy<ExecSpace>::member_type;
  const QElement* q;
  const KElement* k;
  EstimateShape shape;
  index_t last_q = 0, chunks = 0;
  int scratch_level = 0;
  Kokkos::View<const float*, memory_space> row_lse;             ///< [bh][last_q], natural log
  Kokkos::View<float*, memory_space> vertical, slash;            ///< [bh][seq_k]

  static constexpr bool on_device = estimate_on_device_v<ExecSpace>;
  static constexpr index_t group_rows = on_device ? vs_device_rows : vs_rows_per_group;
  TRIMIX_FUNCTION index_t groups() const { return (last_q + group_rows - 1) / group_rows; }
  std::size_t scratch_bytes() const {
    if constexpr (on_device)
      return 32 + scratch_floats(vs_dim_slice * (vs_device_rows + 4)) + scratch_floats(vs_dim_slice * (vs_key_chunk + 4)) +
             scratch_floats(groups() * vs_device_rows + vs_key_chunk - 1) +
             scratch_floats(vs_device_rows / vs_row_tile * vs_key_chunk) + scratch_floats(vs_device_rows);
    return scratch_floats(shape.head_dim * vs_rows_per_group) +
           scratch_floats(vs_rows_per_group * vs_key_chunk) + scratch_floats(vs_key_chunk) +
           scratch_floats(groups() * vs_rows_per_group + vs_key_chunk - 1) + scratch_floats(vs_rows_per_group);
  }

  /// The pass on GPU-like spaces: a team of vs_key_chunk threads scores vs_device_rows rows
  /// against the chunk's keys, each thread a vs_row_tile x vs_key_tile block of scores in
  /// registers (warp w: rows 16w ..; lane l: keys 4l ..). Q and K pass through scratch in slices
  /// of vs_dim_slice head dims ([dim][rows] and [dim][keys], rows padded to keep 16-byte reads),
  /// so per head dim a thread reads four broadcast float4 of Q and one float4 of K for 64
  /// multiply-adds. The thread first sums its block's probabilities per key (column sums, one
  /// scratch slot per (warp, key), no atomics) and per diagonal (19 per thread), then adds those
  /// to the chunk's diagonals by scratch atomics. At 64K on the H200 this takes 2.9 ms; the
  /// previous pass (one key per thread, 64 rows, 17 scratch reads and one atomic per 64
  /// multiply-adds) 4.0 ms. Unrolled slice loads and a 4-teams-per-SM launch bound did not help
  /// (bench/NOTES.md); the next step is a profile, then the score tile on the tensor cores.
  TRIMIX_FUNCTION void device_pass(const Team& team) const {
    constexpr index_t rows = vs_device_rows, keys = vs_key_chunk, slice = vs_dim_slice;
    constexpr index_t row_tile = vs_row_tile, key_tile = vs_key_tile, key_blocks = keys / key_tile;
    constexpr index_t diagonals = row_tile + key_tile - 1;  // of one thread's block
    static_assert(rows % row_tile == 0 && keys % key_tile == 0 && row_tile % 4 == 0 && key_tile == 4);
    static_assert((rows / row_tile) * key_blocks == keys, "the launch makes team size = keys");
    constexpr index_t q_stride = rows + 4, k_stride = keys + 4;  // 16-byte rows, fewer store conflicts
    const index_t bh = team.league_rank() / chunks, chunk = team.league_rank() % chunks;
    const index_t b = bh / shape.q_heads, h = bh % shape.q_heads, kv_head = h / shape.group_size();
    const index_t first_key = chunk * keys, first_row = shape.seq_q - last_q;
    const index_t first_position = shape.position(first_row);  // = seq_k - last_q
    const index_t dim = shape.head_dim, n_groups = groups(), n_diagonals = n_groups * rows + keys - 1;
    float* q_slice = static_cast<float*>(
        team.team_scratch(scratch_level).get_shmem_aligned(scratch_floats(slice * q_stride), 16));
    float* k_slice = static_cast<float*>(
        team.team_scratch(scratch_level).get_shmem_aligned(scratch_floats(slice * k_stride), 16));
    float* diagonal = scratch_array(team, scratch_level, n_diagonals);
    float* column = scratch_array(team, scratch_level, rows / row_tile * keys);  // [warp][key]
    float* group_lse = scratch_array(team, scratch_level, rows);
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, n_diagonals), [&](index_t t) { diagonal[t] = 0.0f; });
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, rows / row_tile * keys), [&](index_t t) { column[t] = 0.0f; });
    const index_t row_block = team.team_rank() / key_blocks, key_block = team.team_rank() % key_blocks;
    const index_t r0 = row_block * row_tile, c0 = key_block * key_tile;  // the thread's block in the group
    struct alignas(16) Quad { float x[4]; };
    for (index_t group = 0; group < n_groups; ++group) {
      const index_t row0 = group * rows;
      float acc[row_tile][key_tile];
      TRIMIX_DEVICE_UNROLL
      for (index_t i = 0; i < row_tile; ++i)
        TRIMIX_DEVICE_UNROLL
        for (index_t c = 0; c < key_tile; ++c) acc[i][c] = 0.0f;
      for (index_t d0 = 0; d0 < dim; d0 += slice) {
        team.team_barrier();  // the previous slice (and group) is consumed
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, rows * slice), [&](index_t e) {
          const index_t r = e / slice, d = d0 + e % slice, row = row0 + r;
          q_slice[(e % slice) * q_stride + r] =
              row < last_q && d < dim ? load_float(q, shape.q(b, h, first_row + row, d)) * shape.scale_log2 : 0.0f;
        });
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, keys * slice), [&](index_t e) {
          const index_t key = first_key + e / slice, d = d0 + e % slice;
          k_slice[(e % slice) * k_stride + e / slice] =
              key < shape.seq_k && d < dim ? load_float(k, shape.k(b, kv_head, key, d)) : 0.0f;
        });
        if (d0 == 0)  // padded rows get +inf: their p = exp2(-inf) = 0
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, rows), [&](index_t r) {
            const index_t row = row0 + r;
            group_lse[r] = row < last_q ? row_lse(bh * last_q + row) * log2e : -minus_infinity;
          });
        team.team_barrier();
        for (index_t d = 0; d < slice; ++d) {
          const Quad kq = *reinterpret_cast<const Quad*>(k_slice + d * k_stride + c0);
          const Quad* qd = reinterpret_cast<const Quad*>(q_slice + d * q_stride + r0);
          TRIMIX_DEVICE_UNROLL
          for (index_t i4 = 0; i4 < row_tile / 4; ++i4) {
            const Quad v = qd[i4];
            TRIMIX_DEVICE_UNROLL
            for (int e = 0; e < 4; ++e)
              TRIMIX_DEVICE_UNROLL
              for (index_t c = 0; c < key_tile; ++c) acc[4 * i4 + e][c] += v.x[e] * kq.x[c];
          }
        }
      }
      // Probabilities; per key into the thread's column slots, per diagonal u = i - c + key_tile - 1
      // (row - key = r0 - c0 + i - c) into registers, then into the chunk's diagonals.
      float diagonal_sum[diagonals];
      TRIMIX_DEVICE_UNROLL
      for (index_t u = 0; u < diagonals; ++u) diagonal_sum[u] = 0.0f;
      float column_sum[key_tile] = {};
      TRIMIX_DEVICE_UNROLL
      for (index_t i = 0; i < row_tile; ++i) {
        const index_t row = row0 + r0 + i;
        const float lse2 = group_lse[r0 + i];
        TRIMIX_DEVICE_UNROLL
        for (index_t c = 0; c < key_tile; ++c) {
          const index_t j = first_key + c0 + c;
          const bool seen = row < last_q && j < shape.seq_k && j <= first_position + row;
          const float p = seen ? exp2_nonpositive(acc[i][c] - lse2) : 0.0f;
          column_sum[c] += p;
          diagonal_sum[i - c + key_tile - 1] += p;
        }
      }
      TRIMIX_DEVICE_UNROLL
      for (index_t c = 0; c < key_tile; ++c) column[row_block * keys + c0 + c] += column_sum[c];
      // Diagonal of (row, key jl) is row - jl + keys - 1 in the chunk's numbering.
      const index_t first_diagonal = row0 + r0 - c0 + keys - key_tile;
      TRIMIX_DEVICE_UNROLL
      for (index_t u = 0; u < diagonals; ++u)
        if (diagonal_sum[u] != 0.0f) Kokkos::atomic_add(&diagonal[first_diagonal + u], diagonal_sum[u]);
    }
    team.team_barrier();
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, keys), [&](index_t jl) {
      float sum = 0.0f;
      for (index_t w = 0; w < rows / row_tile; ++w) sum += column[w * keys + jl];
      if (first_key + jl < shape.seq_k) vertical(bh * shape.seq_k + first_key + jl) = sum;
    });
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, n_diagonals), [&](index_t t) {
      const index_t o = first_position - first_key - (keys - 1) + t;
      if (o >= 0 && o < shape.seq_k && diagonal[t] != 0.0f) Kokkos::atomic_add(&slash(bh * shape.seq_k + o), diagonal[t]);
    });
  }

  /// Base-2 scores of rows row0 .. row0 + 15 (in q_rows, [dim][rows]) against the chunk's keys into
  /// scores[rows][keys], -inf where masked. One key per thread, its 16 scores in registers.
  TRIMIX_FUNCTION void score_keys(const Team& team, const float* q_rows, float* scores, index_t b, index_t kv_head,
                                  index_t first_key, index_t row0) const {
    constexpr index_t rows = vs_rows_per_group, keys = vs_key_chunk;
    const index_t first_position = shape.seq_k - last_q, dim = shape.head_dim;
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, keys), [&](index_t jl) {
      const index_t j = first_key + jl;
      const index_t key_offset = shape.k(b, kv_head, j < shape.seq_k ? j : 0, 0);  // past the end: masked
      // Two accumulator sets, even and odd head dims: GCC keeps these arrays in memory, and two
      // independent chains halve the store-to-load latency that bounds the loop (about 2x faster
      // on the CPU than one set; a tile of 4 keys did not help). On GPUs they are registers.
      float even[rows], odd[rows];
      TRIMIX_DEVICE_UNROLL
      for (index_t r = 0; r < rows; ++r) even[r] = odd[r] = 0.0f;
      index_t d = 0;
      for (; d + 1 < dim; d += 2) {
        const float k_even = load_float(k, key_offset + d * shape.k.dim);
        const float k_odd = load_float(k, key_offset + (d + 1) * shape.k.dim);
        const float* qd = q_rows + d * rows;
        TRIMIX_ESTIMATE_SIMD
        for (index_t r = 0; r < rows; ++r) {
          even[r] += qd[r] * k_even;
          odd[r] += qd[rows + r] * k_odd;
        }
      }
      if (d < dim) {  // odd head_dim
        const float k_last = load_float(k, key_offset + d * shape.k.dim);
        TRIMIX_DEVICE_UNROLL
        for (index_t r = 0; r < rows; ++r) even[r] += q_rows[d * rows + r] * k_last;
      }
      TRIMIX_DEVICE_UNROLL
      for (index_t r = 0; r < rows; ++r) {
        const index_t row = row0 + r;
        const bool seen = row < last_q && j < shape.seq_k && j <= first_position + row;
        scores[r * keys + jl] = seen ? even[r] + odd[r] : minus_infinity;
      }
    });
  }

  TRIMIX_FUNCTION void operator()(const Team& team) const {
    if constexpr (on_device) {
      device_pass(team);
      return;
    }
    constexpr index_t rows = vs_rows_per_group, keys = vs_key_chunk;
    const index_t bh = team.league_rank() / chunks, chunk = team.league_rank() % chunks;
    const index_t b = bh / shape.q_heads, h = bh % shape.q_heads, kv_head = h / shape.group_size();
    const index_t first_key = chunk * keys;
    const index_t first_row = shape.seq_q - last_q;                // query row of estimation row 0
    const index_t first_position = shape.position(first_row);     // = seq_k - last_q
    const index_t dim = shape.head_dim, n_groups = groups();
    float* q_rows = scratch_array(team, scratch_level, dim * rows);       // [dim][rows]
    float* scores = scratch_array(team, scratch_level, rows * keys);      // [rows][keys]
    float* column = scratch_array(team, scratch_level, keys);             // vertical sums
    float* diagonal = scratch_array(team, scratch_level, n_groups * rows + keys - 1);
    float* group_lse = scratch_array(team, scratch_level, rows);  // base-2 LSE of the group's rows
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, keys), [&](index_t j) { column[j] = 0.0f; });
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, n_groups * rows + keys - 1),
                         [&](index_t t) { diagonal[t] = 0.0f; });
    for (index_t group = 0; group < n_groups; ++group) {
      const index_t row0 = group * rows;
      team.team_barrier();  // the previous group is done with q_rows and scores
      Kokkos::parallel_for(Kokkos::TeamThreadRange(team, dim * rows), [&](index_t e) {
        const index_t d = e / rows, r = e % rows, row = row0 + r;
        q_rows[e] = row < last_q ? load_float(q, shape.q(b, h, first_row + row, d)) * shape.scale_log2 : 0.0f;
      });
      // Padded rows get +inf: their scores are -inf, so p = exp2(-inf) = 0 without a select.
      Kokkos::parallel_for(Kokkos::TeamThreadRange(team, rows), [&](index_t r) {
        const index_t row = row0 + r;
        group_lse[r] = row < last_q ? row_lse(bh * last_q + row) * log2e : -minus_infinity;
      });
      team.team_barrier();
      score_keys(team, q_rows, scores, b, kv_head, first_key, row0);
      team.team_barrier();
      // Probabilities, select-free (exp2_nonpositive(-inf) = 0), then their sums per key column.
      if constexpr (estimate_on_device_v<ExecSpace>) {
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, rows * keys), [&](index_t e) {
          scores[e] = exp2_nonpositive(scores[e] - group_lse[e / keys]);
        });
      } else {  // contiguous inner loops, vectorised
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, rows), [&](index_t r) {
          const float lse2 = group_lse[r];
          float* row = scores + r * keys;
          for (index_t jl = 0; jl < keys; ++jl) row[jl] = exp2_nonpositive(row[jl] - lse2);
        });
      }
      team.team_barrier();
      Kokkos::parallel_for(Kokkos::TeamThreadRange(team, keys), [&](index_t jl) {
        float sum = 0.0f;
        for (index_t r = 0; r < rows; ++r) sum += scores[r * keys + jl];
        column[jl] += sum;
      });
      team.team_barrier();
      // Diagonal t of this group holds (r, jl) with r - jl = t - (keys - 1); its offset from the
      // chunk's first diagonal is row0 + t, which no other thread of the group touches.
      Kokkos::parallel_for(Kokkos::TeamThreadRange(team, rows + keys - 1), [&](index_t t) {
        const index_t r_begin = t >= keys - 1 ? t - (keys - 1) : 0;
        const index_t r_end = t + 1 < rows ? t + 1 : rows;
        float sum = 0.0f;
        for (index_t r = r_begin; r < r_end; ++r) sum += scores[r * keys + (r + keys - 1 - t)];
        diagonal[row0 + t] += sum;
      });
    }
    team.team_barrier();
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, keys), [&](index_t jl) {
      if (first_key + jl < shape.seq_k) vertical(bh * shape.seq_k + first_key + jl) = column[jl];
    });
    // Diagonal index t is the offset o = first_position - first_key - (keys - 1) + t.
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, n_groups * rows + keys - 1), [&](index_t t) {
      const index_t o = first_position - first_key - (keys - 1) + t;
      if (o >= 0 && o < shape.seq_k && diagonal[t] != 0.0f) Kokkos::atomic_add(&slash(bh * shape.seq_k + o), diagonal[t]);
    });
  }
};

/// Which kv-blocks block row (bh, qb) of a vertical-slash map lists: `kept` is the exclusive prefix
/// count (mod 2^32) of kept columns and diagonals over [bh][vertical | slash][seq_k], so "any kept
/// column in [lo, hi]" is one subtraction. Differences of counts below 2^32 are exact modulo 2^32.
template <class MemorySpace>
struct VerticalSlashBlocks {
  Kokkos::View<const std::uint32_t*, MemorySpace> kept;
  index_t seq_q = 0, seq_k = 0, block_q = 1, block_k = 1, q_blocks = 0;

  TRIMIX_FUNCTION index_t first_position(index_t qb) const { return seq_k - seq_q + qb * block_q; }
  TRIMIX_FUNCTION index_t last_position(index_t qb) const {
    const index_t end = (qb + 1) * block_q < seq_q ? (qb + 1) * block_q : seq_q;
    return seq_k - seq_q + end - 1;
  }
  /// kv-blocks 0 .. visible_blocks(qb) - 1 start at or before the q-block's last position.
  TRIMIX_FUNCTION index_t visible_blocks(index_t qb) const { return last_position(qb) / block_k + 1; }
  TRIMIX_FUNCTION bool any_kept(index_t bh, int which, index_t lo, index_t hi) const {
    const index_t base = (bh * 2 + which) * seq_k;
    return kept(base + hi + 1) - kept(base + lo) != 0u;
  }
  TRIMIX_FUNCTION bool listed(index_t bh, index_t qb, index_t kb) const {
    const index_t p0 = first_position(qb), p1 = last_position(qb);
    const index_t lo = kb * block_k, hi = lo + block_k - 1;
    // A kept column j in [lo, min(hi, p1)].
    if (any_kept(bh, 0, lo, hi < p1 ? hi : p1)) return true;
    // A kept diagonal o with p - o in [lo, hi] for some p in [p0, p1]: o in [p0 - hi, p1 - lo].
    const index_t o_lo = p0 - hi > 0 ? p0 - hi : 0;
    const index_t o_hi = p1 - lo < seq_k - 1 ? p1 - lo : seq_k - 1;
    return o_lo <= o_hi && any_kept(bh, 1, o_lo, o_hi);
  }
};

// ---- pooled blocks ------------------------------------------------------------------------------

/// Consecutive kv-blocks one thread scores: 16 on CPUs (a vectorised run of k_pooled's [dim][kb]
/// rows), 1 on GPUs (neighbouring threads read neighbouring blocks).
template <class ExecSpace>
inline constexpr index_t pooled_blocks_per_thread = estimate_on_device_v<ExecSpace> ? 1 : 16;
/// Consecutive head dims one thread pools (a contiguous run of each row on every backend).
constexpr index_t pooled_dims_per_thread = 16;

/// Sums over rows [begin, end) of (b, h) of head dims d0 .. d0 + pooled_dims_per_thread - 1 (those
/// below dim) into `sum`: one thread reads a contiguous run of each row.
template <class T>
TRIMIX_FUNCTION void sum_rows(const T* data, const Strides4& strides, index_t b, index_t h, index_t begin,
                              index_t end, index_t d0, index_t dim, float* sum) {
  constexpr index_t lanes = pooled_dims_per_thread;
  TRIMIX_DEVICE_UNROLL
  for (index_t c = 0; c < lanes; ++c) sum[c] = 0.0f;
  if (d0 + lanes <= dim) {
    for (index_t i = begin; i < end; ++i) {
      const index_t base = strides(b, h, i, d0);
      TRIMIX_DEVICE_UNROLL
      for (index_t c = 0; c < lanes; ++c) sum[c] += load_float(data, base + c * strides.dim);
    }
  } else {
    for (index_t i = begin; i < end; ++i)
      for (index_t c = 0; c < lanes && d0 + c < dim; ++c) sum[c] += load_float(data, strides(b, h, i, d0 + c));
  }
}

/// Block scores, probabilities and the mass cut of the pooled estimator, one team per block row.
/// Pass `select` finds each row's softmax (max, sum) and threshold and counts its blocks; pass
/// `fill` recomputes the same probabilities and writes the sorted entries.
template <class ExecSpace>
struct PooledBlockRows {
  using memory_space = typename ExecSpace::memory_space;
  using Team = typename Kokkos::TeamPolicy<ExecSpace>::member_type;
  Kokkos::View<const float*, memory_space> q_pooled;  ///< [b][q_head][qb][dim], times scale * log2(e)
  Kokkos::View<const float*, memory_space> k_pooled;  ///< [b][kv_head][dim][kb] (kb fastest)
  index_t q_heads = 0, kv_heads = 1, dim = 0, seq_q = 0, seq_k = 0, block_q = 1, block_k = 1;
  index_t q_blocks = 0, kv_blocks = 0;
  float gamma = 0.9f;
  int scratch_level = 0;
  Kokkos::View<float*, memory_space> row_max, row_sum;           ///< per block row
  Kokkos::View<std::uint32_t*, memory_space> threshold, row_count;  ///< per block row
  typename BlockSparseMap<memory_space>::Entries entries;         ///< fill pass only
  typename BlockSparseMap<memory_space>::Counts counts;
  index_t capacity = 0;

  std::size_t scratch_bytes() const {
    return scratch_floats(kv_blocks) + scratch_floats(radix_bins) + scratch_floats(2);
  }

  struct SelectTag {};
  struct FillTag {};

  TRIMIX_FUNCTION index_t first_position(index_t qb) const { return seq_k - seq_q + qb * block_q; }
  TRIMIX_FUNCTION index_t last_position(index_t qb) const {
    const index_t end = (qb + 1) * block_q < seq_q ? (qb + 1) * block_q : seq_q;
    return seq_k - seq_q + end - 1;
  }

  /// Base-2 scores of row `row` against kv-blocks [0, n) into `p`.
  TRIMIX_FUNCTION void scores(const Team& team, index_t row, index_t n, float* p) const {
    const index_t b = row / (q_heads * q_blocks), h = row / q_blocks % q_heads;
    const index_t kv_head = h / (q_heads / kv_heads);
    const float* qbar = q_pooled.data() + row * dim;
    const float* kbar = k_pooled.data() + (b * kv_heads + kv_head) * dim * kv_blocks;
    constexpr index_t lanes = pooled_blocks_per_thread<ExecSpace>;
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, (n + lanes - 1) / lanes), [&](index_t chunk) {
      const index_t kb0 = chunk * lanes;
      float s[lanes];
      TRIMIX_DEVICE_UNROLL
      for (index_t c = 0; c < lanes; ++c) s[c] = 0.0f;
      if (kb0 + lanes <= kv_blocks) {
        for (index_t d = 0; d < dim; ++d) {
          TRIMIX_DEVICE_UNROLL
          for (index_t c = 0; c < lanes; ++c) s[c] += qbar[d] * kbar[d * kv_blocks + kb0 + c];
        }
      } else {  // the row's last chunk at the end of k_pooled's rows
        for (index_t d = 0; d < dim; ++d)
          for (index_t c = 0; c < lanes && kb0 + c < kv_blocks; ++c) s[c] += qbar[d] * kbar[d * kv_blocks + kb0 + c];
      }
      TRIMIX_DEVICE_UNROLL
      for (index_t c = 0; c < lanes; ++c)
        if (kb0 + c < n) p[kb0 + c] = s[c];
    });
  }

  TRIMIX_FUNCTION void operator()(SelectTag, const Team& team) const {
    const index_t row = team.league_rank(), qb = row % q_blocks;
    const index_t n = last_position(qb) / block_k + 1, diagonal = first_position(qb) / block_k;
    float* p = scratch_array(team, scratch_level, kv_blocks);
    float* hist = scratch_array(team, scratch_level, radix_bins);
    std::uint32_t* shared = reinterpret_cast<std::uint32_t*>(scratch_array(team, scratch_level, 2));
    scores(team, row, n, p);
    team.team_barrier();
    float m = minus_infinity, l = 0.0f, forced_mass = 0.0f;
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(team, n), [&](index_t kb, float& mx) { mx = p[kb] > mx ? p[kb] : mx; },
        Kokkos::Max<float>(m));
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(team, n), [&](index_t kb, float& sum) { sum += exp2_nonpositive(p[kb] - m); }, l);
    team.team_barrier();
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, n),
                         [&](index_t kb) { p[kb] = exp2_nonpositive(p[kb] - m) / l; });
    team.team_barrier();
    auto forced = [&](index_t kb) { return kb == 0 || kb >= diagonal; };
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(team, n), [&](index_t kb, float& sum) { sum += forced(kb) ? p[kb] : 0.0f; },
        forced_mass);
    std::uint32_t cut = 0u;  // every block
    if (gamma < 1.0f) {
      const float need = gamma - forced_mass;
      cut = need <= 0.0f ? keep_forced_only
                         : team_radix_select<float>(
                               team, n, need, hist, shared, [&](index_t kb) { return forced(kb) ? 0u : score_key(p[kb]); },
                               [&](index_t kb) { return forced(kb) ? 0.0f : p[kb]; });
    }
    index_t kept = 0;
    Kokkos::parallel_reduce(
        Kokkos::TeamThreadRange(team, n),
        [&](index_t kb, index_t& c) { c += (forced(kb) || score_key(p[kb]) >= cut) ? 1 : 0; }, kept);
    Kokkos::single(Kokkos::PerTeam(team), [&]() {
      row_max(row) = m;
      row_sum(row) = l;
      threshold(row) = cut;
      row_count(row) = std::uint32_t(kept);
    });
  }

  TRIMIX_FUNCTION void operator()(FillTag, const Team& team) const {
    const index_t row = team.league_rank(), qb = row % q_blocks;
    const index_t b = row / (q_heads * q_blocks), h = row / q_blocks % q_heads;
    const index_t n = last_position(qb) / block_k + 1, diagonal = first_position(qb) / block_k;
    float* p = scratch_array(team, scratch_level, kv_blocks);
    scores(team, row, n, p);
    const float m = row_max(row), l = row_sum(row);
    const std::uint32_t cut = threshold(row);
    team.team_barrier();
    // Same arithmetic as the select pass, so the same blocks; writes stop at the capacity anyway.
    Kokkos::parallel_scan(Kokkos::TeamThreadRange(team, n), [&](index_t kb, index_t& position, bool final) {
      const bool keep = kb == 0 || kb >= diagonal || score_key(exp2_nonpositive(p[kb] - m) / l) >= cut;
      if (final && keep && position < capacity) entries(b, h, qb, position) = std::int32_t(kb) * 2 + 1;
      if (keep) ++position;
      if (final && kb == n - 1) counts(b, h, qb) = std::int32_t(position < capacity ? position : capacity);
    });
  }
};

}  // namespace impl

/// MInference's vertical-slash estimate of where the attention of q against k is (file comment).
/// \param exec    execution space the kernels run on (asynchronous; the map is ready in its order)
/// \param q       (batch, q_heads, seq_q, head_dim), or (batch, seq_q, q_heads, head_dim) with
///                options.layout = bshd
/// \param k       (batch, kv_heads, seq_k, head_dim), likewise; q_heads % kv_heads == 0; head_dim
///                one trimix::attention takes (a multiple of 16 up to 256: the rows' softmax
///                statistics come from it)
/// \return        map with heads = q_heads, block_q x block_k blocks, every entry Full
/// Throws std::invalid_argument naming the argument before anything is launched.
template <class ExecSpace, class Q, class K>
BlockSparseMap<typename ExecSpace::memory_space> estimate_vertical_slash(const ExecSpace& exec, const Q& q,
                                                                          const K& k,
                                                                          const VerticalSlashOptions& options = {}) {
  static_assert(impl::check_estimate_views<ExecSpace, Q, K>());
  using memory_space = typename ExecSpace::memory_space;
  constexpr const char* api = "estimate_vertical_slash";
  const impl::EstimateShape shape = impl::describe_estimate(api, q, k, options.layout, options.scale);
  TRIMIX_REQUIRE(api, options.last_q >= 1 && options.last_q <= shape.seq_q, "options.last_q must be in [1, seq_q = ",
                 shape.seq_q, "], got ", options.last_q);
  TRIMIX_REQUIRE(api, options.vertical_size >= 0, "options.vertical_size must be >= 0, got ", options.vertical_size);
  TRIMIX_REQUIRE(api, options.slash_size >= 0, "options.slash_size must be >= 0, got ", options.slash_size);
  TRIMIX_REQUIRE(api, options.sink >= 0, "options.sink must be >= 0, got ", options.sink);
  TRIMIX_REQUIRE(api, options.local >= 0, "options.local must be >= 0, got ", options.local);
  TRIMIX_REQUIRE(api, options.block_q > 0 && options.block_k > 0, "options.block_q and options.block_k must be positive, got ",
                 options.block_q, " and ", options.block_k);
  TRIMIX_REQUIRE(api, shape.seq_k < (index_t(1) << 31), "seq_k ", shape.seq_k, " must be below 2^31");
  TRIMIX_REQUIRE(api, (shape.seq_k + options.block_k - 1) / options.block_k < max_kv_blocks,
                 "seq_k / options.block_k must stay below 2^30 kv-blocks (entries are 32-bit)");
  TRIMIX_REQUIRE(api, impl::supported_head_dim(shape.head_dim), "head_dim ", shape.head_dim,
                 " is not supported (the softmax statistics come from trimix::attention: multiples of ",
                 impl::portable_min_lane_block, " up to 256)");
  impl::EstimateRegion region("trimix::estimate[vertical_slash]");

  const index_t last_q = options.last_q, seq_k = shape.seq_k, heads = shape.batch * shape.q_heads;
  const index_t chunks = (seq_k + impl::vs_key_chunk - 1) / impl::vs_key_chunk;

  // 1. Softmax statistics of the last rows, as their LSE: trimix's own attention of those rows
  //    against every key under the causal mask (the rows sit bottom-right, as attention aligns
  //    them), so the tile engine (tensor cores on GPUs) computes them instead of a second scalar
  //    score pass. Its output rows are discarded; V is K (only the LSE is read).
  Kokkos::View<float***, Kokkos::LayoutRight, memory_space> row_lse(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "trimix::estimate::row_lse"), shape.batch, shape.q_heads, last_q);
  {
    using QT = typename Q::non_const_value_type;
    const auto rows = Kokkos::pair<index_t, index_t>(shape.seq_q - last_q, shape.seq_q);
    AttentionOptions attention_options;
    attention_options.layout = options.layout;
    attention_options.scale = double(shape.scale_log2) / double(impl::log2e);
    // Every row here is long (all keys) and there are few of them: without a split length the
    // plan (splits only past twice the mean) gives one item per q-tile, 32 CTAs for 1.1 ms at
    // 64K on the H200. Items of 32 kv-tiles keep the GPU full; the combine pass adds little.
    attention_options.max_tiles_per_item = 32;
    if (options.layout == Layout::bhsd) {
      Kokkos::View<QT****, Kokkos::LayoutRight, memory_space> discarded(
          Kokkos::view_alloc(Kokkos::WithoutInitializing, "trimix::estimate::o"), shape.batch, shape.q_heads, last_q,
          shape.head_dim);
      attention(exec, Kokkos::subview(q, Kokkos::ALL, Kokkos::ALL, rows, Kokkos::ALL), k, k, discarded, row_lse,
                Causal{}, attention_options);
    } else {
      Kokkos::View<QT****, Kokkos::LayoutRight, memory_space> discarded(
          Kokkos::view_alloc(Kokkos::WithoutInitializing, "trimix::estimate::o"), shape.batch, last_q, shape.q_heads,
          shape.head_dim);
      attention(exec, Kokkos::subview(q, Kokkos::ALL, rows, Kokkos::ALL, Kokkos::ALL), k, k, discarded, row_lse,
                Causal{}, attention_options);
    }
  }
  impl::VerticalSlashScores<ExecSpace, typename Q::value_type, typename K::value_type> pass{
      q.data(), k.data(), shape, last_q, chunks, 0,
      Kokkos::View<const float*, memory_space>(row_lse.data(), std::size_t(heads * last_q)),
      Kokkos::View<float*, memory_space>("trimix::estimate::vertical", std::size_t(heads * seq_k)),
      Kokkos::View<float*, memory_space>("trimix::estimate::slash", std::size_t(heads * seq_k))};

  // 2. Column and diagonal sums of the probabilities.
  int level = 0;
  auto sums_policy =
      impl::estimate_team_policy<ExecSpace>(exec, heads * chunks, int(impl::vs_key_chunk), pass.scratch_bytes(), level);
  pass.scratch_level = level;
  Kokkos::parallel_for("trimix::estimate[vertical_slash.column_sums]", sums_policy, pass);

  // 3. Per (head, vertical | slash): the threshold key of the top-k, by radix select.
  Kokkos::View<std::uint32_t*, memory_space> threshold("trimix::estimate::threshold", std::size_t(heads * 2));
  {
    auto vertical = pass.vertical, slash = pass.slash;
    const index_t vertical_size = options.vertical_size, slash_size = options.slash_size;
    const index_t sink = options.sink, local = options.local;
    auto policy = impl::estimate_team_policy<ExecSpace>(exec, heads * 2, 256,
                                                         impl::scratch_floats(impl::radix_bins) + impl::scratch_floats(2),
                                                         level);
    Kokkos::parallel_for(
        "trimix::estimate[vertical_slash.select]", policy,
        KOKKOS_LAMBDA(const typename Kokkos::TeamPolicy<ExecSpace>::member_type& team) {
          const index_t bh = team.league_rank() / 2;
          const int which = team.league_rank() % 2;  // 0 vertical, 1 slash
          const float* score = (which == 0 ? vertical.data() : slash.data()) + bh * seq_k;
          const index_t forced = which == 0 ? sink : local, top = which == 0 ? vertical_size : slash_size;
          std::uint32_t* hist = reinterpret_cast<std::uint32_t*>(impl::scratch_array(team, level, impl::radix_bins));
          std::uint32_t* shared = reinterpret_cast<std::uint32_t*>(impl::scratch_array(team, level, 2));
          std::uint32_t cut = 0u;  // top >= seq_k: everything
          if (top == 0) {
            cut = impl::keep_forced_only;
          } else if (top < seq_k) {
            cut = impl::team_radix_select<std::uint32_t>(
                team, seq_k, std::uint32_t(top), hist, shared,
                [&](index_t e) { return e < forced ? impl::forced_key : impl::score_key(score[e]); },
                [&](index_t) { return 1u; });
            if (cut == 0u) cut = 1u;  // fewer than `top` positive scores: zeros carry nothing
          }
          Kokkos::single(Kokkos::PerTeam(team), [&]() { threshold(team.league_rank()) = cut; });
        });
  }
  // 4. Exclusive prefix counts of the kept columns / diagonals, over [head][vertical | slash][seq_k].
  Kokkos::View<std::uint32_t*, memory_space> kept("trimix::estimate::kept", std::size_t(heads * 2 * seq_k + 1));
  {
    auto vertical = pass.vertical, slash = pass.slash;
    const index_t sink = options.sink, local = options.local, total = heads * 2 * seq_k;
    Kokkos::parallel_scan(
        "trimix::estimate[vertical_slash.prefix]", Kokkos::RangePolicy<ExecSpace>(exec, 0, total + 1),
        KOKKOS_LAMBDA(index_t e, std::uint32_t & count, bool final) {
          if (final) kept(e) = count;
          if (e == total) return;
          const index_t list = e / seq_k, x = e % seq_k, bh = list / 2;
          const bool is_vertical = list % 2 == 0;
          const bool forced = x < (is_vertical ? sink : local);
          const float score = is_vertical ? vertical(bh * seq_k + x) : slash(bh * seq_k + x);
          if (forced || impl::score_key(score) >= threshold(list)) count += 1u;
        });
  }
  // 5. Count the blocks of every block row, allocate, fill.
  const impl::VerticalSlashBlocks<memory_space> blocks{kept, shape.seq_q, seq_k, options.block_q, options.block_k,
                                                       (shape.seq_q + options.block_q - 1) / options.block_q};
  const index_t rows = heads * blocks.q_blocks;
  using Team = typename Kokkos::TeamPolicy<ExecSpace>::member_type;
  Kokkos::View<std::int32_t*, memory_space> row_count("trimix::estimate::row_count", std::size_t(rows));
  Kokkos::parallel_for(
      "trimix::estimate[vertical_slash.count]",
      impl::estimate_team_policy<ExecSpace>(exec, rows, 64, 0, level), KOKKOS_LAMBDA(const Team& team) {
        const index_t row = team.league_rank(), bh = row / blocks.q_blocks, qb = row % blocks.q_blocks;
        index_t count = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, blocks.visible_blocks(qb)),
            [&](index_t kb, index_t& c) { c += blocks.listed(bh, qb, kb) ? 1 : 0; }, count);
        Kokkos::single(Kokkos::PerTeam(team), [&]() { row_count(row) = std::int32_t(count); });
      });
  std::int32_t capacity = 0;
  Kokkos::parallel_reduce(
      "trimix::estimate[vertical_slash.capacity]", Kokkos::RangePolicy<ExecSpace>(exec, 0, rows),
      KOKKOS_LAMBDA(index_t r, std::int32_t & most) { most = row_count(r) > most ? row_count(r) : most; },
      Kokkos::Max<std::int32_t>(capacity));
  BlockSparseMap<memory_space> map(shape.batch, shape.q_heads, shape.seq_q, seq_k, options.block_q, options.block_k,
                                   capacity > 0 ? capacity : 0);  // no rows: Max leaves its identity
  auto entries = map.entries();
  auto counts = map.counts();
  const index_t q_heads = shape.q_heads;
  const auto fill_policy = impl::estimate_team_policy<ExecSpace>(
      exec, rows, 64, impl::estimate_on_device_v<ExecSpace> ? impl::scratch_floats(1) : 0, level);
  Kokkos::parallel_for(
      "trimix::estimate[vertical_slash.fill]", fill_policy, KOKKOS_LAMBDA(const Team& team) {
        const index_t row = team.league_rank(), bh = row / blocks.q_blocks, qb = row % blocks.q_blocks;
        const index_t b = bh / q_heads, h = bh % q_heads, n = blocks.visible_blocks(qb);
        if (impl::estimate_on_device_v<ExecSpace>) {  // not constexpr: nvcc's lambdas capture outside it
          // Chunks of team-size blocks, one listed() each and one team scan whose total goes to a
          // scratch counter: Kokkos' TeamThreadRange scan asks listed() twice per block and
          // broadcasts after each chunk (0.87 ms of the 64K estimate on the H200).
          auto* placed = reinterpret_cast<std::int32_t*>(impl::scratch_array(team, level, 1));
          Kokkos::single(Kokkos::PerTeam(team), [&]() { *placed = 0; });
          team.team_barrier();
          for (index_t chunk = 0; chunk < n; chunk += team.team_size()) {
            const index_t kb = chunk + team.team_rank();
            const bool listed = kb < n && blocks.listed(bh, qb, kb);
            const std::int32_t position = team.team_scan(std::int32_t(listed ? 1 : 0), placed);
            if (listed) entries(b, h, qb, position) = std::int32_t(kb) * 2 + 1;
          }
        } else {
          Kokkos::parallel_scan(Kokkos::TeamThreadRange(team, n), [&](index_t kb, index_t& position, bool final) {
            const bool listed = blocks.listed(bh, qb, kb);
            if (final && listed) entries(b, h, qb, position) = std::int32_t(kb) * 2 + 1;
            if (listed) ++position;
          });
        }
        Kokkos::single(Kokkos::PerTeam(team), [&]() { counts(b, h, qb) = row_count(row); });
      });
  return map;
}

/// FlexPrefill / XAttention-style estimate from mean-pooled blocks (file comment).
/// \param exec    execution space the kernels run on (asynchronous; the map is ready in its order)
/// \param q       (batch, q_heads, seq_q, head_dim), or (batch, seq_q, q_heads, head_dim) with
///                options.layout = bshd
/// \param k       (batch, kv_heads, seq_k, head_dim), likewise; q_heads % kv_heads == 0
/// \return        map with heads = q_heads, block_q x block_k blocks (the pooling windows), every
///                entry Full
/// Throws std::invalid_argument naming the argument before anything is launched.
template <class ExecSpace, class Q, class K>
BlockSparseMap<typename ExecSpace::memory_space> estimate_pooled_blocks(const ExecSpace& exec, const Q& q, const K& k,
                                                                         const PooledBlockOptions& options = {}) {
  static_assert(impl::check_estimate_views<ExecSpace, Q, K>());
  using memory_space = typename ExecSpace::memory_space;
  constexpr const char* api = "estimate_pooled_blocks";
  const impl::EstimateShape shape = impl::describe_estimate(api, q, k, options.layout, options.scale);
  TRIMIX_REQUIRE(api, options.gamma >= 0.0 && options.gamma <= 1.0, "options.gamma must be in [0, 1], got ",
                 options.gamma);
  TRIMIX_REQUIRE(api, options.block_q > 0 && options.block_k > 0, "options.block_q and options.block_k must be positive, got ",
                 options.block_q, " and ", options.block_k);
  TRIMIX_REQUIRE(api, (shape.seq_k + options.block_k - 1) / options.block_k < max_kv_blocks,
                 "seq_k / options.block_k must stay below 2^30 kv-blocks (entries are 32-bit)");
  impl::EstimateRegion region("trimix::estimate[pooled_blocks]");

  const index_t batch = shape.batch, q_heads = shape.q_heads, kv_heads = shape.kv_heads, dim = shape.head_dim;
  const index_t seq_q = shape.seq_q, seq_k = shape.seq_k, block_q = options.block_q, block_k = options.block_k;
  const index_t q_blocks = (seq_q + block_q - 1) / block_q, kv_blocks = (seq_k + block_k - 1) / block_k;
  const index_t rows = batch * q_heads * q_blocks;

  // 1. Mean pooling. Q rows are pre-scaled into base-2 scores; K is stored [dim][kb] so that the
  // threads of a block row, one kv-block each, read consecutive addresses.
  Kokkos::View<float*, memory_space> q_pooled("trimix::estimate::q_pooled", std::size_t(rows * dim));
  Kokkos::View<float*, memory_space> k_pooled("trimix::estimate::k_pooled",
                                              std::size_t(batch * kv_heads * kv_blocks * dim));
  {
    const auto* q_data = q.data();
    const auto* k_data = k.data();
    const impl::Strides4 q_strides = shape.q, k_strides = shape.k;
    const float scale_log2 = shape.scale_log2;
    constexpr index_t lanes = impl::pooled_dims_per_thread;
    const index_t dim_chunks = (dim + lanes - 1) / lanes;
    Kokkos::parallel_for(
        "trimix::estimate[pooled_blocks.pool_q]", Kokkos::RangePolicy<ExecSpace>(exec, 0, rows * dim_chunks),
        KOKKOS_LAMBDA(index_t e) {
          const index_t d0 = e % dim_chunks * lanes, row = e / dim_chunks, qb = row % q_blocks,
                        h = row / q_blocks % q_heads, b = row / (q_blocks * q_heads);
          const index_t begin = qb * block_q, end = begin + block_q < seq_q ? begin + block_q : seq_q;
          float sum[lanes];
          impl::sum_rows(q_data, q_strides, b, h, begin, end, d0, dim, sum);
          for (index_t c = 0; c < lanes && d0 + c < dim; ++c)
            q_pooled(row * dim + d0 + c) = sum[c] / float(end - begin) * scale_log2;
        });
    Kokkos::parallel_for(
        "trimix::estimate[pooled_blocks.pool_k]",
        Kokkos::RangePolicy<ExecSpace>(exec, 0, batch * kv_heads * kv_blocks * dim_chunks), KOKKOS_LAMBDA(index_t e) {
          const index_t d0 = e % dim_chunks * lanes, kb = e / dim_chunks % kv_blocks, bh = e / (dim_chunks * kv_blocks);
          const index_t begin = kb * block_k, end = begin + block_k < seq_k ? begin + block_k : seq_k;
          float sum[lanes];
          impl::sum_rows(k_data, k_strides, bh / kv_heads, bh % kv_heads, begin, end, d0, dim, sum);
          for (index_t c = 0; c < lanes && d0 + c < dim; ++c)
            k_pooled((bh * dim + d0 + c) * kv_blocks + kb) = sum[c] / float(end - begin);
        });
  }
  // 2. Per block row: softmax, mass cut, count; then capacity, allocation and the sorted fill.
  using Rows = impl::PooledBlockRows<ExecSpace>;
  Rows pass;
  pass.q_pooled = q_pooled;
  pass.k_pooled = k_pooled;
  pass.q_heads = q_heads;
  pass.kv_heads = kv_heads;
  pass.dim = dim;
  pass.seq_q = seq_q;
  pass.seq_k = seq_k;
  pass.block_q = block_q;
  pass.block_k = block_k;
  pass.q_blocks = q_blocks;
  pass.kv_blocks = kv_blocks;
  pass.gamma = float(options.gamma);
  pass.row_max = Kokkos::View<float*, memory_space>("trimix::estimate::row_max", std::size_t(rows));
  pass.row_sum = Kokkos::View<float*, memory_space>("trimix::estimate::row_sum", std::size_t(rows));
  pass.threshold = Kokkos::View<std::uint32_t*, memory_space>("trimix::estimate::threshold", std::size_t(rows));
  pass.row_count = Kokkos::View<std::uint32_t*, memory_space>("trimix::estimate::row_count", std::size_t(rows));
  int level = 0;
  auto select_policy = impl::estimate_team_policy<ExecSpace, typename Rows::SelectTag>(exec, rows, 128,
                                                                                       pass.scratch_bytes(), level);
  pass.scratch_level = level;
  Kokkos::parallel_for("trimix::estimate[pooled_blocks.select]", select_policy, pass);
  std::uint32_t capacity = 0;
  {
    auto row_count = pass.row_count;
    Kokkos::parallel_reduce(
        "trimix::estimate[pooled_blocks.capacity]", Kokkos::RangePolicy<ExecSpace>(exec, 0, rows),
        KOKKOS_LAMBDA(index_t r, std::uint32_t & most) { most = row_count(r) > most ? row_count(r) : most; },
        Kokkos::Max<std::uint32_t>(capacity));
  }
  BlockSparseMap<memory_space> map(batch, q_heads, seq_q, seq_k, block_q, block_k, index_t(capacity));
  pass.entries = map.entries();
  pass.counts = map.counts();
  pass.capacity = index_t(capacity);
  Kokkos::parallel_for(
      "trimix::estimate[pooled_blocks.fill]",
      impl::estimate_team_policy<ExecSpace, typename Rows::FillTag>(exec, rows, 128, pass.scratch_bytes(), level), pass);
  return map;
}

/// Fraction of the causally visible blocks (kv-blocks starting at or before a q-block's last
/// position) that `map` lists, over all its heads; copies the counts to the host. Counts every
/// entry, so it assumes none above the diagonal (true for the estimators' maps).
template <class MemorySpace>
double block_sparse_density(const BlockSparseMap<MemorySpace>& map) {
  const auto counts = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, map.counts());
  double kept = 0, causal = 0;
  for (index_t qb = 0; qb < map.q_blocks(); ++qb) {
    const index_t end = (qb + 1) * map.block_q() < map.seq_q() ? (qb + 1) * map.block_q() : map.seq_q();
    const index_t last_position = map.seq_k() - map.seq_q() + end - 1;
    causal += double(last_position / map.block_k() + 1) * double(map.batch() * map.heads());
    for (index_t b = 0; b < map.batch(); ++b)
      for (index_t h = 0; h < map.heads(); ++h) kept += counts(b, h, qb);
  }
  return causal > 0 ? kept / causal : 0.0;
}

}  // namespace trimix
