// Runtime block-sparse masks: the two builders agree, the bound policy's tile answers agree with
// its element answers (brute force), and attention with block-sparse masks, alone and composed
// with static policies, per query head and per kv-head, matches the exact reference.
#include "test_support.hpp"

#include <trimix/attention.hpp>
#include <trimix/block_sparse.hpp>
#include <trimix/reference.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

using namespace trimix_test;
using trimix::AttentionOptions;
using trimix::BlockSparseMap;

namespace {

using Memory = typename ExecSpace::memory_space;
using TileMap = Kokkos::View<std::int8_t****, Kokkos::LayoutRight, Kokkos::HostSpace>;

/// A random tile map: each block empty, partial or full with the given odds.
TileMap random_tile_map(std::mt19937_64& rng, index_t batch, index_t heads, index_t qb, index_t kb,
                        double density) {
  TileMap map("tiles", std::size_t(batch), std::size_t(heads), std::size_t(qb), std::size_t(kb));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (std::size_t i = 0; i < map.span(); ++i) {
    const double x = u(rng);
    map.data()[i] = x >= density ? 0 : x < density / 2 ? 2 : 1;
  }
  return map;
}

BlockSparseMap<Memory> exec_map(const TileMap& tiles, index_t seq_q, index_t seq_k, index_t bq, index_t bk) {
  return trimix::block_sparse_from_tile_map(ExecSpace{}, to_exec(tiles), seq_q, seq_k, bq, bk);
}

}  // namespace

TEST_CASE("block-sparse builders: tile map and index lists give the same sorted rows", "[block_sparse]") {
  std::mt19937_64 rng(5);
  const index_t batch = 2, heads = 3, seq_q = 300, seq_k = 400, bq = 64, bk = 64;
  const index_t qb = (seq_q + bq - 1) / bq, kb = (seq_k + bk - 1) / bk;
  const TileMap tiles = random_tile_map(rng, batch, heads, qb, kb, 0.5);
  const auto from_map = exec_map(tiles, seq_q, seq_k, bq, bk);

  // The same blocks as shuffled CSR lists with a repeat per row (the larger class wins).
  std::vector<std::int32_t> offsets{0}, indices, classes;
  for (index_t r = 0; r < batch * heads * qb; ++r) {
    std::vector<std::pair<std::int32_t, std::int32_t>> row;
    for (index_t u = 0; u < kb; ++u)
      if (const auto c = tiles.data()[r * kb + u]) row.emplace_back(std::int32_t(u), std::int32_t(c));
    if (!row.empty()) row.emplace_back(row.front().first, 1);
    std::shuffle(row.begin(), row.end(), rng);
    for (auto [u, c] : row) indices.push_back(u), classes.push_back(c);
    offsets.push_back(std::int32_t(indices.size()));
  }
  auto view_of = [](const std::vector<std::int32_t>& x) {
    Kokkos::View<std::int32_t*, Kokkos::HostSpace> h("list", x.size());
    std::copy(x.begin(), x.end(), h.data());
    return Kokkos::create_mirror_view_and_copy(Memory{}, h);
  };
  const auto from_lists = trimix::block_sparse_from_indices(ExecSpace{}, view_of(offsets), view_of(indices),
                                                            view_of(classes), batch, heads, seq_q, seq_k, bq, bk);
  REQUIRE(from_lists.capacity() == from_map.capacity());
  const auto e1 = to_host(from_map.entries()), e2 = to_host(from_lists.entries());
  const auto c1 = to_host(from_map.counts()), c2 = to_host(from_lists.counts());
  index_t listed = 0;
  for (index_t b = 0; b < batch; ++b)
    for (index_t h = 0; h < heads; ++h)
      for (index_t q = 0; q < qb; ++q) {
        REQUIRE(c1(b, h, q) == c2(b, h, q));
        index_t expected = 0;
        for (index_t u = 0; u < kb; ++u) expected += tiles(b, h, q, u) != 0;
        CHECK(c1(b, h, q) == expected);
        for (index_t e = 0; e < c1(b, h, q); ++e) {
          CHECK(e1(b, h, q, e) == e2(b, h, q, e));
          const index_t u = e1(b, h, q, e) >> 1;
          CHECK(tiles(b, h, q, u) == 1 + (e1(b, h, q, e) & 1));
          if (e > 0) CHECK((e1(b, h, q, e - 1) >> 1) < u);
          ++listed;
        }
      }
  CHECK(listed > 0);

  using Catch::Matchers::ContainsSubstring;
  CHECK_THROWS_WITH(trimix::block_sparse_from_indices(ExecSpace{}, view_of({0, 1}), view_of({9}), 1, 1, 64, 64, 64, 64),
                    ContainsSubstring("outside [0, kv_blocks = 1)"));
  CHECK_THROWS_WITH(trimix::block_sparse_from_tile_map(ExecSpace{}, to_exec(tiles), seq_q, seq_k, bq, 32),
                    ContainsSubstring("expected q_blocks 5 x kv_blocks 13"));
  TileMap bad_value = random_tile_map(rng, 1, 1, 2, 2, 0.5);
  bad_value(0, 0, 1, 1) = 3;
  CHECK_THROWS_WITH(trimix::block_sparse_from_tile_map(ExecSpace{}, to_exec(bad_value), 128, 128, 64, 64),
                    ContainsSubstring("values other than 0 (empty), 1 (partial) and 2 (full)"));
  CHECK_THROWS_WITH(trimix::block_sparse_from_indices(ExecSpace{}, view_of({0, 2, 1}), view_of({0, 1}), 1, 1, 128, 64, 64, 64),
                    ContainsSubstring("offsets must be non-decreasing within [0, 2]"));
  // No rows at all: an empty map, not an error.
  const auto empty = trimix::block_sparse_from_tile_map(ExecSpace{}, to_exec(TileMap("none", 0, 2, 1, 1)), 64, 64, 64, 64);
  CHECK(empty.capacity() == 0);
}

TEST_CASE("bound block-sparse policy: runs and classify agree with visible", "[block_sparse][mask]") {
  std::mt19937_64 rng(11);
  struct Case {
    index_t seq_q, seq_k, bq, bk, q_tile, kv_tile;
  };
  // The last case spans 12 block rows per q-tile, more than the run cursor holds: its runs fall
  // back to every tile Partial (conservative; attention rejects such maps, see below).
  const Case cases[] = {{256, 256, 64, 64, 48, 64}, {200, 333, 64, 128, 16, 64}, {130, 130, 32, 64, 64, 32},
                        {1, 97, 16, 64, 48, 64},    {96, 96, 64, 64, 64, 64},   {100, 130, 4, 64, 48, 64}};
  for (const Case& c : cases) {
    const index_t qb = (c.seq_q + c.bq - 1) / c.bq, kb = (c.seq_k + c.bk - 1) / c.bk;
    const TileMap tiles = random_tile_map(rng, 1, 2, qb, kb, 0.45);
    const auto map = trimix::mirror<Kokkos::HostSpace>(exec_map(tiles, c.seq_q, c.seq_k, c.bq, c.bk));
    const auto by_key = map.policy();                       // Partial entries show their whole block
    const auto causal_inside = map.policy(trimix::Causal{});  // Partial entries: only j <= p
    const trimix::TileGeometry g{c.seq_q, c.seq_k, c.q_tile, c.kv_tile};
    CAPTURE(c.seq_q, c.seq_k, c.bq, c.bk, c.q_tile, c.kv_tile);
    for (index_t h = 0; h < 2; ++h) {
      const auto head = trimix::bind_head(by_key, 0, h, 2);
      const auto head_causal = trimix::bind_head(causal_inside, 0, h, 2);
      // Element semantics straight from the tile map.
      for (index_t i = 0; i < c.seq_q; ++i)
        for (index_t j = 0; j < c.seq_k; ++j) {
          const index_t p = c.seq_k - c.seq_q + i;
          const int cls = tiles(0, h, i / c.bq, j / c.bk);
          REQUIRE(trimix::visible(head, p, j, c.seq_k) == (cls != 0));
          REQUIRE(trimix::visible(head_causal, p, j, c.seq_k) == (cls == 2 || (cls == 1 && j <= p)));
        }
      // Tiles: runs list exactly the non-empty tiles, ordered, with classify's class; full tiles
      // are entirely visible, empty ones entirely hidden.
      auto check_tiles = [&](const auto& policy) {
        for (index_t qt = 0; qt < g.q_tiles(); ++qt) {
          std::vector<trimix::TileClass> from_runs(std::size_t(g.kv_tiles()), trimix::TileClass::empty);
          auto cursor = trimix::kv_runs(policy, g, qt);
          trimix::KvRun run;
          index_t last_end = -1;
          while (cursor.next(run)) {
            REQUIRE(run.begin >= last_end);
            REQUIRE(run.begin < run.end);
            last_end = run.end;
            for (index_t u = run.begin; u < run.end; ++u) from_runs[std::size_t(u)] = run.cls;
          }
          for (index_t u = 0; u < g.kv_tiles(); ++u) {
            const auto cls = trimix::classify(policy, g, qt, u);
            REQUIRE(cls == from_runs[std::size_t(u)]);
            index_t seen = 0, area = 0;
            for (index_t p = g.first_position(qt); p <= g.last_position(qt); ++p)
              for (index_t j = g.first_key(u); j <= g.last_key(u); ++j, ++area)
                seen += trimix::visible(policy, p, j, c.seq_k);
            if (cls == trimix::TileClass::empty) REQUIRE(seen == 0);
            if (cls == trimix::TileClass::full) REQUIRE(seen == area);
            if (seen > 0) REQUIRE(cls != trimix::TileClass::empty);
          }
        }
      };
      check_tiles(head);
      check_tiles(head_causal);
      check_tiles(trimix::bind_head(trimix::Causal{} & by_key, 0, h, 2));
      check_tiles(trimix::bind_head(trimix::Triangle{8, 32, 16} | by_key, 0, h, 2));
    }
  }
}

namespace {

/// Kernel (mask over the execution space's map) against the reference (the same mask over a host
/// copy of the map), on poisoned outputs, every element.
template <class T, class MakeMask>
void check_block_sparse_attention(index_t batch, index_t q_heads, index_t kv_heads, index_t seq_q, index_t seq_k,
                                  index_t dim, index_t map_heads, index_t bq, index_t bk, double density,
                                  const MakeMask& make_mask, const AttentionOptions& options, std::mt19937_64& rng) {
  const index_t qb = (seq_q + bq - 1) / bq, kb = (seq_k + bk - 1) / bk;
  const TileMap tiles = random_tile_map(rng, batch, map_heads, qb, kb, density);
  const auto map = exec_map(tiles, seq_q, seq_k, bq, bk);
  const auto host_map = trimix::mirror<Kokkos::HostSpace>(map);
  const auto qh = random_view<T>("q", rng, 1.0, batch, q_heads, seq_q, dim);
  const auto kh = random_view<T>("k", rng, 1.0, batch, kv_heads, seq_k, dim);
  const auto vh = random_view<T>("v", rng, 1.0, batch, kv_heads, seq_k, dim);
  Kokkos::View<T****, Kokkos::LayoutRight, ExecSpace> o("o", batch, q_heads, seq_q, dim);
  Kokkos::View<float***, Kokkos::LayoutRight, ExecSpace> lse("lse", batch, q_heads, seq_q);
  poison(o);
  poison(lse);
  trimix::attention(ExecSpace{}, to_exec(qh), to_exec(kh), to_exec(vh), o, lse, make_mask(map), options);
  Kokkos::fence();
  Kokkos::View<double****, Kokkos::HostSpace> o_ref("o_ref", batch, q_heads, seq_q, dim);
  Kokkos::View<double***, Kokkos::HostSpace> lse_ref("lse_ref", batch, q_heads, seq_q);
  trimix::reference::attention(qh, kh, vh, o_ref, lse_ref, make_mask(host_map), options);
  CAPTURE(trimix::mask_name(make_mask(map)), batch, q_heads, kv_heads, seq_q, seq_k, dim, map_heads, bq, bk,
          trimix::element_traits<T>::name);
  CHECK(all_close(o, o_ref, Tolerance<T>::atol, Tolerance<T>::rtol));
  CHECK(all_close(lse, lse_ref, 1e-4, 1e-5));
}

}  // namespace

TEST_CASE("attention with block-sparse masks matches the reference", "[block_sparse][attention][sanitize]") {
  std::mt19937_64 rng(23);
  const auto alone = [](const auto& map) { return map.policy(); };
  const auto causal_and = [](const auto& map) { return trimix::Causal{} & map.policy(); };
  const auto triangle_or = [](const auto& map) { return trimix::Triangle{4, 40, 24} | (trimix::Causal{} & map.policy()); };
  const auto element_causal = [](const auto& map) { return map.policy(trimix::Causal{}); };
  AttentionOptions split, no_split;
  split.max_tiles_per_item = 2;  // forces split-KV and the combine pass
  no_split.split_kv = trimix::SplitKv::never;
  // Per query head (no GQA packing) and per kv-head (packed), B > 1, Sq < Sk, ragged lengths.
  check_block_sparse_attention<float>(2, 8, 2, 300, 300, 64, 8, 64, 64, 0.4, causal_and, no_split, rng);
  check_block_sparse_attention<float>(1, 8, 2, 300, 300, 64, 2, 64, 64, 0.4, causal_and, split, rng);
  check_block_sparse_attention<float>(1, 4, 1, 130, 257, 128, 4, 64, 128, 0.5, alone, no_split, rng);
  check_block_sparse_attention<float>(1, 4, 4, 200, 200, 64, 4, 32, 64, 0.5, element_causal, split, rng);
  check_block_sparse_attention<float>(1, 4, 2, 256, 256, 64, 2, 64, 64, 0.3, triangle_or, no_split, rng);
  check_block_sparse_attention<trimix::bf16>(1, 8, 2, 256, 256, 128, 8, 64, 64, 0.4, causal_and, AttentionOptions{}, rng);
  check_block_sparse_attention<trimix::fp16>(1, 4, 4, 192, 192, 64, 4, 64, 64, 0.6, causal_and, split, rng);
}

TEST_CASE("plans of per-head masks carry no runs: every item asks the policy", "[block_sparse][plan]") {
  // The plan stages runs only for masks the host knows; per-head items get count -1 in place.
  std::mt19937_64 rng(31);
  const auto map = exec_map(random_tile_map(rng, 1, 4, 5, 5, 0.6), 300, 300, 64, 64);
  trimix::impl::Problem problem;
  problem.batch = 1;
  problem.q_heads = 4;
  problem.kv_heads = 2;
  problem.seq_q = problem.seq_k = 300;
  problem.head_dim = 64;
  const auto plan = trimix::make_plan(ExecSpace(), problem, trimix::Causal{} & map.policy(),
                                      trimix::TileShape{64, 64, 1, 2}, AttentionOptions{});
  const auto runs = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), plan.runs);
  REQUIRE(plan.item_count() > 0);
  REQUIRE(index_t(runs.extent(0)) == plan.item_count());
  for (std::size_t i = 0; i < runs.extent(0); ++i) REQUIRE(runs(i).count == -1);
  CHECK_FALSE(plan.runs_complete);
}

TEST_CASE("plans of per-head masks: every q-tile's tiles once, longest class first, splits merged", "[block_sparse][plan]") {
  // The per-unit plan is built in the execution space (counts, two scans, one fill). Against the
  // host's own count of each (unit, q-tile): item ranges tile [0, count) in order, no item is
  // longer than the split length, classes never rise, inside a class (unit, q-tile) rises, and
  // split q-tiles own disjoint partial slots with one group each.
  std::mt19937_64 rng(37);
  for (const index_t max_tiles : {index_t(0), index_t(3)}) {
    const index_t seq = 1000, q_heads = 4, kv_heads = 2;
    const auto map = exec_map(random_tile_map(rng, 2, 4, 16, 16, 0.5), seq, seq, 64, 64);
    const auto host_map = trimix::mirror<Kokkos::HostSpace>(map);
    trimix::impl::Problem problem;
    problem.batch = 2;
    problem.q_heads = q_heads;
    problem.kv_heads = kv_heads;
    problem.seq_q = problem.seq_k = seq;
    problem.head_dim = 64;
    AttentionOptions options;
    options.max_tiles_per_item = max_tiles;
    const trimix::TileShape shape{32, 64, 1, 0};
    const auto plan = trimix::make_plan(ExecSpace(), problem, trimix::Causal{} & map.policy(), shape, options);
    const auto items = to_host(plan.items);
    const auto groups = to_host(plan.groups);
    const auto& g = plan.geometry;
    const index_t q_tiles = g.q_tiles(), units = problem.batch * q_heads;
    const index_t head_blocks = q_heads / kv_heads / plan.heads_per_item;  // 2: one head per item
    REQUIRE(plan.heads_per_item == 1);
    CAPTURE(max_tiles, plan.max_tiles_per_item);
    std::vector<index_t> count(std::size_t(units * q_tiles)), covered(count.size(), 0);
    for (index_t u = 0; u < units; ++u)
      for (index_t qt = 0; qt < q_tiles; ++qt)
        count[std::size_t(u * q_tiles + qt)] = trimix::impl::visited_tiles(
            trimix::bind_head(trimix::Causal{} & host_map.policy(), u / q_heads, u % q_heads, q_heads), g, qt);
    index_t longest = 1;
    for (std::size_t i = 0; i < items.extent(0); ++i)
      longest = std::max<index_t>(longest, items(i).tile_end - items(i).tile_begin);
    std::vector<int> slot_used(std::size_t(plan.split_slots), 0);
    index_t previous_class = 16, previous_e = -1;
    for (std::size_t i = 0; i < items.extent(0); ++i) {
      const auto& w = items(i);
      const index_t unit = (w.batch * kv_heads + w.kv_head) * head_blocks + w.head_block;
      const index_t e = unit * q_tiles + w.q_tile;
      REQUIRE(w.tile_begin == covered[std::size_t(e)]);  // in order, no gap, no overlap
      covered[std::size_t(e)] = w.tile_end;
      REQUIRE(w.tile_end - w.tile_begin <= plan.max_tiles_per_item);
      if (w.split_slot >= 0) {
        REQUIRE(w.split_slot < plan.split_slots);
        REQUIRE(slot_used[std::size_t(w.split_slot)]++ == 0);
      }
      if (w.tile_begin == 0) {  // an e's first item: the order is by (class of e's longest item, e)
        index_t e_longest = 0;
        for (std::size_t j = i; j < items.extent(0) && items(j).q_tile == w.q_tile && items(j).head_block == w.head_block &&
                                items(j).kv_head == w.kv_head && items(j).batch == w.batch;
             ++j)
          e_longest = std::max<index_t>(e_longest, items(j).tile_end - items(j).tile_begin);
        const index_t e_class = e_longest * 16 / (longest + 1);
        REQUIRE(e_class <= previous_class);
        if (e_class == previous_class) REQUIRE(e > previous_e);
        previous_class = e_class;
        previous_e = e;
      }
    }
    for (std::size_t e = 0; e < count.size(); ++e) REQUIRE(covered[e] == count[e]);
    index_t slots = 0;
    for (std::size_t k = 0; k < groups.extent(0); ++k) {
      const auto& gr = groups(k);
      REQUIRE(gr.splits > 1);
      const index_t unit = (gr.batch * kv_heads + gr.kv_head) * head_blocks + gr.head_block;
      index_t tiles = 0;
      for (std::size_t i = 0; i < items.extent(0); ++i)
        if (items(i).split_slot >= gr.first_slot && items(i).split_slot < gr.first_slot + gr.splits) {
          REQUIRE(items(i).q_tile == gr.q_tile);
          tiles += items(i).tile_end - items(i).tile_begin;
        }
      REQUIRE(tiles == count[std::size_t(unit * q_tiles + gr.q_tile)]);
      slots += gr.splits;
    }
    REQUIRE(slots == plan.split_slots);
    if (max_tiles == 3) REQUIRE(groups.extent(0) > 0);
  }
}

TEST_CASE("block-sparse rows longer than one tile-list chunk", "[block_sparse][attention][sanitize]") {
  // Over 512 kv-tiles of 64 keys per q-tile: the CUDA engine builds such an item's tile list from
  // classify in chunks of 512 tiles (ordinals carried from chunk to chunk), and splits of two
  // tiles start inside either chunk. Per-query-head maps (no packing), Sq < Sk.
  std::mt19937_64 rng(29);
  const auto causal_and = [](const auto& map) { return trimix::Causal{} & map.policy(); };
  const auto alone = [](const auto& map) { return map.policy(); };
  AttentionOptions split;
  split.max_tiles_per_item = 2;
  check_block_sparse_attention<trimix::bf16>(1, 2, 1, 70, 33000, 64, 2, 64, 64, 0.3, causal_and, split, rng);
  check_block_sparse_attention<trimix::bf16>(1, 2, 1, 70, 33000, 64, 2, 64, 64, 0.3, alone, AttentionOptions{}, rng);
  // A union: Triangle's runs merged with the map's tiles (classify takes the larger class).
  const auto triangle_or = [](const auto& map) { return trimix::Triangle{8, 512, 128} | (trimix::Causal{} & map.policy()); };
  check_block_sparse_attention<trimix::bf16>(1, 1, 1, 200, 33000, 64, 1, 64, 64, 0.05, triangle_or, split, rng);
}

TEST_CASE("block-sparse masks that do not fit throw before any work", "[block_sparse][errors]") {
  using Catch::Matchers::ContainsSubstring;
  std::mt19937_64 rng(3);
  using V4 = Kokkos::View<float****, Kokkos::LayoutRight, ExecSpace>;
  V4 q("q", 1, 4, 128, 64), k("k", 1, 2, 128, 64), v("v", 1, 2, 128, 64), o("o", 1, 4, 128, 64);
  Kokkos::deep_copy(o, 7.0f);
  const auto map_other_length = exec_map(random_tile_map(rng, 1, 4, 2, 1, 1.0), 100, 100, 64, 128);
  CHECK_THROWS_WITH(trimix::attention(ExecSpace{}, q, k, v, o, map_other_length.policy()),
                    ContainsSubstring("made for batch 1, seq_q 100, seq_k 100, used with batch 1, seq_q 128"));
  const auto map_three_heads = exec_map(random_tile_map(rng, 1, 3, 2, 2, 1.0), 128, 128, 64, 64);
  CHECK_THROWS_WITH(trimix::attention(ExecSpace{}, q, k, v, o, trimix::Causal{} & map_three_heads.policy()),
                    ContainsSubstring("has 3 heads, which does not divide q_heads 4"));
  const auto map_small_blocks = exec_map(random_tile_map(rng, 1, 4, 128, 16, 1.0), 128, 128, 1, 8);
  CHECK_THROWS_WITH(trimix::attention(ExecSpace{}, q, k, v, o, map_small_blocks.policy()),
                    ContainsSubstring("block_k 8 must be a multiple of the engine's kv-tile"));
  const auto oh = to_host(o);
  for (std::size_t i = 0; i < oh.span(); ++i) REQUIRE(oh.data()[i] == 7.0f);
}
