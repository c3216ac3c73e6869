#pragma once
/// \file plan.hpp
/// Which work items exist and how long rows are split (DESIGN.md section 4).
///
/// A work item is (batch, kv-head, head block, q-tile, [tile_begin, tile_end)): the query heads of
/// one head block share a kv-head (GQA packing: each K/V tile is loaded once for all of them),
/// and [tile_begin, tile_end) counts the q-tile's visited kv-tiles in run order. Q-tiles that visit
/// far more tiles than the mean (Triangle's last rows) are cut into several items ("splits") whose
/// partial results the combine pass merges by LSE. Items are ordered longest first so that dynamic
/// scheduling ends with the short ones. Everything here is O(number of tiles): no N x N data.

#include <trimix/mask.hpp>
#include <trimix/problem.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace trimix {

/// The tile shape an engine works in: `q_rows` query positions per q-tile, `kv_tile` keys per
/// kv-tile, and up to `max_heads_per_item` query heads of one GQA group packed into one item.
struct TileShape {
  index_t q_rows = 64;
  index_t kv_tile = 64;
  index_t max_heads_per_item = 8;
  /// Most kv-tiles one item may visit, 0 for no limit: an engine's own bound (the CUDA engine keeps
  /// an item's tile list on chip). Longer q-tiles are split even with SplitKv::never.
  index_t max_tiles_per_item = 0;
  /// Items the engine runs at once on the device (0: unknown). When known, automatic splits are
  /// no shorter than a balanced share of the work (split_length).
  index_t concurrent_items = 0;
};

/// One unit of work for a team.
struct WorkItem {
  std::int32_t batch = 0, kv_head = 0, head_block = 0, q_tile = 0;
  std::int32_t tile_begin = 0, tile_end = 0;  ///< range of visited kv-tiles, in run order
  std::int32_t split_slot = -1;               ///< -1: writes o directly; else partial slot
};

/// An item's kv-tiles as at most `max_item_runs` runs [begin, end), each Full or Partial, in run
/// order: filled by the plan when the mask is the same for every head (its runs are known on the
/// host). Engines expand them in parallel; without them the portable kernel walks the policy's
/// cursor and the CUDA engine classifies the q-tile's kv-tiles with all its threads (one thread
/// walking the cursor before the tile loop held 23% of the triangle kernel's warp-stall samples
/// and ~40% of the block-sparse kernel's: ncu, bench/NOTES.md). `count` is -1 where kernels must
/// ask the policy: head-dependent masks, or items whose tiles take more runs.
constexpr int max_item_runs = 6;
struct ItemRuns {
  std::int32_t count = -1;
  std::uint32_t partial = 0;  ///< bit i: run i is Partial
  std::int32_t begin[max_item_runs] = {}, end[max_item_runs] = {};
};

/// The tile entry (tile * 2 + partial) at position `ordinal` of an item's runs, -1 past the end.
TRIMIX_FUNCTION std::int32_t run_entry(const ItemRuns& runs, std::int32_t ordinal) {
  for (int i = 0; i < max_item_runs; ++i) {
    if (i >= runs.count) break;
    const std::int32_t length = runs.end[i] - runs.begin[i];
    if (ordinal < length) return (runs.begin[i] + ordinal) * 2 + std::int32_t((runs.partial >> i) & 1u);
    ordinal -= length;
  }
  return -1;
}

/// Where a band item's sink keys can ride inside another of its kv-tiles. Rows of a SinkWindow
/// policy whose windows all start past kv-tile 0 see, in tile 0, exactly the sink keys
/// [0, sink). When `rows` (>= sink, < kv_tile) key columns of the item's diagonal tile (past its
/// last position) or of its first window tile (before its first row's window) are seen by no
/// row, an engine may load keys [0, rows) into those columns and skip tile 0: one tile step less
/// per item (a band item of Triangle(8, 512, 128) visits the sink tile, 8 visible keys of 64,
/// and 9 window tiles). Rows seeing such a tile get the sink keys' bits ORed into its columns.
struct SinkFold {
  index_t tile = -1;   ///< the kv-tile whose columns [column, column + rows) carry keys [0, rows); -1: none
  index_t column = 0;  ///< 0 (the first window tile) or kv_tile - rows (the diagonal tile)
};
/// The fold for the rows at positions [first_position, last_position] (see SinkFold), or none.
TRIMIX_FUNCTION SinkFold sink_fold(const SinkWindow& shape, index_t first_position, index_t last_position,
                                   index_t kv_tile, index_t seq_k, index_t rows) {
  if (shape.sink < 1 || rows < shape.sink || rows >= kv_tile || shape.window < 1 || first_position > last_position ||
      last_position >= seq_k)
    return SinkFold{};
  // No last row among them (those see every key) ...
  if (last_position >= seq_k - shape.last_rows) return SinkFold{};
  // ... and every row's window starts past tile 0, so tile 0 holds only their sink keys.
  const index_t window_first = first_position - (shape.window - 1);
  if (window_first < kv_tile) return SinkFold{};
  const index_t last_tile = last_position / kv_tile;
  if (last_position - last_tile * kv_tile + 1 <= kv_tile - rows) return SinkFold{last_tile, kv_tile - rows};
  const index_t first_tile = window_first / kv_tile;
  if (window_first - first_tile * kv_tile >= rows) return SinkFold{first_tile, 0};
  return SinkFold{};
}
/// Whether an item's runs start with kv-tile 0 and also visit `tile`: its sink fold into `tile`
/// applies (a split item may hold only some of the q-tile's tiles).
TRIMIX_FUNCTION bool runs_hold_sink_fold(const ItemRuns& runs, index_t tile) {
  if (runs.count < 1 || runs.begin[0] != 0) return false;
  for (int i = 0; i < max_item_runs; ++i)
    if (i < runs.count && runs.begin[i] <= tile && tile < runs.end[i]) return true;
  return false;
}

/// A q-tile (of one batch, kv-head and head block) whose tiles were split over `splits` items
/// writing partial slots first_slot .. first_slot + splits - 1.
struct SplitGroup {
  std::int32_t batch = 0, kv_head = 0, head_block = 0, q_tile = 0;
  std::int32_t first_slot = 0, splits = 0;
};

/// The work list of one problem shape and mask, reusable across calls with the same shapes.
template <class MemorySpace>
struct Plan {
  TileGeometry geometry;
  index_t batch = 0, q_heads = 0, kv_heads = 0;
  index_t heads_per_item = 1;       ///< query heads packed per item (divides the group size)
  index_t rows_per_item = 0;        ///< heads_per_item * q_rows
  index_t visited_tiles = 0;        ///< kv-tiles visited per unit (batch, kv-head, head block), summed over q-tiles
  index_t longest_q_tile = 0;       ///< most kv-tiles visited by one q-tile
  index_t max_tiles_per_item = 0;   ///< the split length in effect
  index_t split_slots = 0;          ///< partial results the combine pass merges
  bool runs_complete = false;       ///< every item has its runs (count >= 0): no engine walks the policy
  Kokkos::View<WorkItem*, MemorySpace> items;
  Kokkos::View<ItemRuns*, MemorySpace> runs;  ///< per item, in the same order
  Kokkos::View<SplitGroup*, MemorySpace> groups;

  index_t item_count() const { return index_t(items.extent(0)); }
  index_t group_count() const { return index_t(groups.extent(0)); }
};

namespace impl {

/// Number of kv-tiles that q-tile `qt` visits, from its runs: O(runs).
template <class Mask>
TRIMIX_FUNCTION index_t visited_tiles(const Mask& mask, const TileGeometry& g, index_t qt) {
  auto cursor = kv_runs(mask, g, qt);
  KvRun run;
  index_t count = 0;
  while (cursor.next(run)) count += run.end - run.begin;
  return count;
}

/// The runs of q-tile `qt` between its visited-tile ordinals [first, last), or count -1 when they
/// take more than max_item_runs runs. O(runs).
template <class Mask>
ItemRuns item_runs(const Mask& mask, const TileGeometry& g, index_t qt, index_t first, index_t last) {
  ItemRuns out;
  out.count = 0;
  auto cursor = kv_runs(mask, g, qt);
  KvRun run;
  index_t ordinal = 0;  // of run.begin
  while (ordinal < last && cursor.next(run)) {
    const index_t length = run.end - run.begin;
    const index_t lo = std::max(first, ordinal), hi = std::min(last, ordinal + length);
    if (lo < hi) {
      if (out.count == max_item_runs) return ItemRuns{};
      out.begin[out.count] = std::int32_t(run.begin + (lo - ordinal));
      out.end[out.count] = std::int32_t(run.begin + (hi - ordinal));
      if (run.cls == TileClass::partial) out.partial |= 1u << out.count;
      ++out.count;
    }
    ordinal += length;
  }
  return out;
}

/// Largest divisor of `group` that is at most `cap` (heads packed per item).
inline index_t heads_per_item(index_t group, index_t cap) {
  for (index_t h = std::min(group, cap); h > 1; --h)
    if (group % h == 0) return h;
  return 1;
}

/// Shortest split: below this a split costs more in combine traffic than it saves.
constexpr index_t min_tiles_per_split = 8;

/// Split length: `max_tiles_per_item` when set, else twice the mean q-tile (at least
/// min_tiles_per_split) or, when the engine says how many items run at once, the balanced share
/// (all visited tiles / concurrent items) if that is longer: items are ordered longest first, so
/// an item of at most one share, started first, ends with the others, and every split costs a
/// partial output and its combine. (On the H200, twice the mean cut Triangle's last rows into
/// about 13 items at 16K and 51 at 64K; with the share they stay whole, and the 64K trace shows
/// no combine: bench/NOTES.md.) The longest q-tile with SplitKv::never; never above the engine's
/// bound.
inline index_t split_length(index_t visited_per_unit, index_t units, index_t q_tiles, index_t longest,
                            const TileShape& shape, const AttentionOptions& options) {
  const index_t mean = q_tiles ? (visited_per_unit + q_tiles - 1) / q_tiles : 0;
  index_t chunk = options.max_tiles_per_item > 0 ? options.max_tiles_per_item : std::max(min_tiles_per_split, 2 * mean);
  if (options.max_tiles_per_item == 0 && shape.concurrent_items > 0)
    chunk = std::max(chunk, visited_per_unit * units / shape.concurrent_items);
  if (options.split_kv == SplitKv::never) chunk = std::max<index_t>(longest, 1);
  if (shape.max_tiles_per_item > 0) chunk = std::min(chunk, shape.max_tiles_per_item);
  return chunk;
}

/// Items a q-tile of `count` visited tiles is cut into at split length `chunk` (at least one:
/// a q-tile without tiles still writes its rows).
TRIMIX_FUNCTION index_t split_count(index_t count, index_t chunk) {
  return count > chunk ? (count + chunk - 1) / chunk : 1;
}

/// The item of `unit` (batch, kv-head, head block, in that order of significance) and q-tile
/// `qt` over its visited tiles [begin, end), without a partial slot.
TRIMIX_FUNCTION WorkItem unit_item(index_t unit, index_t kv_heads, index_t head_blocks, index_t qt, index_t begin,
                                   index_t end) {
  WorkItem w;
  w.batch = std::int32_t(unit / (kv_heads * head_blocks));
  w.kv_head = std::int32_t(unit / head_blocks % kv_heads);
  w.head_block = std::int32_t(unit % head_blocks);
  w.q_tile = std::int32_t(qt);
  w.tile_begin = std::int32_t(begin);
  w.tile_end = std::int32_t(end);
  return w;
}

/// The mask of a unit's heads (batch, kv-head, head block): the plan packs only heads that share it.
template <class Mask>
struct UnitMask {
  Mask mask;
  index_t units_per_batch, heads_per_block, q_heads;
  TRIMIX_FUNCTION auto operator()(index_t unit) const {
    return bind_head(mask, unit / units_per_batch, unit % units_per_batch * heads_per_block, q_heads);
  }
};

/// The items of a head-dependent (per-unit) mask, built where the mask's data lives: these plans
/// are made on every call of a dynamic layer, and the host version (count copied back, chunks
/// sorted and staged, items copied over) took ~6 of the 8 ms of a 64K vertical-slash plan on the
/// H200 (bench/NOTES.md). Each (unit, q-tile) e visits count(e) tiles, cut into splits(e) items
/// of length class c(e) = (longest item of e) * 16 / (longest item + 1); the items are ordered by
/// class, longest first, then by e (unit by unit, q-tiles in order), which one scan over (class,
/// e) gives; split q-tiles take partial slots and a SplitGroup in e order (a second scan). Four
/// small results come back to the host (two reductions and two scan totals), nothing else.
template <class ExecSpace, class Mask>
void plan_per_unit(const ExecSpace& exec, Plan<typename ExecSpace::memory_space>& plan, const Mask& mask,
                   index_t units, index_t head_blocks, const TileShape& shape, const AttentionOptions& options) {
  using Memory = typename ExecSpace::memory_space;
  using Range = Kokkos::RangePolicy<ExecSpace>;
  const TileGeometry g = plan.geometry;
  const index_t q_tiles = g.q_tiles(), n = units * q_tiles, classes = 16;
  const index_t q_heads = plan.q_heads, kv_heads = plan.kv_heads, heads_per_block = plan.heads_per_item;
  Kokkos::View<index_t*, Memory> count(Kokkos::view_alloc(Kokkos::WithoutInitializing, "trimix::plan::counts"),
                                       std::size_t(n));
  const UnitMask<Mask> unit_mask{mask, kv_heads * head_blocks, heads_per_block, q_heads};
  if constexpr (Kokkos::SpaceAccessibility<Kokkos::HostSpace, Memory>::accessible) {
    // CPUs: one (unit, q-tile) per iteration, walking its runs: O(visited tiles).
    Kokkos::parallel_for(
        "trimix::plan[count]", Range(exec, 0, n),
        KOKKOS_LAMBDA(index_t e) { count(e) = visited_tiles(unit_mask(e / q_tiles), g, e % q_tiles); });
  } else {
    // GPUs: a team per (unit, q-tile), its threads classifying the kv-tiles (the tile contract:
    // runs list exactly the tiles classify calls non-empty). One thread per q-tile walking the
    // runs cursor took 1.6 ms at 64K on the H200, one dependent map read after another.
    using Team = typename Kokkos::TeamPolicy<ExecSpace>::member_type;
    const index_t kv_tiles = g.kv_tiles();
    Kokkos::parallel_for(
        "trimix::plan[count]", Kokkos::TeamPolicy<ExecSpace>(exec, int(n), 64), KOKKOS_LAMBDA(const Team& team) {
          const index_t e = team.league_rank(), qt = e % q_tiles;
          const auto m = unit_mask(e / q_tiles);
          index_t visited = 0;
          Kokkos::parallel_reduce(
              Kokkos::TeamThreadRange(team, kv_tiles),
              [&](index_t u, index_t& sum) { sum += trimix::classify(m, g, qt, u) != TileClass::empty ? 1 : 0; },
              visited);
          Kokkos::single(Kokkos::PerTeam(team), [&]() { count(e) = visited; });
        });
  }
  index_t visited = 0, longest = 0;
  Kokkos::parallel_reduce(
      "trimix::plan[visited]", Range(exec, 0, n), KOKKOS_LAMBDA(index_t e, index_t & sum) { sum += count(e); }, visited);
  Kokkos::parallel_reduce(
      "trimix::plan[longest]", Range(exec, 0, n),
      KOKKOS_LAMBDA(index_t e, index_t & most) { most = count(e) > most ? count(e) : most; },
      Kokkos::Max<index_t>(longest));
  plan.visited_tiles = units > 0 ? visited / units : 0;  // per unit, on average
  plan.longest_q_tile = longest;
  const index_t chunk = split_length(plan.visited_tiles, units, q_tiles, longest, shape, options);
  plan.max_tiles_per_item = chunk;
  // Every item is at most min(longest, chunk) tiles long: the classes' scale.
  const index_t scale = std::max<index_t>(1, std::min(longest, chunk)) + 1;

  // Items before each e: scan over x = rank * n + e (rank 0 the longest class), counting e's
  // splits where its class has that rank.
  Kokkos::View<index_t*, Memory> first_item(Kokkos::view_alloc(Kokkos::WithoutInitializing, "trimix::plan::first_item"),
                                            std::size_t(n));
  index_t n_items = 0;
  Kokkos::parallel_scan(
      "trimix::plan[order]", Range(exec, 0, classes * n),
      KOKKOS_LAMBDA(index_t x, index_t & before, bool final) {
        const index_t e = x % n, c = count(e);
        const index_t splits = split_count(c, chunk);
        const index_t cls = (c + splits - 1) / splits * classes / scale;  // of e's longest item
        if (classes - 1 - x / n != cls) return;
        if (final) first_item(e) = before;
        before += splits;
      },
      n_items);
  // Split groups and partial slots before each e, packed as (groups << 32) + slots.
  Kokkos::View<std::int64_t*, Memory> first_split(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "trimix::plan::first_split"), std::size_t(n));
  std::int64_t split_total = 0;
  Kokkos::parallel_scan(
      "trimix::plan[splits]", Range(exec, 0, n),
      KOKKOS_LAMBDA(index_t e, std::int64_t & before, bool final) {
        const index_t splits = split_count(count(e), chunk);
        if (final) first_split(e) = before;
        if (splits > 1) before += (std::int64_t(1) << 32) + splits;
      },
      split_total);
  const index_t n_groups = index_t(split_total >> 32);
  plan.split_slots = index_t(split_total & 0xFFFFFFFF);
  plan.items = Kokkos::View<WorkItem*, Memory>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "trimix::plan::items"),
                                               std::size_t(n_items));
  plan.runs = Kokkos::View<ItemRuns*, Memory>("trimix::plan::runs", std::size_t(n_items));  // count -1: ask the policy
  plan.groups = Kokkos::View<SplitGroup*, Memory>(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "trimix::plan::groups"), std::size_t(n_groups));
  auto items = plan.items;
  auto groups = plan.groups;
  Kokkos::parallel_for(
      "trimix::plan[items]", Range(exec, 0, n), KOKKOS_LAMBDA(index_t e) {
        const index_t unit = e / q_tiles, qt = e % q_tiles, c = count(e), splits = split_count(c, chunk);
        const index_t slot = index_t(first_split(e) & 0xFFFFFFFF), group = index_t(first_split(e) >> 32);
        WorkItem w;
        for (index_t s = 0; s < splits; ++s) {
          w = unit_item(unit, kv_heads, head_blocks, qt, s * c / splits, (s + 1) * c / splits);
          w.split_slot = splits > 1 ? std::int32_t(slot + s) : -1;
          items(first_item(e) + s) = w;
        }
        if (splits > 1)
          groups(group) = SplitGroup{w.batch, w.kv_head, w.head_block, w.q_tile, std::int32_t(slot), std::int32_t(splits)};
      });
  exec.fence();  // the counts and offsets die here
}

}  // namespace impl

/// Builds the plan of a problem: on the host, copied to `exec`'s memory space, when every head has
/// the same mask; in `exec` (impl::plan_per_unit) for head-dependent masks.
template <class ExecSpace, class Mask>
Plan<typename ExecSpace::memory_space> make_plan(const ExecSpace& exec, const impl::Problem& problem,
                                                 const Mask& mask, const TileShape& shape,
                                                 const AttentionOptions& options) {
  static_assert(check_mask_policy<Mask>());
  TRIMIX_REQUIRE("make_plan", shape.q_rows > 0 && shape.kv_tile > 0 && shape.max_heads_per_item > 0,
                 "tile shape must be positive, got q_rows ", shape.q_rows, ", kv_tile ", shape.kv_tile,
                 ", max_heads_per_item ", shape.max_heads_per_item);
  TRIMIX_REQUIRE("make_plan", options.max_tiles_per_item >= 0,
                 "options.max_tiles_per_item must be >= 0, got ", options.max_tiles_per_item);
  using Memory = typename ExecSpace::memory_space;
  Plan<Memory> plan;
  plan.geometry = TileGeometry{problem.seq_q, problem.seq_k, shape.q_rows, shape.kv_tile};
  plan.batch = problem.batch;
  plan.q_heads = problem.q_heads;
  plan.kv_heads = problem.kv_heads;
  const index_t group = problem.kv_heads ? problem.group_size() : 1;
  // A mask that differs between the heads of a GQA group gets one head per item: packed heads
  // would each compute the union of their tiles.
  const bool packable = uniform_within_group(mask, problem.q_heads, problem.kv_heads);
  plan.heads_per_item = impl::heads_per_item(group, packable ? shape.max_heads_per_item : 1);
  plan.rows_per_item = plan.heads_per_item * shape.q_rows;
  const index_t head_blocks = group / plan.heads_per_item;
  const TileGeometry g = plan.geometry;
  const index_t q_tiles = g.q_tiles();
  check_policy_fits(mask, "make_plan", g, problem.batch, problem.q_heads);

  const index_t units = problem.batch * problem.kv_heads * head_blocks;
  // Head-dependent masks: per (unit, q-tile), planned where the mask's data lives.
  constexpr bool per_unit = impl::is_head_dependent<Mask>::value;
  if constexpr (per_unit) {
    impl::plan_per_unit(exec, plan, mask, units, head_blocks, shape, options);
  } else {
    // Otherwise every unit has the same runs: visited tiles per q-tile, on the host.
    std::vector<index_t> count(static_cast<std::size_t>(q_tiles));
    for (index_t qt = 0; qt < q_tiles; ++qt) count[std::size_t(qt)] = impl::visited_tiles(mask, g, qt);
    for (index_t c : count) {
      plan.visited_tiles += c;
      plan.longest_q_tile = std::max(plan.longest_q_tile, c);
    }
    const index_t chunk =
        impl::split_length(plan.visited_tiles, units, q_tiles, plan.longest_q_tile, shape, options);
    plan.max_tiles_per_item = chunk;

    // Chunks of each q-tile, longest first; then one item per chunk and unit (the mask is the same
    // for all of them). 32-bit fields, one allocation and an in-place sort.
    struct Chunk {
      std::int32_t q_tile, begin, end, split, splits, length_class;
    };
    index_t n_chunks = 0, split_groups = 0;
    for (index_t c : count) {
      const index_t splits = impl::split_count(c, chunk);
      n_chunks += splits;
      if (splits > 1) ++split_groups;
    }
    std::vector<Chunk> chunks;
    chunks.reserve(std::size_t(n_chunks));
    std::vector<std::int32_t> first_slot(count.size(), -1);  // of a split q-tile, within its unit
    index_t slots_per_unit = 0;
    for (index_t qt = 0; qt < q_tiles; ++qt) {
      const index_t c = count[std::size_t(qt)], splits = impl::split_count(c, chunk);
      if (splits > 1) {
        first_slot[std::size_t(qt)] = std::int32_t(slots_per_unit);
        slots_per_unit += splits;
      }
      for (index_t s = 0; s < splits; ++s)
        chunks.push_back(Chunk{std::int32_t(qt), std::int32_t(s * c / splits), std::int32_t((s + 1) * c / splits),
                               std::int32_t(s), std::int32_t(splits), 0});
    }
    // Order: longest first in 16 coarse length classes (dynamic scheduling ends with short items);
    // inside a class unit by unit (batch, kv-head, head block: the item loop below) and by the
    // chunk's first ordinal in its q-tile's run order (for causal rows, its first kv-tile), so
    // that the work items running at the same time read one kv-head's same kv range. Past 32K
    // keys a kv-head's K/V no longer fits in L2 beside the others', and interleaving heads and
    // ranges made long causal runs stream K/V from HBM (bench/NOTES.md, e46e70d). Ties keep the
    // order the chunks were made in (q-tile, split), so the sort needs no stability.
    index_t longest_chunk = 1;
    for (const Chunk& ch : chunks) longest_chunk = std::max<index_t>(longest_chunk, ch.end - ch.begin);
    for (Chunk& ch : chunks) ch.length_class = std::int32_t(index_t(ch.end - ch.begin) * 16 / (longest_chunk + 1));
    std::sort(chunks.begin(), chunks.end(), [](const Chunk& a, const Chunk& b) {
      if (a.length_class != b.length_class) return a.length_class > b.length_class;
      if (a.begin != b.begin) return a.begin < b.begin;
      if (a.end - a.begin != b.end - b.begin) return a.end - a.begin > b.end - b.begin;
      if (a.q_tile != b.q_tile) return a.q_tile < b.q_tile;
      return a.split < b.split;
    });

    plan.split_slots = units * slots_per_unit;
    auto items = Kokkos::View<WorkItem*, Kokkos::HostSpace>("trimix::plan::items", std::size_t(units) * chunks.size());
    auto runs = Kokkos::View<ItemRuns*, Kokkos::HostSpace>("trimix::plan::runs", items.extent(0));
    auto groups = Kokkos::View<SplitGroup*, Kokkos::HostSpace>("trimix::plan::groups", std::size_t(units * split_groups));
    std::size_t n_items = 0, n_groups = 0;
    bool runs_complete = true;
    for (std::size_t run = 0; run < chunks.size();) {  // runs of one length class
      std::size_t run_end = run + 1;
      while (run_end < chunks.size() && chunks[run_end].length_class == chunks[run].length_class) ++run_end;
      // Runs are the same for every unit of a chunk.
      std::vector<ItemRuns> chunk_runs(run_end - run);
      for (std::size_t c = 0; c < chunk_runs.size(); ++c) {
        chunk_runs[c] = impl::item_runs(mask, g, chunks[run + c].q_tile, chunks[run + c].begin, chunks[run + c].end);
        if (chunk_runs[c].count < 0) runs_complete = false;
      }
      for (index_t unit = 0; unit < units; ++unit)
        for (std::size_t c = run; c < run_end; ++c) {
          const Chunk& ch = chunks[c];
          runs(n_items) = chunk_runs[c - run];
          WorkItem w = impl::unit_item(unit, problem.kv_heads, head_blocks, ch.q_tile, ch.begin, ch.end);
          if (ch.splits > 1) {
            const index_t base = unit * slots_per_unit + first_slot[std::size_t(ch.q_tile)];
            w.split_slot = std::int32_t(base + ch.split);
            if (ch.split == 0)
              groups(n_groups++) = SplitGroup{w.batch, w.kv_head, w.head_block, w.q_tile,
                                              std::int32_t(base), std::int32_t(ch.splits)};
          }
          items(n_items++) = w;
        }
      run = run_end;
    }
    plan.items = Kokkos::View<WorkItem*, Memory>(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, "trimix::plan::items"), n_items);
    plan.runs = Kokkos::View<ItemRuns*, Memory>(Kokkos::view_alloc(Kokkos::WithoutInitializing, "trimix::plan::runs"),
                                                 n_items);
    plan.groups = Kokkos::View<SplitGroup*, Memory>(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, "trimix::plan::groups"), n_groups);
    Kokkos::deep_copy(exec, plan.items, items);
    Kokkos::deep_copy(exec, plan.runs, runs);
    Kokkos::deep_copy(exec, plan.groups, groups);
    plan.runs_complete = runs_complete;
    exec.fence();  // the host staging views die here
  }
  return plan;
}

}  // namespace trimix
