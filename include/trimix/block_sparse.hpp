#pragma once
/// \file block_sparse.hpp
/// Runtime block-sparse masks: per (batch, head, q-block) the kv-blocks to visit, each Full or
/// Partial, living in Kokkos views (DESIGN.md section 3, dynamic sparsity).
///
/// - `BlockSparseMap<MemorySpace>` owns the data: for every (batch, head, q-block) up to `capacity`
///   entries `(kv_block << 1) | full`, sorted by kv-block, and their count. Memory
///   O(batch * heads * q_blocks * capacity): O(N / block) per head for a bounded capacity.
/// - `BlockSparse<Element>` is the mask policy, a trivially copyable view of a map (the map must
///   outlive every plan and call that uses the policy). It depends on the head, so the algorithm
///   first binds it to one (batch, query head): `bind_head` gives a `BlockSparseHead`, an ordinary
///   position-only policy. Compositions bind their parts, so `Causal{} & map.policy()` and
///   `Triangle{} | map.policy()` are masks like any other.
/// - Block rows are query indices i (row i of seq_q), i.e. position p = seq_k - seq_q + i, in
///   blocks of `block_q`; key blocks are keys j in blocks of `block_k`. A Partial entry shows the
///   keys of its block that `Element` shows (Full: all of them); a Full entry shows all.
/// - A plan made for a block-sparse mask holds tile ranges counted from the map's contents: after
///   changing the entries, make a new plan (the one-shot trimix::attention always does).
/// - The policy holds raw pointers: a map in device memory for device execution spaces.
/// - The map's heads are the query heads or the kv-heads (then every query head of a GQA group
///   shares its kv-head's blocks and the plan can pack the group into one work item).
///
/// Builders: `block_sparse_from_tile_map` (a dense [batch][heads][q_blocks][kv_blocks] map of
/// 0 empty / 1 partial / 2 full) and `block_sparse_from_indices` (CSR lists of kv-blocks per row).

#include <trimix/mask.hpp>

#include <cstdint>
#include <string>
#include <type_traits>

namespace trimix {

/// Entry classes in tile maps and index lists.
enum BlockClass : std::int32_t { block_empty = 0, block_partial = 1, block_full = 2 };

/// Entries are 32-bit (kv_block << 1) | full: at most 2^30 kv-blocks.
constexpr index_t max_kv_blocks = index_t(1) << 30;

namespace impl {

/// Most block rows one q-tile may span (a run cursor keeps one list position per block row).
constexpr int max_block_rows_per_q_tile = 8;

/// Merges the sorted kv-block lists of the block rows a q-tile spans into runs of kernel kv-tiles:
/// a block present in every list as Full is Full, present anywhere else Partial. Each block covers
/// block_k / kv_tile kernel tiles (the plan checks that kv_tile divides block_k).
/// Forced inline: an outlined cursor or lookup caps the CUDA engine's kernels at 128 registers
/// (bench/NOTES.md, 524e585).
class BlockRowRuns {
 public:
  TRIMIX_FORCEINLINE void add_row(const std::int32_t* entries, std::int32_t count) {
    if (m_rows == max_block_rows_per_q_tile) {  // more rows than the cursor holds: every tile Partial
      m_everything = true;
      return;
    }
    m_row[m_rows] = entries;
    m_count[m_rows] = count;
    m_pos[m_rows] = 0;
    ++m_rows;
  }
  TRIMIX_FORCEINLINE void set_tiles(index_t tiles_per_block, index_t kv_tiles, bool partial_is_full) {
    m_tiles_per_block = tiles_per_block;
    m_kv_tiles = kv_tiles;
    m_partial_is_full = partial_is_full;
  }
  TRIMIX_FORCEINLINE bool next(KvRun& run) {
    if (m_everything) {  // conservative: the element test decides inside every tile
      if (m_everything_done || m_kv_tiles == 0) return false;
      m_everything_done = true;
      run = KvRun{0, m_kv_tiles, TileClass::partial};
      return true;
    }
    if (!m_has_pending && !(m_has_pending = next_block(m_pending))) return false;
    run = m_pending;
    m_has_pending = false;
    KvRun more;
    while (next_block(more)) {
      if (more.begin == run.end && more.cls == run.cls) {
        run.end = more.end;
      } else {
        m_pending = more;
        m_has_pending = true;
        break;
      }
    }
    return true;
  }

 private:
  /// The kernel tiles of the next listed kv-block (smallest block index over the rows).
  TRIMIX_FORCEINLINE bool next_block(KvRun& out) {
    for (;;) {
      std::int32_t block = -1;
      TRIMIX_DEVICE_UNROLL
      for (int r = 0; r < max_block_rows_per_q_tile; ++r)
        if (r < m_rows && m_pos[r] < m_count[r]) {
          const std::int32_t b = m_row[r][m_pos[r]] >> 1;
          if (block < 0 || b < block) block = b;
        }
      if (block < 0) return false;
      bool full = true;
      TRIMIX_DEVICE_UNROLL
      for (int r = 0; r < max_block_rows_per_q_tile; ++r) {
        if (r < m_rows && m_pos[r] < m_count[r] && (m_row[r][m_pos[r]] >> 1) == block) {
          full = full && ((m_row[r][m_pos[r]] & 1) != 0 || m_partial_is_full);
          ++m_pos[r];
        } else if (r < m_rows) {
          full = false;
        }
      }
      const index_t begin = index_t(block) * m_tiles_per_block;
      const index_t end = begin + m_tiles_per_block < m_kv_tiles ? begin + m_tiles_per_block : m_kv_tiles;
      if (begin >= end) continue;  // a block past seq_k (ignored)
      out = KvRun{begin, end, full ? TileClass::full : TileClass::partial};
      return true;
    }
  }

  const std::int32_t* m_row[max_block_rows_per_q_tile] = {};
  std::int32_t m_count[max_block_rows_per_q_tile] = {};
  std::int32_t m_pos[max_block_rows_per_q_tile] = {};
  int m_rows = 0;
  index_t m_tiles_per_block = 1, m_kv_tiles = 0;
  bool m_partial_is_full = false;
  bool m_everything = false, m_everything_done = false;
  KvRun m_pending;
  bool m_has_pending = false;
};

}  // namespace impl

/// The block-sparse mask of one (batch, head): a position-only mask policy.
template <class Element = Full>
struct BlockSparseHead {
  const std::int32_t* entries = nullptr;  ///< [q_blocks][capacity] of this head
  const std::int32_t* counts = nullptr;   ///< [q_blocks]
  index_t capacity = 0, q_blocks = 0, block_q = 1, block_k = 1;
  index_t position_offset = 0;  ///< seq_k - seq_q: position of query row 0
  Element element;

  /// Entries of kv-block `kb` in block row `qb` (binary search): block_empty/partial/full.
  TRIMIX_FORCEINLINE BlockClass find(index_t qb, index_t kb) const {
    const std::int32_t* row = entries + qb * capacity;
    index_t lo = 0, hi = counts[qb];
    while (lo < hi) {
      const index_t mid = (lo + hi) / 2;
      if ((row[mid] >> 1) < kb) lo = mid + 1;
      else hi = mid;
    }
    if (lo == counts[qb] || (row[lo] >> 1) != kb) return block_empty;
    return (row[lo] & 1) != 0 ? block_full : block_partial;
  }
  TRIMIX_FORCEINLINE bool visible(index_t p, index_t j, index_t seq_k) const {
    const index_t i = p - position_offset;
    if (i < 0 || j < 0 || i / block_q >= q_blocks) return false;
    const BlockClass c = find(i / block_q, j / block_k);
    return c == block_full || (c == block_partial && trimix::visible(element, p, j, seq_k));
  }
  TRIMIX_FUNCTION impl::BlockRowRuns runs(const TileGeometry& g, index_t qt) const {
    impl::BlockRowRuns cursor;
    const index_t first = (g.first_position(qt) - position_offset) / block_q;
    const index_t last = (g.last_position(qt) - position_offset) / block_q;
    for (index_t qb = first; qb <= last && qb < q_blocks; ++qb)
      cursor.add_row(entries + qb * capacity, counts[qb]);
    cursor.set_tiles(block_k / g.kv_tile, g.kv_tiles(), std::is_same_v<Element, Full>);
    return cursor;
  }
  TRIMIX_FUNCTION TileClass classify(const TileGeometry& g, index_t qt, index_t u) const {
    const index_t first = (g.first_position(qt) - position_offset) / block_q;
    const index_t last = (g.last_position(qt) - position_offset) / block_q;
    const index_t kb = g.first_key(u) / block_k;  // kv_tile divides block_k: one block per tile
    if ((last < q_blocks ? last : q_blocks - 1) - first + 1 > impl::max_block_rows_per_q_tile)
      return TileClass::partial;  // as runs() does: more block rows than its cursor holds
    bool any = false, all = true;
    for (index_t qb = first; qb <= last && qb < q_blocks; ++qb) {
      const BlockClass c = find(qb, kb);
      any = any || c != block_empty;
      all = all && (c == block_full || (c == block_partial && std::is_same_v<Element, Full>));
    }
    return !any ? TileClass::empty : all ? TileClass::full : TileClass::partial;
  }
  std::string name() const { return "block_sparse"; }
};

/// The block-sparse mask policy of a BlockSparseMap (see the file comment). Bound per head by the
/// algorithm; on its own it answers no tile questions.
template <class Element = Full>
struct BlockSparse {
  static_assert(check_mask_policy<Element>() && !impl::is_head_dependent<Element>::value,
                "BlockSparse: the element policy must be a position-only mask policy");
  const std::int32_t* entries = nullptr;  ///< [batch][heads][q_blocks][capacity]
  const std::int32_t* counts = nullptr;   ///< [batch][heads][q_blocks]
  index_t batch = 0, heads = 0, seq_q = 0, seq_k = 0, block_q = 1, block_k = 1, capacity = 0;
  Element element;

  TRIMIX_FUNCTION index_t q_blocks() const { return (seq_q + block_q - 1) / block_q; }

  /// The mask of query head `q_head` (of `q_heads`) in batch `b`.
  TRIMIX_FUNCTION BlockSparseHead<Element> bind(index_t b, index_t q_head, index_t q_heads) const {
    const index_t h = q_head * heads / q_heads;
    const index_t row = (b * heads + h) * q_blocks();
    return BlockSparseHead<Element>{entries + row * capacity, counts + row, capacity, q_blocks(),
                                    block_q, block_k, seq_k - seq_q, element};
  }
  /// Every query head of a GQA group has the same blocks (the map is per kv-head or coarser).
  bool uniform_within_group(index_t, index_t kv_heads) const { return heads > 0 && kv_heads % heads == 0; }
  /// Whether the map fits the problem and the engine's tiles; throws std::invalid_argument if not.
  void check(const char* api, const TileGeometry& g, index_t batch_, index_t q_heads) const {
    TRIMIX_REQUIRE(api, batch == batch_ && seq_q == g.seq_q && seq_k == g.seq_k,
                   "mask: block-sparse map made for batch ", batch, ", seq_q ", seq_q, ", seq_k ", seq_k,
                   ", used with batch ", batch_, ", seq_q ", g.seq_q, ", seq_k ", g.seq_k);
    TRIMIX_REQUIRE(api, heads > 0 && q_heads % heads == 0,
                   "mask: block-sparse map has ", heads, " heads, which does not divide q_heads ", q_heads);
    TRIMIX_REQUIRE(api, block_k % g.kv_tile == 0,
                   "mask: block-sparse block_k ", block_k, " must be a multiple of the engine's kv-tile ",
                   g.kv_tile);
    // Block rows one q-tile spans (q-tiles start at multiples of q_tile in query-index space).
    const index_t spanned = g.q_tile % block_q == 0 ? g.q_tile / block_q : (g.q_tile - 1) / block_q + 2;
    TRIMIX_REQUIRE(api, spanned <= impl::max_block_rows_per_q_tile,
                   "mask: block-sparse block_q ", block_q, " is too small for the engine's q-tile of ",
                   g.q_tile, " rows (at most ", impl::max_block_rows_per_q_tile, " block rows per q-tile)");
    TRIMIX_REQUIRE(api, entries != nullptr || batch * heads * q_blocks() * capacity == 0,
                   "mask: block-sparse map is not allocated");
  }
  std::string name() const { return "block_sparse"; }
};

/// Owner of a block-sparse mask's data in `MemorySpace`.
template <class MemorySpace>
class BlockSparseMap {
 public:
  using memory_space = MemorySpace;
  using Entries = Kokkos::View<std::int32_t****, Kokkos::LayoutRight, MemorySpace>;
  using Counts = Kokkos::View<std::int32_t***, Kokkos::LayoutRight, MemorySpace>;

  BlockSparseMap() = default;
  /// An empty map (every count 0) for `heads` heads (query heads or kv-heads) with room for
  /// `capacity` kv-blocks per block row.
  BlockSparseMap(index_t batch, index_t heads, index_t seq_q, index_t seq_k, index_t block_q,
                 index_t block_k, index_t capacity)
      : m_batch(batch), m_heads(heads), m_seq_q(seq_q), m_seq_k(seq_k), m_block_q(block_q), m_block_k(block_k) {
    TRIMIX_REQUIRE("BlockSparseMap", batch >= 0 && heads > 0 && seq_q >= 0 && seq_k >= 0,
                   "batch, heads, seq_q, seq_k must be >= 0 (heads > 0), got ", batch, ", ", heads, ", ",
                   seq_q, ", ", seq_k);
    TRIMIX_REQUIRE("BlockSparseMap", block_q > 0 && block_k > 0, "block_q and block_k must be positive, got ",
                   block_q, ", ", block_k);
    TRIMIX_REQUIRE("BlockSparseMap", kv_blocks() < max_kv_blocks, "seq_k / block_k must stay below 2^30 kv-blocks, got ",
                   kv_blocks());
    TRIMIX_REQUIRE("BlockSparseMap", capacity >= 0 && capacity <= kv_blocks(),
                   "capacity must be in [0, kv_blocks = ", kv_blocks(), "], got ", capacity);
    m_entries = Entries("trimix::block_sparse::entries", std::size_t(batch), std::size_t(heads),
                        std::size_t(q_blocks()), std::size_t(capacity));
    m_counts = Counts("trimix::block_sparse::counts", std::size_t(batch), std::size_t(heads),
                      std::size_t(q_blocks()));
  }

  index_t batch() const { return m_batch; }
  index_t heads() const { return m_heads; }
  index_t seq_q() const { return m_seq_q; }
  index_t seq_k() const { return m_seq_k; }
  index_t block_q() const { return m_block_q; }
  index_t block_k() const { return m_block_k; }
  index_t q_blocks() const { return (m_seq_q + m_block_q - 1) / m_block_q; }
  index_t kv_blocks() const { return (m_seq_k + m_block_k - 1) / m_block_k; }
  index_t capacity() const { return index_t(m_entries.extent(3)); }
  /// [batch][heads][q_blocks][capacity]: (kv_block << 1) | full, sorted by kv_block, the first
  /// counts(b, h, qb) of each row valid.
  const Entries& entries() const { return m_entries; }
  const Counts& counts() const { return m_counts; }

  /// The mask policy over this map; `element` decides the visible keys of Partial entries.
  template <class Element = Full>
  BlockSparse<Element> policy(const Element& element = {}) const {
    return BlockSparse<Element>{m_entries.data(), m_counts.data(), m_batch, m_heads, m_seq_q, m_seq_k,
                                m_block_q, m_block_k, capacity(), element};
  }

 private:
  index_t m_batch = 0, m_heads = 0, m_seq_q = 0, m_seq_k = 0, m_block_q = 1, m_block_k = 1;
  Entries m_entries;
  Counts m_counts;
};

namespace impl {

template <class ExecSpace, class Count>
index_t max_row_count(const ExecSpace& exec, index_t rows, const Count& count_of) {
  index_t most = 0;
  Kokkos::parallel_reduce(
      "trimix::block_sparse::capacity", Kokkos::RangePolicy<ExecSpace>(exec, 0, rows),
      KOKKOS_LAMBDA(index_t r, index_t & m) {
        const index_t c = count_of(r);
        if (c > m) m = c;
      },
      Kokkos::Max<index_t>(most));
  return most > 0 ? most : 0;  // no rows: Max leaves its identity
}

}  // namespace impl

/// A map from a dense tile map `tiles` [batch][heads][q_blocks][kv_blocks] of integers
/// (0 empty, 1 partial, 2 full), accessible from `exec`. capacity = the longest row.
template <class ExecSpace, class TileMap>
BlockSparseMap<typename ExecSpace::memory_space> block_sparse_from_tile_map(
    const ExecSpace& exec, const TileMap& tiles, index_t seq_q, index_t seq_k, index_t block_q, index_t block_k) {
  static_assert(Kokkos::is_view<TileMap>::value && TileMap::rank == 4,
                "block_sparse_from_tile_map: tiles must be a rank-4 Kokkos::View");
  static_assert(Kokkos::SpaceAccessibility<ExecSpace, typename TileMap::memory_space>::accessible,
                "block_sparse_from_tile_map: tiles must be accessible from the execution space");
  TRIMIX_REQUIRE("block_sparse_from_tile_map", block_q > 0 && block_k > 0 && seq_q >= 0 && seq_k >= 0,
                 "block sizes must be positive and lengths >= 0");
  const index_t batch = index_t(tiles.extent(0)), heads = index_t(tiles.extent(1));
  const index_t qb = (seq_q + block_q - 1) / block_q, kb = (seq_k + block_k - 1) / block_k;
  TRIMIX_REQUIRE("block_sparse_from_tile_map", index_t(tiles.extent(2)) == qb && index_t(tiles.extent(3)) == kb,
                 "tiles is (", tiles.extent(0), ", ", tiles.extent(1), ", ", tiles.extent(2), ", ",
                 tiles.extent(3), "), expected q_blocks ", qb, " x kv_blocks ", kb);
  TRIMIX_REQUIRE("block_sparse_from_tile_map", kb < max_kv_blocks, "seq_k / block_k must stay below 2^30 kv-blocks");
  const index_t rows = batch * heads * qb;
  index_t bad = 0;
  Kokkos::parallel_reduce(
      "trimix::block_sparse::check_tile_map", Kokkos::RangePolicy<ExecSpace>(exec, 0, rows),
      KOKKOS_LAMBDA(index_t r, index_t & n) {
        for (index_t u = 0; u < kb; ++u) {
          const index_t c = index_t(tiles(r / (heads * qb), r / qb % heads, r % qb, u));
          n += (c < 0 || c > 2) ? 1 : 0;
        }
      },
      bad);
  TRIMIX_REQUIRE("block_sparse_from_tile_map", bad == 0, "tiles holds ", bad,
                 " values other than 0 (empty), 1 (partial) and 2 (full)");
  const index_t capacity = impl::max_row_count(exec, rows, KOKKOS_LAMBDA(index_t r) {
    index_t c = 0;
    for (index_t u = 0; u < kb; ++u) c += tiles(r / (heads * qb), r / qb % heads, r % qb, u) != 0 ? 1 : 0;
    return c;
  });
  BlockSparseMap<typename ExecSpace::memory_space> map(batch, heads, seq_q, seq_k, block_q, block_k, capacity);
  auto entries = map.entries();
  auto counts = map.counts();
  Kokkos::parallel_for(
      "trimix::block_sparse::from_tile_map", Kokkos::RangePolicy<ExecSpace>(exec, 0, rows),
      KOKKOS_LAMBDA(index_t r) {
        const index_t b = r / (heads * qb), h = r / qb % heads, q = r % qb;
        std::int32_t c = 0;
        for (index_t u = 0; u < kb; ++u) {
          const auto cls = tiles(b, h, q, u);
          if (cls != 0) entries(b, h, q, c++) = std::int32_t(u) * 2 + (cls >= 2 ? 1 : 0);
        }
        counts(b, h, q) = c;
      });
  return map;
}

/// A map from CSR index lists: row r = (b * heads + h) * q_blocks + qb lists kv-blocks
/// indices[offsets[r] .. offsets[r + 1]) (any order, repeats allowed), with classes[k] per index
/// (0 is not allowed, 1 partial, 2 full) or all Partial when `classes` has extent 0.
template <class ExecSpace, class Offsets, class Indices, class Classes>
BlockSparseMap<typename ExecSpace::memory_space> block_sparse_from_indices(
    const ExecSpace& exec, const Offsets& offsets, const Indices& indices, const Classes& classes,
    index_t batch, index_t heads, index_t seq_q, index_t seq_k, index_t block_q, index_t block_k) {
  static_assert(Kokkos::is_view<Offsets>::value && Kokkos::is_view<Indices>::value && Kokkos::is_view<Classes>::value,
                "block_sparse_from_indices: offsets, indices, classes must be Kokkos::Views");
  static_assert(Kokkos::SpaceAccessibility<ExecSpace, typename Offsets::memory_space>::accessible &&
                    Kokkos::SpaceAccessibility<ExecSpace, typename Indices::memory_space>::accessible &&
                    Kokkos::SpaceAccessibility<ExecSpace, typename Classes::memory_space>::accessible,
                "block_sparse_from_indices: views must be accessible from the execution space");
  TRIMIX_REQUIRE("block_sparse_from_indices", batch >= 0 && heads > 0 && block_q > 0 && block_k > 0,
                 "batch >= 0, heads > 0 and positive block sizes required");
  const index_t qb = (seq_q + block_q - 1) / block_q, kb = (seq_k + block_k - 1) / block_k;
  const index_t rows = batch * heads * qb;
  TRIMIX_REQUIRE("block_sparse_from_indices", index_t(offsets.extent(0)) == rows + 1,
                 "offsets has ", offsets.extent(0), " entries, expected rows + 1 = ", rows + 1);
  TRIMIX_REQUIRE("block_sparse_from_indices",
                 classes.extent(0) == 0 || classes.extent(0) == indices.extent(0),
                 "classes has ", classes.extent(0), " entries, expected 0 or ", indices.extent(0));
  const bool with_classes = classes.extent(0) != 0;
  TRIMIX_REQUIRE("block_sparse_from_indices", kb < max_kv_blocks, "seq_k / block_k must stay below 2^30 kv-blocks");
  const index_t n_indices = index_t(indices.extent(0));
  index_t bad_offsets = 0;
  Kokkos::parallel_reduce(
      "trimix::block_sparse::check_offsets", Kokkos::RangePolicy<ExecSpace>(exec, 0, rows + 1),
      KOKKOS_LAMBDA(index_t r, index_t & n) {
        const index_t o = index_t(offsets(r));
        n += (o < 0 || o > n_indices || (r > 0 && index_t(offsets(r - 1)) > o)) ? 1 : 0;
      },
      bad_offsets);
  TRIMIX_REQUIRE("block_sparse_from_indices", bad_offsets == 0, "offsets must be non-decreasing within [0, ",
                 n_indices, "] (", bad_offsets, " are not)");
  // Distinct in-range blocks per row, found by counting over the row's own entries: O(len^2) per
  // row, fine for the short lists estimators produce, and no scratch.
  index_t bad = 0;
  Kokkos::parallel_reduce(
      "trimix::block_sparse::check_indices", Kokkos::RangePolicy<ExecSpace>(exec, 0, index_t(indices.extent(0))),
      KOKKOS_LAMBDA(index_t k, index_t & n) {
        const index_t u = index_t(indices(k));
        const index_t c = with_classes ? index_t(classes(k)) : 1;
        if (u < 0 || u >= kb || c < 1 || c > 2) ++n;
      },
      bad);
  TRIMIX_REQUIRE("block_sparse_from_indices", bad == 0, bad,
                 " indices are outside [0, kv_blocks = ", kb, ") or have a class other than 1 or 2");
  const index_t capacity = impl::max_row_count(exec, rows, KOKKOS_LAMBDA(index_t r) {
    index_t c = 0;
    for (index_t k = index_t(offsets(r)); k < index_t(offsets(r + 1)); ++k) {
      bool first = true;
      for (index_t e = index_t(offsets(r)); e < k; ++e) first = first && indices(e) != indices(k);
      c += first ? 1 : 0;
    }
    return c;
  });
  BlockSparseMap<typename ExecSpace::memory_space> map(batch, heads, seq_q, seq_k, block_q, block_k, capacity);
  auto entries = map.entries();
  auto counts = map.counts();
  Kokkos::parallel_for(
      "trimix::block_sparse::from_indices", Kokkos::RangePolicy<ExecSpace>(exec, 0, rows),
      KOKKOS_LAMBDA(index_t r) {
        const index_t b = r / (heads * qb), h = r / qb % heads, q = r % qb;
        std::int32_t c = 0;
        for (index_t k = index_t(offsets(r)); k < index_t(offsets(r + 1)); ++k) {
          const std::int32_t u = std::int32_t(indices(k));
          const std::int32_t full = with_classes && classes(k) >= 2 ? 1 : 0;
          // Insertion into the sorted row; a repeat keeps the larger class.
          std::int32_t at = 0;
          while (at < c && (entries(b, h, q, at) >> 1) < u) ++at;
          if (at < c && (entries(b, h, q, at) >> 1) == u) {
            entries(b, h, q, at) |= full;
            continue;
          }
          for (std::int32_t e = c; e > at; --e) entries(b, h, q, e) = entries(b, h, q, e - 1);
          entries(b, h, q, at) = u * 2 + full;
          ++c;
        }
        counts(b, h, q) = c;
      });
  return map;
}

/// As above with every listed block Partial.
template <class ExecSpace, class Offsets, class Indices>
BlockSparseMap<typename ExecSpace::memory_space> block_sparse_from_indices(
    const ExecSpace& exec, const Offsets& offsets, const Indices& indices, index_t batch, index_t heads,
    index_t seq_q, index_t seq_k, index_t block_q, index_t block_k) {
  return block_sparse_from_indices(exec, offsets, indices,
                                   Kokkos::View<const std::int32_t*, typename ExecSpace::memory_space>(),
                                   batch, heads, seq_q, seq_k, block_q, block_k);
}

/// A copy of `map` in another memory space (e.g. the host, for trimix::reference).
template <class To, class From>
BlockSparseMap<To> mirror(const BlockSparseMap<From>& map) {
  BlockSparseMap<To> copy(map.batch(), map.heads(), map.seq_q(), map.seq_k(), map.block_q(), map.block_k(),
                          map.capacity());
  Kokkos::deep_copy(copy.entries(), map.entries());
  Kokkos::deep_copy(copy.counts(), map.counts());
  return copy;
}

}  // namespace trimix
