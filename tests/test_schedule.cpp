// The layer schedule: TriangleMix splits, per-layer lists from a ranking, argument checks, and
// layer_attention giving each layer the attention its kind names (against direct calls).
#include "test_support.hpp"

#include <trimix/schedule.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <vector>

using namespace trimix_test;
using trimix::LayerKind;
using trimix::Schedule;

TEST_CASE("Schedule: TriangleMix split and ranked per-layer lists", "[schedule]") {
  const Schedule llama = Schedule::trianglemix(32, 16);
  CHECK(llama.describe() == "DDDDDDDDDDDDDDDDTTTTTTTTTTTTTTTT");
  CHECK(llama.kind(15) == LayerKind::dense);
  CHECK(llama.kind(16) == LayerKind::triangle);
  CHECK(Schedule::trianglemix(28, 20, LayerKind::vertical_slash).describe() == "VVVVVVVVVVVVVVVVVVVVTTTTTTTT");

  // TriangleMix's gradient ranking for Llama-3.1-8B (DESIGN.md), most prunable first.
  const std::vector<trimix::index_t> ranking = {31, 30, 29, 24, 25, 28, 22, 23, 21, 26, 27, 20, 18, 17, 19, 16,
                                                3,  0,  15, 14, 12, 1,  4,  6,  9,  5,  2,  10, 7,  11, 13, 8};
  const Schedule ranked = Schedule::from_ranking(32, ranking, 18, LayerKind::pooled_blocks);
  for (trimix::index_t r = 0; r < 32; ++r)
    CHECK(ranked.kind(ranking[std::size_t(r)]) == (r < 18 ? LayerKind::triangle : LayerKind::pooled_blocks));
  CHECK(ranked.describe() == "TPPTPPPPPPPPPPPPTTTTTTTTTTTTTTTT");

  using Catch::Matchers::ContainsSubstring;
  CHECK_THROWS_WITH(Schedule::trianglemix(32, 33), ContainsSubstring("shallow_layers must be in [0, layers = 32]"));
  CHECK_THROWS_WITH(Schedule::trianglemix(32, 8, LayerKind::triangle), ContainsSubstring("not triangle"));
  CHECK_THROWS_WITH(Schedule::from_ranking(3, {0, 1}, 1), ContainsSubstring("names 2 layers, expected 3"));
  CHECK_THROWS_WITH(Schedule::from_ranking(3, {0, 1, 1}, 1), ContainsSubstring("(layer 1) is out of range or repeated"));
  CHECK_THROWS_WITH(llama.kind(32), ContainsSubstring("layer 32 is out of range [0, 32)"));
}

TEST_CASE("layer_attention runs each layer's kind", "[schedule][attention]") {
  std::mt19937_64 rng(41);
  using V4 = Kokkos::View<float****, Kokkos::LayoutRight, ExecSpace>;
  const trimix::index_t n = 256, d = 64;
  const auto q = to_exec(random_view<float>("q", rng, 1.0, 1, 4, n, d));
  const auto k = to_exec(random_view<float>("k", rng, 1.0, 1, 2, n, d));
  const auto v = to_exec(random_view<float>("v", rng, 1.0, 1, 2, n, d));
  Schedule schedule({LayerKind::dense, LayerKind::triangle, LayerKind::vertical_slash, LayerKind::pooled_blocks});
  schedule.triangle = trimix::Triangle{4, 64, 32};
  schedule.vertical_slash.vertical_size = 64;
  schedule.vertical_slash.slash_size = 64;
  schedule.pooled_blocks.gamma = 0.5;
  const ExecSpace exec{};
  for (trimix::index_t layer = 0; layer < schedule.layers(); ++layer) {
    V4 o("o", 1, 4, n, d), expected("expected", 1, 4, n, d);
    poison(o);
    poison(expected);
    CHECK(trimix::layer_attention(exec, schedule, layer, q, k, v, o) == schedule.kind(layer));
    switch (schedule.kind(layer)) {
      case LayerKind::dense: trimix::attention(exec, q, k, v, expected, trimix::Causal{}); break;
      case LayerKind::triangle: trimix::attention(exec, q, k, v, expected, schedule.triangle); break;
      case LayerKind::vertical_slash: {
        const auto map = trimix::estimate_vertical_slash(exec, q, k, schedule.vertical_slash);
        trimix::attention(exec, q, k, v, expected, trimix::Causal{} & map.policy());
        break;
      }
      case LayerKind::pooled_blocks: {
        const auto map = trimix::estimate_pooled_blocks(exec, q, k, schedule.pooled_blocks);
        trimix::attention(exec, q, k, v, expected, trimix::Causal{} & map.policy());
        break;
      }
    }
    Kokkos::fence();
    CAPTURE(layer, trimix::to_string(schedule.kind(layer)));
    CHECK(all_close(o, expected, 0.0, 0.0));  // the same computation: bit for bit
  }
}

TEST_CASE("layer_attention passes the layout and scale to the estimators; short prompts work",
          "[schedule][attention]") {
  std::mt19937_64 rng(43);
  using V4 = Kokkos::View<float****, Kokkos::LayoutRight, ExecSpace>;
  const trimix::index_t n = 40, d = 64;  // shorter than the vertical-slash estimator's last_q (64)
  // (batch, seq, heads, dim) tensors.
  const auto q = to_exec(random_view<float>("q", rng, 1.0, 1, n, 4, d));
  const auto k = to_exec(random_view<float>("k", rng, 1.0, 1, n, 2, d));
  const auto v = to_exec(random_view<float>("v", rng, 1.0, 1, n, 2, d));
  trimix::AttentionOptions options;
  options.layout = trimix::Layout::bshd;
  options.scale = 0.05;
  Schedule schedule({LayerKind::vertical_slash, LayerKind::pooled_blocks});
  schedule.vertical_slash.vertical_size = 8;
  schedule.vertical_slash.slash_size = 8;
  schedule.vertical_slash.block_q = schedule.vertical_slash.block_k = 64;
  const ExecSpace exec{};
  for (trimix::index_t layer = 0; layer < 2; ++layer) {
    V4 o("o", 1, n, 4, d), expected("expected", 1, n, 4, d);
    poison(o);
    poison(expected);
    trimix::layer_attention(exec, schedule, layer, q, k, v, o, options);
    if (layer == 0) {
      trimix::VerticalSlashOptions vs = schedule.vertical_slash;
      vs.layout = options.layout;
      vs.scale = options.scale;
      vs.last_q = n;
      const auto map = trimix::estimate_vertical_slash(exec, q, k, vs);
      trimix::attention(exec, q, k, v, expected, trimix::Causal{} & map.policy(), options);
    } else {
      trimix::PooledBlockOptions pooled = schedule.pooled_blocks;
      pooled.layout = options.layout;
      pooled.scale = options.scale;
      const auto map = trimix::estimate_pooled_blocks(exec, q, k, pooled);
      trimix::attention(exec, q, k, v, expected, trimix::Causal{} & map.policy(), options);
    }
    Kokkos::fence();
    CAPTURE(layer);
    CHECK(all_close(o, expected, 0.0, 0.0));
  }
}
