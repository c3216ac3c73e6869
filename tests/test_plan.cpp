// The plan: an engine's limit on the tiles of one item (TileShape::max_tiles_per_item) holds for
// every item, with split-KV automatic or never, and the items still cover every visited tile once.
#include "test_config.hpp"

#include <trimix/kernel.hpp>
#include <trimix/mask.hpp>
#include <trimix/plan.hpp>

#include <catch2/catch_test_macros.hpp>

#include <map>
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
