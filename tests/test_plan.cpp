// The plan: an engine's limit on the tiles of one item (TileShape::max_tiles_per_item) holds for
// every item, with split-KV automatic or never, and the items still cover every visited tile once.
#include "test_config.hpp"

#include <trimix/kernel.hpp>
#include <trimix/mask.hpp>
#include <trimix/plan.hpp>

#include <catch2/catch_test_macros.hpp>

#include <map>
#include <random>
#include <tuple>

using trimix::index_t;

namespace {

/// The plan of `mask` at this shape; its items never exceed the split length in effect and cover
/// every visited tile of every (unit, q-tile) once.
template <class Mask>
auto check_items(const Mask& mask, index_t seq, const trimix::TileShape& shape, trimix::SplitKv split) {
  trimix::impl::Problem problem;
  problem.batch = 2;
  problem.q_heads = 8;
  problem.kv_heads = 2;
  problem.seq_q = problem.seq_k = seq;
  problem.head_dim = 64;
  trimix::AttentionOptions options;
  options.split_kv = split;
  const auto plan = trimix::make_plan(trimix_test::ExecSpace(), problem, mask, shape, options);
  auto items = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), plan.items);
  const index_t cap = plan.max_tiles_per_item;
  // Tiles per (batch, kv_head, head_block, q_tile), summed over the item's splits.
  std::map<std::tuple<int, int, int, int>, index_t> covered;
  for (std::size_t i = 0; i < items.extent(0); ++i) {
    const trimix::WorkItem& w = items(i);
    const index_t length = w.tile_end - w.tile_begin;
    CHECK(length >= 1);
    CHECK(length <= cap);
    covered[{w.batch, w.kv_head, w.head_block, w.q_tile}] += length;
  }
  const trimix::TileGeometry& g = plan.geometry;
  const index_t units = problem.batch * problem.kv_heads * (problem.group_size() / plan.heads_per_item);
  index_t expected_entries = 0;
  for (index_t qt = 0; qt < g.q_tiles(); ++qt) {
    const index_t visited = trimix::impl::visited_tiles(mask, g, qt);
    expected_entries += visited > 0 ? units : 0;
    for (const auto& [key, tiles] : covered)
      if (std::get<3>(key) == qt) CHECK(tiles == visited);
  }
  CHECK(index_t(covered.size()) == expected_entries);
  return plan;
}

template <class Mask>
void check_cap(const Mask& mask, index_t seq, index_t cap, trimix::SplitKv split) {
  const auto plan = check_items(mask, seq, trimix::TileShape{16, 64, 4, cap}, split);
  REQUIRE(plan.max_tiles_per_item <= cap);
}

/// Every item's runs (filled for masks that are the same for every head) expand to exactly the
/// entries the policy's walk gives, and end there.
template <class Mask>
void check_runs(const Mask& mask, index_t seq_q, index_t seq_k, index_t cap) {
  trimix::impl::Problem problem;
  problem.batch = 1;
  problem.q_heads = 4;
  problem.kv_heads = 2;
  problem.seq_q = seq_q;
  problem.seq_k = seq_k;
  problem.head_dim = 64;
  const trimix::TileShape shape{16, 64, 2, cap};
  const auto plan = trimix::make_plan(trimix_test::ExecSpace(), problem, mask, shape, trimix::AttentionOptions{});
  auto items = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), plan.items);
  auto runs = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), plan.runs);
  REQUIRE(runs.extent(0) == items.extent(0));
  CHECK(plan.runs_complete);  // the warp-specialised CUDA kernel takes only such plans
  for (std::size_t i = 0; i < items.extent(0); ++i) {
    const trimix::WorkItem& w = items(i);
    REQUIRE(runs(i).count >= 1);  // these masks take at most a few runs per q-tile
    REQUIRE(runs(i).count <= trimix::max_item_runs);
    auto walker = trimix::impl::walk_tiles(mask, plan.geometry, w);
    index_t tile = 0;
    bool partial = false;
    std::int32_t ordinal = 0;
    while (walker.next(tile, partial)) {
      REQUIRE(trimix::run_entry(runs(i), ordinal) == std::int32_t(tile * 2 + (partial ? 1 : 0)));
      ++ordinal;
    }
    CHECK(ordinal == w.tile_end - w.tile_begin);
    CHECK(trimix::run_entry(runs(i), ordinal) == -1);
  }
}

}  // namespace

TEST_CASE("plan: item runs expand to the policy's tiles, split or not", "[plan]") {
  for (index_t cap : {0, 7, 3}) {
    check_runs(trimix::Causal{}, 1000, 1000, cap);
    check_runs(trimix::Triangle{8, 512, 128}, 2100, 2100, cap);
    check_runs(trimix::Triangle{8, 64, 16}, 700, 900, cap);  // seq_q < seq_k, short window
    check_runs(trimix::Streaming{4, 100}, 1500, 1500, cap);
    check_runs(trimix::Causal{} & (trimix::Window{200} | trimix::Sink{70}), 1300, 1300, cap);
    check_runs(trimix::Full{}, 300, 517, cap);
  }
}

TEST_CASE("plan: an engine's max_tiles_per_item bounds every item, even with SplitKv::never", "[plan]") {
  for (auto split : {trimix::SplitKv::automatic, trimix::SplitKv::never}) {
    check_cap(trimix::Causal{}, 3000, 5, split);    // causal rows up to 47 tiles, cut in 5s
    check_cap(trimix::Triangle{8, 512, 128}, 4100, 3, split);
    check_cap(trimix::Causal{}, 100, 512, split);   // a cap above every row changes nothing
  }
}

TEST_CASE("plan: an engine that runs few items at once gets splits of at least a balanced share",
          "[plan]") {
  // Triangle's last rows are far longer than the mean q-tile: split at twice the mean without the
  // engine's concurrency, at all visited tiles / concurrent items with it.
  const trimix::Triangle triangle{8, 512, 128};
  const index_t seq = 8192;
  const auto unknown = check_items(triangle, seq, trimix::TileShape{16, 64, 4, 0, 0}, trimix::SplitKv::automatic);
  const index_t q_tiles = unknown.geometry.q_tiles();
  const index_t mean = (unknown.visited_tiles + q_tiles - 1) / q_tiles;
  CHECK(unknown.max_tiles_per_item == std::max<index_t>(8, 2 * mean));
  REQUIRE(unknown.split_slots > 0);  // the premise: without the concurrency the last rows are split
  const index_t units = 2 * 2 * (4 / unknown.heads_per_item);  // batch * kv_heads * head blocks
  for (index_t concurrent : {4, 16, 100000}) {
    CAPTURE(concurrent);
    const auto known =
        check_items(triangle, seq, trimix::TileShape{16, 64, 4, 0, concurrent}, trimix::SplitKv::automatic);
    const index_t share = known.visited_tiles * units / concurrent;
    CHECK(known.max_tiles_per_item == std::max(unknown.max_tiles_per_item, share));
    CHECK(known.items.extent(0) <= unknown.items.extent(0));
    CHECK(known.split_slots <= unknown.split_slots);
    if (concurrent == 4) CHECK(known.split_slots == 0);  // a quarter of the work is longer than any row
  }
  // An explicit max_tiles_per_item still wins over the engine's concurrency.
  trimix::impl::Problem problem;
  problem.batch = 1;
  problem.q_heads = problem.kv_heads = 1;
  problem.seq_q = problem.seq_k = seq;
  problem.head_dim = 64;
  trimix::AttentionOptions options;
  options.max_tiles_per_item = 3;
  const auto plan = trimix::make_plan(trimix_test::ExecSpace(), problem, triangle,
                                      trimix::TileShape{16, 64, 4, 0, 4}, options);
  CHECK(plan.max_tiles_per_item == 3);
}

namespace {

/// Every q-tile of `policy` at this shape: where sink_fold places the sink keys (q-tiles whose
/// whole tile list one item holds), no row sees the carrying columns, each row sees exactly keys
/// [0, sink) of tile 0, and the item's runs start at tile 0 and visit the carrying tile. Returns
/// the folds at a tile's start and at its end.
template <class Policy>
std::pair<int, int> check_sink_folds(const Policy& policy, index_t seq_q, index_t seq_k, index_t q_rows) {
  constexpr index_t kv_tile = 64;
  const trimix::TileGeometry g{seq_q, seq_k, q_rows, kv_tile};
  const trimix::SinkWindow shape = policy.sink_window();
  const index_t rows = (shape.sink + 7) / 8 * 8;
  int front = 0, back = 0;
  for (index_t qt = 0; qt < g.q_tiles(); ++qt) {
    const auto fold = trimix::sink_fold(shape, g.first_position(qt), g.last_position(qt), kv_tile, seq_k, rows);
    if (fold.tile < 0) continue;
    CAPTURE(trimix::mask_name(policy), shape.sink, shape.window, shape.last_rows, seq_q, seq_k, q_rows, qt,
            fold.tile, fold.column);
    REQUIRE(fold.tile > 0);
    REQUIRE((fold.column == 0 || fold.column == kv_tile - rows));
    const index_t tiles = trimix::impl::visited_tiles(policy, g, qt);
    CHECK(trimix::runs_hold_sink_fold(trimix::impl::item_runs(policy, g, qt, 0, tiles), fold.tile));
    // A split item without tile 0 holds no fold.
    if (tiles > 1) CHECK_FALSE(trimix::runs_hold_sink_fold(trimix::impl::item_runs(policy, g, qt, 1, tiles), fold.tile));
    for (index_t p = g.first_position(qt); p <= g.last_position(qt); ++p) {
      for (index_t j = 0; j < kv_tile; ++j) REQUIRE(trimix::visible(policy, p, j, seq_k) == (j < shape.sink));
      for (index_t c = fold.column; c < fold.column + rows; ++c)
        REQUIRE_FALSE(trimix::visible(policy, p, fold.tile * kv_tile + c, seq_k));
    }
    ++(fold.column == 0 ? front : back);
  }
  return {front, back};
}

}  // namespace

TEST_CASE("plan: sink_fold carries the sink keys only in columns no row sees", "[plan][sink_fold]") {
  std::mt19937_64 rng(2024);
  int front = 0, back = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const index_t seq_k = 1 + index_t(rng() % 1500), seq_q = 1 + index_t(rng() % std::uint64_t(seq_k));
    const index_t sink = index_t(rng() % 60), window = index_t(rng() % 700), last_rows = index_t(rng() % 200);
    const index_t q_rows = index_t(16) << (rng() % 3);  // the CUDA engine's 16, 32 and 64 positions
    const auto counts = trial % 2 ? check_sink_folds(trimix::Triangle{sink, window, last_rows}, seq_q, seq_k, q_rows)
                                  : check_sink_folds(trimix::Streaming{sink, window}, seq_q, seq_k, q_rows);
    front += counts.first;
    back += counts.second;
  }
  CHECK(front > 0);
  CHECK(back > 0);
  // Triangle(8, 512, 128) with GQA groups of 4 (16 positions an item): every band item folds,
  // the last rows and the rows whose window reaches tile 0 do not.
  const trimix::Triangle triangle{8, 512, 128};
  const index_t seq = 4096;
  const auto folds = check_sink_folds(triangle, seq, seq, 16);
  CHECK(folds.first + folds.second == (seq - 128 - 576) / 16);
  // Where the sink leaves no room in a tile, nothing folds.
  CHECK(trimix::sink_fold(trimix::SinkWindow{57, 512, 0}, 1000, 1015, 64, 4096, 64).tile == -1);
  CHECK(trimix::sink_fold(trimix::SinkWindow{0, 512, 0}, 1000, 1015, 64, 4096, 8).tile == -1);
}
