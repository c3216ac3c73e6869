// The blocked kernel against the exact reference: every policy, random shapes, element types,
// layouts, split-KV on and off, fully masked rows, large logits, and argument validation.
#include "test_support.hpp"

#include <trimix/attention.hpp>
#include <trimix/reference.hpp>

#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <limits>
#include <tuple>

using namespace trimix_test;
using trimix::AttentionOptions;
using trimix::Layout;

namespace {

struct Shape {
  index_t batch, q_heads, kv_heads, seq_q, seq_k, head_dim;
};

/// Random shapes: N = 1, lengths that are not tile multiples, Sq < Sk, GQA ratios 1/4/8.
Shape random_shape(std::mt19937_64& rng, index_t max_seq = 160) {
  const index_t ratios[] = {1, 4, 8};
  const index_t dims[] = {16, 64, 80, 96, 128, 256};
  Shape s;
  s.batch = 1 + index_t(rng() % 2);
  s.kv_heads = 1 + index_t(rng() % 2);
  s.q_heads = s.kv_heads * ratios[rng() % 3];
  s.seq_k = rng() % 8 == 0 ? 1 : 1 + index_t(rng() % std::uint64_t(max_seq));
  s.seq_q = rng() % 2 ? s.seq_k : 1 + index_t(rng() % std::uint64_t(s.seq_k));
  s.head_dim = dims[rng() % 6];
  return s;
}

template <class T>
struct Inputs {
  Kokkos::View<T****, Kokkos::HostSpace> q, k, v;
};

template <class T>
Inputs<T> random_inputs(const Shape& s, std::mt19937_64& rng, Layout layout, double scale = 1.0) {
  if (layout == Layout::bhsd)
    return {random_view<T>("q", rng, scale, s.batch, s.q_heads, s.seq_q, s.head_dim),
            random_view<T>("k", rng, scale, s.batch, s.kv_heads, s.seq_k, s.head_dim),
            random_view<T>("v", rng, 1.0, s.batch, s.kv_heads, s.seq_k, s.head_dim)};
  return {random_view<T>("q", rng, scale, s.batch, s.seq_q, s.q_heads, s.head_dim),
          random_view<T>("k", rng, scale, s.batch, s.seq_k, s.kv_heads, s.head_dim),
          random_view<T>("v", rng, 1.0, s.batch, s.seq_k, s.kv_heads, s.head_dim)};
}

/// Runs the kernel on poisoned outputs and checks O and LSE element by element against the
/// reference computed on the same (rounded) inputs.
template <class T, class Mask>
void check_against_reference(const Inputs<T>& in, const Mask& mask, const AttentionOptions& options,
                             double rtol = Tolerance<T>::rtol, double atol = Tolerance<T>::atol) {
  const auto q = to_exec(in.q), k = to_exec(in.k), v = to_exec(in.v);
  const bool bhsd = options.layout == Layout::bhsd;
  const std::size_t b = in.q.extent(0), h = in.q.extent(bhsd ? 1 : 2), sq = in.q.extent(bhsd ? 2 : 1);
  Kokkos::View<T****, Kokkos::LayoutRight, ExecSpace> o("o", in.q.extent(0), in.q.extent(1), in.q.extent(2), in.q.extent(3));
  Kokkos::View<float***, Kokkos::LayoutRight, ExecSpace> lse("lse", b, h, sq);
  poison(o);
  poison(lse);
  trimix::attention(ExecSpace{}, q, k, v, o, lse, mask, options);
  Kokkos::fence();

  Kokkos::View<double****, Kokkos::HostSpace> o_ref("o_ref", in.q.extent(0), in.q.extent(1),
                                                     in.q.extent(2), in.q.extent(3));
  Kokkos::View<double***, Kokkos::HostSpace> lse_ref("lse_ref", b, h, sq);
  trimix::reference::attention(in.q, in.k, in.v, o_ref, lse_ref, mask, options);
  CAPTURE(trimix::mask_name(mask), in.q.extent(0), in.q.extent(1), in.q.extent(2), in.q.extent(3),
          in.k.extent(1), in.k.extent(2), trimix::element_traits<T>::name);
  CHECK(all_close(o, o_ref, atol, rtol));
  CHECK(all_close(lse, lse_ref, 1e-4, 1e-5));
}

// Random instances of every policy and of compositions.
index_t extent_around(std::mt19937_64& rng, index_t n) {
  switch (rng() % 5) {
    case 0: return 0;
    case 1: return 1;
    case 2: return n + 3;
    default: return 1 + index_t(rng() % std::uint64_t(n + 1));
  }
}
struct MakeCausal { static auto make(std::mt19937_64&, index_t) { return trimix::Causal{}; } };
struct MakeFull { static auto make(std::mt19937_64&, index_t) { return trimix::Full{}; } };
struct MakeTriangle {
  static auto make(std::mt19937_64& r, index_t n) {
    return trimix::Triangle{extent_around(r, n), extent_around(r, n), extent_around(r, n)};
  }
};
struct MakeStreaming {
  static auto make(std::mt19937_64& r, index_t n) { return trimix::Streaming{extent_around(r, n), extent_around(r, n)}; }
};
struct MakeWindow { static auto make(std::mt19937_64& r, index_t n) { return trimix::Window{extent_around(r, n)}; } };
struct MakeLastRows { static auto make(std::mt19937_64& r, index_t n) { return trimix::LastRows{extent_around(r, n)}; } };
struct MakeComposition {
  static auto make(std::mt19937_64& r, index_t n) {
    using namespace trimix;
    return (Window{extent_around(r, n)} | LastRows{extent_around(r, n)}) & ((Full{} & Sink{n / 2 + 1}) | Causal{});
  }
};
// Spells Triangle out (trimix::canonical runs it as Triangle), in an order of its own.
struct MakeSpelledTriangle {
  static auto make(std::mt19937_64& r, index_t n) {
    using namespace trimix;
    return (LastRows{extent_around(r, n)} | (Window{extent_around(r, n)} | Sink{extent_around(r, n)})) & Causal{};
  }
};
struct MakeCustom {
  static auto make(std::mt19937_64& r, index_t n) {
    return trimix::Causal{} & (EveryNthTile{16 * index_t(1 + r() % 4), index_t(1 + r() % 3)} | trimix::Sink{extent_around(r, n)});
  }
};
using MaskFactories = std::tuple<MakeCausal, MakeFull, MakeTriangle, MakeStreaming, MakeWindow,
                                 MakeLastRows, MakeComposition, MakeSpelledTriangle, MakeCustom>;

}  // namespace

TEMPLATE_LIST_TEST_CASE("attention matches the reference for every policy (f32)", "[attention]", MaskFactories) {
  std::mt19937_64 rng(1234);
  for (int trial = 0; trial < 4; ++trial) {
    const Shape s = random_shape(rng);
    const auto in = random_inputs<float>(s, rng, Layout::bhsd);
    AttentionOptions options;
    if (trial % 2) options.max_tiles_per_item = 1 + index_t(rng() % 3);  // force splits
    check_against_reference(in, TestType::make(rng, s.seq_k), options);
  }
}

using ElementTypes = std::tuple<float, double, trimix::bf16, trimix::fp16
#if defined(KOKKOS_HALF_T_IS_FLOAT) && !KOKKOS_HALF_T_IS_FLOAT
                                , Kokkos::Experimental::half_t
#endif
                                >;

TEMPLATE_LIST_TEST_CASE("attention matches the reference for every element type", "[attention][element]",
                        ElementTypes) {
  std::mt19937_64 rng(99);
  for (int trial = 0; trial < 3; ++trial) {
    const Shape s = random_shape(rng, 200);
    const auto in = random_inputs<TestType>(s, rng, Layout::bhsd);
    check_against_reference(in, trimix::Triangle{4, 40, 24}, {});
    check_against_reference(in, trimix::Causal{}, {});
  }
}

TEST_CASE("attention reads the (batch, seq, heads, dim) layout without copies", "[attention][layout]") {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 3; ++trial) {
    const Shape s = random_shape(rng);
    AttentionOptions options;
    options.layout = Layout::bshd;
    check_against_reference(random_inputs<float>(s, rng, Layout::bshd), trimix::Triangle{2, 33, 17}, options);
  }
}

TEST_CASE("every supported head dim, N = 1 and tile-boundary lengths", "[attention][shapes]") {
  std::mt19937_64 rng(8);
  for (index_t dim : {16, 64, 80, 96, 128, 256}) {
    for (index_t n : {1, 3, 17, 63, 65, 127}) {
      const Shape s{1, 4, 2, n, n, dim};
      check_against_reference(random_inputs<float>(s, rng, Layout::bhsd), trimix::Causal{}, {});
    }
  }
}

TEST_CASE("split-KV on and off agree within rounding", "[attention][split]") {
  std::mt19937_64 rng(21);
  const Shape s{2, 8, 2, 300, 1000, 64};
  const auto in = random_inputs<float>(s, rng, Layout::bhsd);
  const auto q = to_exec(in.q), k = to_exec(in.k), v = to_exec(in.v);
  const auto mask = trimix::Triangle{8, 96, 64};
  Kokkos::View<float****, Kokkos::LayoutRight, ExecSpace> o_split("o_split", 2, 8, 300, 64), o_whole("o_whole", 2, 8, 300, 64);
  Kokkos::View<float***, Kokkos::LayoutRight, ExecSpace> lse_split("lse_split", 2, 8, 300), lse_whole("lse_whole", 2, 8, 300);
  for (auto view : {o_split, o_whole}) poison(view);
  for (auto view : {lse_split, lse_whole}) poison(view);
  AttentionOptions split, whole;
  split.max_tiles_per_item = 2;
  whole.split_kv = trimix::SplitKv::never;
  const auto plan = trimix::plan_attention(ExecSpace{}, q, k, v, o_split, mask, split);
  REQUIRE(plan.work.group_count() > 0);  // the last rows really are split
  REQUIRE(trimix::plan_attention(ExecSpace{}, q, k, v, o_whole, mask, whole).work.group_count() == 0);
  trimix::attention(ExecSpace{}, plan, q, k, v, o_split, lse_split);
  trimix::attention(ExecSpace{}, q, k, v, o_whole, lse_whole, mask, whole);
  Kokkos::fence();
  CHECK(all_close(o_split, o_whole, 1e-6, 1e-5));
  CHECK(all_close(lse_split, lse_whole, 1e-6, 1e-6));
  check_against_reference(in, mask, split);
}

TEST_CASE("rows that see no key give o = 0 and lse = -inf", "[attention][masked]") {
  std::mt19937_64 rng(3);
  const Shape s{1, 4, 1, 70, 90, 64};
  const auto in = random_inputs<float>(s, rng, Layout::bhsd);
  // Window{0} and Sink{0} hide everything; LastRows{30} hides all but the last 30 rows, also
  // inside split items.
  check_against_reference(in, trimix::Window{0}, {});
  check_against_reference(in, trimix::Sink{0}, {});
  AttentionOptions split;
  split.max_tiles_per_item = 1;
  check_against_reference(in, trimix::LastRows{30}, split);
  const auto q = to_exec(in.q), k = to_exec(in.k), v = to_exec(in.v);
  Kokkos::View<float****, Kokkos::LayoutRight, ExecSpace> o("o", 1, 4, 70, 64);
  Kokkos::View<float***, Kokkos::LayoutRight, ExecSpace> lse("lse", 1, 4, 70);
  poison(o);
  trimix::attention(ExecSpace{}, q, k, v, o, lse, trimix::Sink{0});
  const auto o_host = to_host(o);
  const auto lse_host = to_host(lse);
  CHECK(o_host(0, 3, 69, 63) == 0.0f);
  CHECK(lse_host(0, 2, 10) == -std::numeric_limits<float>::infinity());
}

TEST_CASE("large logits (|scale q.k| ~ 1e4) neither overflow nor lose the maximum", "[attention][stability]") {
  std::mt19937_64 rng(11);
  const Shape s{1, 4, 2, 96, 130, 64};
  // Entries of size 30: scale * q.k ~ 30 * 30 * sqrt(64) / 8 ~ 1e3 typical, 1e4 at the tails.
  const auto in = random_inputs<float>(s, rng, Layout::bhsd, 30.0);
  // fp32 scores of size L carry an absolute error of about L * 2^-24 * sqrt(D), which softmax
  // passes on to the weights: the tolerance follows the conditioning, not the kernel.
  check_against_reference(in, trimix::Causal{}, {}, 2e-3, 2e-3);
  AttentionOptions split;
  split.max_tiles_per_item = 1;
  check_against_reference(in, trimix::Triangle{3, 20, 10}, split, 2e-3, 2e-3);
}

// NaN in Q or K reaches exactly the rows that see it: every o element and the lse of such a row
// are NaN, every other row stays finite (an lse of -inf would claim the row saw no key). NaN keys in
// different 64-key tiles and at different offsets inside them, and a NaN query row.
template <class T, class Mask>
void check_nan_reaches_its_rows(const Mask& mask, const AttentionOptions& options, index_t head_dim) {
  std::mt19937_64 rng(97);
  const Shape s{1, 8, 2, 300, 300, head_dim};
  auto in = random_inputs<T>(s, rng, Layout::bhsd);
  const T nan = trimix::element_traits<T>::from_double(std::numeric_limits<double>::quiet_NaN());
  const index_t nan_keys[2][3] = {{5, 70, 201}, {66, 139, 290}};  // per kv head
  const index_t nan_q_head = 3, nan_q_row = 250;
  for (index_t kv = 0; kv < 2; ++kv)
    for (const index_t j : nan_keys[kv]) in.k(0, kv, j, index_t(j % head_dim)) = nan;
  in.q(0, nan_q_head, nan_q_row, 7) = nan;
  const auto q = to_exec(in.q), k = to_exec(in.k), v = to_exec(in.v);
  Kokkos::View<T****, Kokkos::LayoutRight, ExecSpace> o("o", 1, s.q_heads, s.seq_q, head_dim);
  Kokkos::View<float***, Kokkos::LayoutRight, ExecSpace> lse("lse", 1, s.q_heads, s.seq_q);
  poison(o);
  poison(lse);
  trimix::attention(ExecSpace{}, q, k, v, o, lse, mask, options);
  Kokkos::fence();
  const auto o_host = to_host(o);
  const auto lse_host = to_host(lse);
  const index_t group = s.q_heads / s.kv_heads;
  std::size_t wrong = 0, nan_rows = 0;
  std::ostringstream report;
  for (index_t h = 0; h < s.q_heads; ++h)
    for (index_t i = 0; i < s.seq_q; ++i) {
      // The NaN query row has NaN scores for every key it sees (it sees some in these masks).
      const bool nan_row = h == nan_q_head && i == nan_q_row;
      const index_t* keys = nan_keys[h / group];
      bool sees_nan = false;
      for (index_t j = 0; j < s.seq_k; ++j)
        sees_nan = sees_nan || (trimix::visible(mask, i, j, s.seq_k) && (nan_row || std::count(keys, keys + 3, j) > 0));
      std::size_t nans = std::isnan(lse_host(0, h, i)) ? 1 : 0;
      for (index_t d = 0; d < head_dim; ++d) nans += std::isnan(as_double(o_host(0, h, i, d))) ? 1 : 0;
      const std::size_t expected = sees_nan ? std::size_t(head_dim + 1) : 0;
      nan_rows += sees_nan ? 1 : 0;
      if (nans != expected && wrong++ < 8)
        report << "  head " << h << " row " << i << ": " << nans << " NaN of " << head_dim + 1 << ", expected "
               << expected << "\n";
    }
  CAPTURE(trimix::mask_name(mask), head_dim, trimix::element_traits<T>::name, options.max_tiles_per_item);
  INFO(report.str());
  CHECK(nan_rows > 0);
  CHECK(wrong == 0);
}

TEMPLATE_TEST_CASE("NaN in Q or K reaches exactly the rows that see it", "[attention][nan]", float, trimix::bf16,
                   trimix::fp16) {
  for (const index_t dim : {64, 128}) {
    AttentionOptions split;
    split.max_tiles_per_item = 2;  // the combine too
    check_nan_reaches_its_rows<TestType>(trimix::Causal{}, {}, dim);
    check_nan_reaches_its_rows<TestType>(trimix::Triangle{4, 60, 16}, {}, dim);
    check_nan_reaches_its_rows<TestType>(trimix::Triangle{4, 60, 16}, split, dim);
  }
}

/// Inputs whose scores follow a planned course along the keys (in base-2 units of the default
/// scale, plus unit-normal noise): a slow climb of `step` per 64 keys, one jump of `jump` at key
/// 384, then a fall. Dimension 0 carries the course (q: a constant, k: the ramp), the rest is noise.
/// The 64 query rows are the last ones (bottom-right aligned): every row sees climb, jump and
/// fall (items of up to 9 kv-tiles), at a size the sanitizer builds run in seconds.
template <class T>
Inputs<T> score_course(std::mt19937_64& rng, index_t head_dim, double step, double jump = 40.0) {
  const Shape s{1, 4, 1, 64, 520, head_dim};
  auto in = random_inputs<T>(s, rng, Layout::bhsd);
  const double a = 4.0, scale_log2 = 1.4426950408889634 / std::sqrt(double(head_dim));
  for (index_t h = 0; h < s.q_heads; ++h)
    for (index_t i = 0; i < s.seq_q; ++i) in.q(0, h, i, 0) = trimix::element_traits<T>::from_double(a);
  for (index_t h = 0; h < s.kv_heads; ++h)
    for (index_t j = 0; j < s.seq_k; ++j) {
      const double tile = double(j / 64);
      const double course = j < 384 ? step * tile : j < 448 ? jump + step * tile : jump - 10.0 - 2.0 * tile;
      in.k(0, h, j, 0) = trimix::element_traits<T>::from_double(course / (a * scale_log2));
    }
  return in;
}

TEMPLATE_TEST_CASE("the running max: scores that climb slowly, jump and fall; scales <= 0", "[attention][stability]",
                   float, trimix::bf16, trimix::fp16) {
  // The online softmax's running max moves a little per tile (steps 0.5 and 3), by more than the
  // scores' own spread (9), jumps once and then never moves during the fall; engines that let it
  // lag behind the true max (lazy rescaling) are checked on both sides of their threshold.
  // Scores reach ~45 (natural units) after the jump: fp32 scores of that size carry absolute
  // errors of ~1e-5, which the softmax passes on (the tolerance follows the conditioning).
  const double tol = std::max(Tolerance<TestType>::rtol, 1e-4);
  std::mt19937_64 rng(41);
  for (index_t dim : {64, 128}) {
    for (double step : {0.5, 3.0, 9.0}) {
      const auto in = score_course<TestType>(rng, dim, step);
      check_against_reference(in, trimix::Causal{}, {}, tol, tol);
      AttentionOptions split;
      split.max_tiles_per_item = 3;
      if (step == 3.0) check_against_reference(in, trimix::Triangle{8, 200, 16}, split, tol, tol);
    }
    // Jumps past the running max by ~120 and ~150 in base-2 units (2^150 overflows fp32): a softmax
    // that takes the exponentials against the old running max before it knows the new one must
    // rescale the first and must not overflow on the second (the speculative form measured in
    // bench/experiments/speculative_softmax_s39.patch clamps at 126 and computes S again).
    for (double jump : {120.0, 150.0}) {
      const auto in = score_course<TestType>(rng, dim, 3.0, jump);
      check_against_reference(in, trimix::Causal{}, {}, tol, tol);
      check_against_reference(in, trimix::Streaming{8, 200}, {}, tol, tol);
    }
    // A negative scale turns the course upside down; a zero scale makes every visible key equal.
    const auto in = score_course<TestType>(rng, dim, 3.0);
    for (double scale : {-0.125, 0.0}) {
      AttentionOptions options;
      options.scale = scale;
      check_against_reference(in, trimix::Window{100}, options, tol, tol);
    }
  }
}

TEST_CASE("a plan is reusable across calls with new data", "[attention][plan]") {
  std::mt19937_64 rng(17);
  const Shape s{1, 8, 2, 200, 200, 64};
  const auto first = random_inputs<float>(s, rng, Layout::bhsd);
  const auto second = random_inputs<float>(s, rng, Layout::bhsd);
  Kokkos::View<float****, Kokkos::LayoutRight, ExecSpace> o("o", 1, 8, 200, 64);
  const auto plan = trimix::plan_attention(ExecSpace{}, to_exec(first.q), to_exec(first.k),
                                           to_exec(first.v), o, trimix::Triangle{8, 32, 16});
  for (const auto* in : {&first, &second}) {
    poison(o);
    trimix::attention(ExecSpace{}, plan, to_exec(in->q), to_exec(in->k), to_exec(in->v), o);
    Kokkos::fence();
    Kokkos::View<double****, Kokkos::HostSpace> ref("ref", 1, 8, 200, 64);
    trimix::reference::attention(in->q, in->k, in->v, ref, trimix::Triangle{8, 32, 16});
    CHECK(all_close(o, ref, 1e-5, 1e-5));
  }
}

TEST_CASE("sparse masks skip tiles: the plan visits exactly the runs", "[attention][plan]") {
  Kokkos::View<float****, Kokkos::LayoutRight, ExecSpace> q("q", 1, 8, 8192, 64), k("k", 1, 2, 8192, 64);
  Kokkos::View<float****, Kokkos::LayoutRight, ExecSpace> o("o", 1, 8, 8192, 64);
  const auto causal = trimix::plan_attention(ExecSpace{}, q, k, k, o, trimix::Causal{});
  const auto triangle = trimix::plan_attention(ExecSpace{}, q, k, k, o, trimix::Triangle{});
  const auto& g = triangle.work.geometry;
  index_t expected = 0;
  for (index_t qt = 0; qt < g.q_tiles(); ++qt) {
    auto cursor = trimix::kv_runs(trimix::Triangle{}, g, qt);
    trimix::KvRun r;
    while (cursor.next(r)) expected += r.end - r.begin;
  }
  CHECK(triangle.work.visited_tiles == expected);
  // Causal visits about half of all tiles; Triangle(8, 512, 128) at 8K a fifth of that.
  CHECK(causal.work.visited_tiles >= g.q_tiles() * g.kv_tiles() / 2);
  CHECK(triangle.work.visited_tiles * 4 < causal.work.visited_tiles);
  // The longest items come first, in 16 length classes of the longest item; inside a class unit
  // by unit (kv-head), and in a unit by first visited tile (items running together share K/V).
  for (const auto* plan : {&causal.work, &triangle.work}) {
    const auto items = to_host(plan->items);
    index_t longest = 1;
    for (std::size_t i = 0; i < items.extent(0); ++i)
      longest = std::max<index_t>(longest, items(i).tile_end - items(i).tile_begin);
    auto length_class = [&](std::size_t i) { return (items(i).tile_end - items(i).tile_begin) * 16 / (longest + 1); };
    for (std::size_t i = 1; i < items.extent(0); ++i) {
      REQUIRE(length_class(i - 1) >= length_class(i));
      if (length_class(i - 1) != length_class(i)) continue;
      const auto unit = [&](std::size_t j) { return std::tuple(items(j).batch, items(j).kv_head, items(j).head_block); };
      REQUIRE(unit(i - 1) <= unit(i));
      if (unit(i - 1) == unit(i)) REQUIRE(items(i - 1).tile_begin <= items(i).tile_begin);
    }
  }
}

TEST_CASE("disjoint subviews of one array are not aliases", "[attention][errors]") {
  // q: the last 16 rows of batch 0, o: the first 16 rows of batch 1 of the same array. Kokkos'
  // span() of the q subview reaches past the end of batch 0 as if it started there; the check
  // must use the elements the views reach.
  std::mt19937_64 rng(7);
  auto buffer = to_exec(random_view<float>("buffer", rng, 1.0, 2, 1, 32, 64));
  auto k = to_exec(random_view<float>("k", rng, 1.0, 1, 1, 16, 64));
  auto v = to_exec(random_view<float>("v", rng, 1.0, 1, 1, 16, 64));
  const auto q = Kokkos::subview(buffer, Kokkos::pair<int, int>(0, 1), Kokkos::ALL, Kokkos::pair<int, int>(16, 32), Kokkos::ALL);
  const auto o = Kokkos::subview(buffer, Kokkos::pair<int, int>(1, 2), Kokkos::ALL, Kokkos::pair<int, int>(0, 16), Kokkos::ALL);
  using Dense = Kokkos::View<float****, Kokkos::LayoutRight, ExecSpace>;
  Dense q_copy("q_copy", 1, 1, 16, 64), o_copy("o_copy", 1, 1, 16, 64), o_read("o_read", 1, 1, 16, 64);
  Kokkos::deep_copy(q_copy, q);  // strided views are copied and poisoned inside their memory space
  Kokkos::deep_copy(o, std::numeric_limits<float>::quiet_NaN());
  poison(o_copy);
  REQUIRE_NOTHROW(trimix::attention(ExecSpace{}, q, k, v, o, trimix::Causal{}));
  trimix::attention(ExecSpace{}, q_copy, k, v, o_copy, trimix::Causal{});
  Kokkos::deep_copy(o_read, o);
  CHECK(all_close(to_host(o_read), to_host(o_copy), 0.0, 0.0));
}

TEST_CASE("invalid arguments throw before any work and leave outputs untouched", "[attention][errors]") {
  using Catch::Matchers::ContainsSubstring;
  using V4 = Kokkos::View<float****, Kokkos::LayoutRight, ExecSpace>;
  V4 q("q", 1, 4, 10, 64), k("k", 1, 2, 10, 64), v("v", 1, 2, 10, 64), o("o", 1, 4, 10, 64);
  Kokkos::deep_copy(o, 7.0f);
  Kokkos::View<float***, Kokkos::LayoutRight, ExecSpace> lse("lse", 1, 4, 10);
  Kokkos::deep_copy(lse, 7.0f);
  const auto mask = trimix::Causal{};
  const ExecSpace exec{};
  auto untouched = [&] {
    const auto oh = to_host(o);
    const auto lh = to_host(lse);
    for (std::size_t i = 0; i < oh.span(); ++i) REQUIRE(oh.data()[i] == 7.0f);
    for (std::size_t i = 0; i < lh.span(); ++i) REQUIRE(lh.data()[i] == 7.0f);
  };
  CHECK_THROWS_WITH(trimix::attention(exec, q, V4("k", 1, 2, 10, 32), v, o, mask),
                    ContainsSubstring("k 'k'(1,2,10,32) does not match q 'q'(1,4,10,64)"));
  CHECK_THROWS_WITH(trimix::attention(exec, q, k, V4("v", 1, 2, 9, 64), o, mask),
                    ContainsSubstring("v 'v'(1,2,9,64) must have the shape of k"));
  CHECK_THROWS_WITH(trimix::attention(exec, q, k, v, V4("o", 1, 4, 11, 64), mask),
                    ContainsSubstring("o 'o'(1,4,11,64) must have the shape of q"));
  CHECK_THROWS_WITH(trimix::attention(exec, V4("q", 1, 3, 10, 64), V4("k", 1, 2, 10, 64),
                                      V4("v", 1, 2, 10, 64), V4("o", 1, 3, 10, 64), mask),
                    ContainsSubstring("q heads (3) must be a multiple of k/v heads (2)"));
  CHECK_THROWS_WITH(trimix::attention(exec, V4("q", 1, 4, 11, 64), k, v, V4("o", 1, 4, 11, 64), mask),
                    ContainsSubstring("has more positions (11) than k"));
  CHECK_THROWS_WITH(trimix::attention(exec, V4("q", 1, 4, 10, 72), V4("k", 1, 2, 10, 72),
                                      V4("v", 1, 2, 10, 72), V4("o", 1, 4, 10, 72), mask),
                    ContainsSubstring("head_dim 72 is not supported"));
  CHECK_THROWS_WITH(trimix::attention(exec, q, k, v, o, Kokkos::View<float***, Kokkos::LayoutRight, ExecSpace>("lse", 1, 4, 9), mask),
                    ContainsSubstring("lse 'lse'(1,4,9) must be (batch, q_heads, seq_q)"));
  CHECK_THROWS_WITH(trimix::attention(exec, q, k, v, q, mask), ContainsSubstring("o 'q'(1,4,10,64) aliases q"));
  V4 shared("shared", 1, 4, 10, 64);  // o overlapping part of k
  const auto k_part = Kokkos::subview(shared, Kokkos::ALL, std::make_pair(0, 2), Kokkos::ALL, Kokkos::ALL);
  CHECK_THROWS_WITH(trimix::attention(exec, q, k_part, v, shared, mask),
                    ContainsSubstring("o 'shared'(1,4,10,64) aliases k 'shared'(1,2,10,64)"));
  AttentionOptions bad_scale;
  bad_scale.scale = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(trimix::attention(exec, q, k, v, o, mask, bad_scale), ContainsSubstring("options.scale"));
  AttentionOptions bad_split;
  bad_split.max_tiles_per_item = -1;
  CHECK_THROWS_WITH(trimix::attention(exec, q, k, v, o, mask, bad_split),
                    ContainsSubstring("options.max_tiles_per_item must be >= 0"));
  const auto plan = trimix::plan_attention(exec, q, k, v, o, mask);
  CHECK_THROWS_WITH(trimix::attention(exec, plan, V4("q", 1, 4, 8, 64), k, v, V4("o", 1, 4, 8, 64)),
                    ContainsSubstring("plan was made for"));
  const auto q_host = to_host(q);  // one host copy: on a GPU each to_host call makes a new one
  CHECK_THROWS_AS(trimix::reference::attention(q_host, to_host(k), to_host(v), q_host, mask),
                  std::invalid_argument);
  untouched();
}

TEST_CASE("empty problems do nothing", "[attention][shapes]") {
  Kokkos::View<float****, Kokkos::LayoutRight, ExecSpace> q("q", 0, 4, 10, 64), k("k", 0, 2, 10, 64), o("o", 0, 4, 10, 64);
  CHECK_NOTHROW(trimix::attention(ExecSpace{}, q, k, k, o, trimix::Triangle{}));
  Kokkos::View<float****, Kokkos::LayoutRight, ExecSpace> q0("q0", 1, 4, 0, 64), k0("k0", 1, 2, 0, 64), o0("o0", 1, 4, 0, 64);
  CHECK_NOTHROW(trimix::attention(ExecSpace{}, q0, k0, k0, o0, trimix::Causal{}));
}

// The shapes a backend tile engine takes (16-bit types, head dims 64 and 128), small enough for
// compute-sanitizer: GQA groups that pack 1, 2 and 4 heads, lengths off the 64-key tile, chunked
// prefill, forced splits, rows that see no key, both layouts. Where the backend has an engine, the
// plan must pick it.
TEMPLATE_TEST_CASE("tile-engine shapes match the reference", "[attention][engine][sanitize]", trimix::bf16,
                   trimix::fp16) {
  using Engine = trimix::impl::tile_engine<ExecSpace, TestType, TestType, TestType, TestType>;
  std::mt19937_64 rng(2718);
  const Shape shapes[] = {{1, 4, 4, 65, 65, 64}, {2, 8, 2, 70, 200, 128}, {1, 6, 1, 1, 129, 64},
                          {1, 8, 1, 130, 130, 128}};
  for (const Shape& s : shapes) {
    for (const Layout layout : {Layout::bhsd, Layout::bshd}) {
      const auto in = random_inputs<TestType>(s, rng, layout);
      AttentionOptions options;
      options.layout = layout;
      options.max_tiles_per_item = 1;  // every multi-tile row split: exercises the combine
      check_against_reference(in, trimix::Triangle{3, 70, 20}, options);
      options.max_tiles_per_item = 0;
      check_against_reference(in, trimix::Causal{}, options);
      check_against_reference(in, trimix::Sink{0} | trimix::Window{9}, options);
      // Rows before the last 20 see no key: items without tiles among items with them.
      check_against_reference(in, trimix::LastRows{20}, options);
    }
    Kokkos::View<TestType****, Kokkos::LayoutRight, ExecSpace> q("q", s.batch, s.q_heads, s.seq_q, s.head_dim);
    Kokkos::View<TestType****, Kokkos::LayoutRight, ExecSpace> k("k", s.batch, s.kv_heads, s.seq_k, s.head_dim);
    const auto plan = trimix::plan_attention(ExecSpace{}, q, k, k,
                                             Kokkos::View<TestType****, Kokkos::LayoutRight, ExecSpace>("o", s.batch, s.q_heads, s.seq_q, s.head_dim),
                                             trimix::Causal{});
    bool engine_takes_it = Engine::available;  // where the backend has an engine for the shape
    if constexpr (Engine::available) engine_takes_it = Engine::handles_shape(plan.problem);
    CHECK(plan.backend_engine == engine_takes_it);
  }
}

// Band items of Streaming and Triangle whose sink keys the warp-specialised CUDA kernel carries in
// another of their tiles (sink_fold): sinks of 5 and 16 keys (one or two 8-row swizzle atoms),
// carried at a tile's start and at its end, GQA groups packing 4, 2 and 1 heads (16, 32 and 64
// positions an item), head dims 128 and 64, Sq < Sk; rows near the start and Triangle's last rows
// (no fold) in the same calls.
TEMPLATE_TEST_CASE("tile-engine band items with the sink keys in another tile", "[attention][engine][sanitize]",
                   trimix::bf16, trimix::fp16) {
  std::mt19937_64 rng(4242);
  const Shape shapes[] = {{1, 8, 2, 300, 330, 128}, {1, 4, 2, 280, 280, 64}, {1, 2, 2, 333, 333, 128}};
  for (const Shape& s : shapes) {
    const auto in = random_inputs<TestType>(s, rng, Layout::bhsd);
    using namespace trimix;
    check_against_reference(in, Streaming{5, 100}, {});  // sink 1 too passed on the H200; trimmed for CI time
    check_against_reference(in, Triangle{5, 77, 30}, {});
    check_against_reference(in, Streaming{16, 100}, {});
    // Spelled out, Triangle{16, 77, 30} runs as Triangle (trimix::canonical): its kernels, the fold.
    check_against_reference(in, (Window{77} | LastRows{30} | Sink{16}) & Causal{}, {});
  }
}

#if defined(KOKKOS_ENABLE_CUDA) && defined(__CUDACC__)
// The warp-specialised and pair CUDA kernels on one and on three CTAs: each consumer then runs
// dozens of items in a row, among them items without tiles, split items and band items that carry
// their sink keys in another tile; at head dim 128 (the pair kernel) GQA groups of 4, 2, 8 and 1
// (items of 32, 64, 16 and 128 positions, each consumer's Q box split by heads or by positions).
TEMPLATE_TEST_CASE("tile-engine: consumers that run many items in a row", "[attention][engine][sanitize]",
                   trimix::bf16, trimix::fp16) {
  struct GridLimit {
    explicit GridLimit(int ctas) { trimix::impl::cuda_engine::ws_grid_limit() = ctas; }
    ~GridLimit() { trimix::impl::cuda_engine::ws_grid_limit() = 0; }
  };
  std::mt19937_64 rng(31337);
  const Shape shapes[] = {{1, 8, 2, 300, 330, 128}, {2, 4, 2, 280, 280, 64}, {2, 4, 2, 280, 280, 128},
                          {1, 8, 1, 200, 260, 128}, {1, 3, 3, 270, 300, 128}};
  for (const int ctas : {1, 3}) {
    const GridLimit limit(ctas);
    for (const Shape& s : shapes) {
      const auto in = random_inputs<TestType>(s, rng, Layout::bhsd);
      AttentionOptions split;
      split.max_tiles_per_item = 2;
      CAPTURE(ctas);
      check_against_reference(in, trimix::Triangle{5, 77, 30}, split);
      check_against_reference(in, trimix::Streaming{8, 100}, {});
      check_against_reference(in, trimix::Causal{}, {});
      check_against_reference(in, trimix::LastRows{20}, {});  // items without tiles among the others
    }
  }
}

// A plan made for the pair kernel (128-row items) where that kernel declines: attention_kernel
// runs each item as two CTAs of 64 rows, split items included.
TEMPLATE_TEST_CASE("tile-engine: 128-row items without the pair kernel", "[attention][engine]", trimix::bf16,
                   trimix::fp16) {
  struct Declines {
    Declines() { trimix::impl::cuda_engine::pair_declines() = true; }
    ~Declines() { trimix::impl::cuda_engine::pair_declines() = false; }
  };
  if (!trimix::impl::cuda_engine::pair_plans(128)) SKIP("no pair kernel on this device or build");
  const Declines declines;
  const long pair_before = trimix::impl::cuda_engine::pair_launches();
  std::mt19937_64 rng(2718);
  const Shape shapes[] = {{1, 8, 2, 300, 330, 128}, {1, 3, 3, 270, 300, 128}};
  for (const Shape& s : shapes) {
    const auto in = random_inputs<TestType>(s, rng, Layout::bhsd);
    AttentionOptions split;
    split.max_tiles_per_item = 2;
    check_against_reference(in, trimix::Triangle{5, 77, 30}, split);
    check_against_reference(in, trimix::Causal{}, {});
  }
  CHECK(trimix::impl::cuda_engine::pair_launches() == pair_before);
}
#endif

// Plans of engine shapes serve repeated calls with new data (the warp-specialised CUDA kernel
// hands out items through two words of the plan, which every call must leave at zero), in both
// layouts; on Hopper with sm_90a code that kernel, not its fallback, must be what runs.
TEMPLATE_TEST_CASE("tile-engine plans are reusable across calls", "[attention][engine][plan]", trimix::bf16,
                   trimix::fp16) {
  std::mt19937_64 rng(99);
  for (const index_t head_dim : {64, 128}) {
    for (const Layout layout : {Layout::bhsd, Layout::bshd}) {
      const Shape s{1, 8, 2, 300, 300, head_dim};
      const Inputs<TestType> inputs[2] = {random_inputs<TestType>(s, rng, layout), random_inputs<TestType>(s, rng, layout)};
      const auto mask = trimix::Triangle{3, 70, 20};
      AttentionOptions options;
      options.layout = layout;
      const auto o = to_exec(random_inputs<TestType>(s, rng, layout).q);
      const auto plan = trimix::plan_attention(ExecSpace{}, to_exec(inputs[0].q), to_exec(inputs[0].k),
                                               to_exec(inputs[0].v), o, mask, options);
      // One reference per input, computed once: the double-precision reference dominated this
      // test's time in the sanitizer build.
      Kokkos::View<double****, Kokkos::HostSpace> refs[2];
      for (int i = 0; i < 2; ++i) {
        refs[i] = Kokkos::View<double****, Kokkos::HostSpace>("ref", o.extent(0), o.extent(1), o.extent(2), o.extent(3));
        trimix::reference::attention(inputs[i].q, inputs[i].k, inputs[i].v, refs[i], mask, options);
      }
#if defined(KOKKOS_ENABLE_CUDA) && defined(__CUDACC__)
      // At head dim 128 the pair kernel runs (pair_plans), at 64 the warp-specialised one.
      auto launches = [&] {
        return head_dim == 128 && trimix::impl::cuda_engine::pair_plans(head_dim)
                   ? trimix::impl::cuda_engine::pair_launches().load()
                   : trimix::impl::cuda_engine::ws_launches().load();
      };
      const long launches_before = launches();
#endif
      for (int call = 0; call < 3; ++call) {
        const auto& in = inputs[call % 2];
        poison(o);
        trimix::attention(ExecSpace{}, plan, to_exec(in.q), to_exec(in.k), to_exec(in.v), o);
        Kokkos::fence();
        CAPTURE(call, int(layout), head_dim, trimix::element_traits<TestType>::name);
        CHECK(all_close(o, refs[call % 2], Tolerance<TestType>::atol, Tolerance<TestType>::rtol));
      }
#if defined(KOKKOS_ENABLE_CUDA) && defined(__CUDACC__)
      if constexpr (std::is_same_v<ExecSpace, Kokkos::Cuda>) {
        if (trimix::impl::cuda_engine::uses_wgmma() && trimix::impl::cuda_engine::ws_enabled())
          CHECK(launches() - launches_before == 3);
      }
#endif
    }
  }
}

// The AMX host engine (engine_host_amx.hpp) on bf16 inputs, wherever it runs: on AMX CPUs, and
// emulated (TRIMIX_HOST_AMX=emulate, the openmp/amx-emulated test) on CPUs with AVX512-BF16. The
// plan must pick it; every head dim it takes (multiples of 32), GQA groups packing 1, 4 and 8
// heads, N = 1, lengths off the 48-row and 64-key tiles, Sq < Sk, forced splits, both layouts,
// a policy without visible_bits, rows that see nothing.
TEST_CASE("host AMX engine matches the reference", "[attention][engine][amx]") {
#if TRIMIX_HAS_HOST_AMX
  using Engine = trimix::impl::tile_engine<ExecSpace, trimix::bf16, trimix::bf16, trimix::bf16, trimix::bf16>;
  if constexpr (!Engine::available) {
    SKIP("not a host execution space");
  } else {
    if (trimix::impl::host_amx::mode() == trimix::impl::host_amx::Mode::off)
      SKIP("no AMX on this CPU (TRIMIX_HOST_AMX=emulate emulates it where AVX512-BF16 exists)");
    std::mt19937_64 rng(1414);
    const Shape shapes[] = {{1, 4, 1, 1, 1, 64},     {2, 8, 2, 70, 200, 128}, {1, 8, 1, 130, 130, 96},
                            {1, 2, 2, 100, 100, 256}, {1, 4, 2, 49, 113, 32},  {1, 4, 4, 64, 64, 128}};
    for (const Shape& s : shapes) {
      for (const Layout layout : {Layout::bhsd, Layout::bshd}) {
        const auto in = random_inputs<trimix::bf16>(s, rng, layout);
        AttentionOptions options;
        options.layout = layout;
        check_against_reference(in, trimix::Causal{}, options);
        check_against_reference(in, trimix::Sink{0} | trimix::Window{9}, options);
        check_against_reference(in, trimix::Causal{} & EveryNthTile{16, 2}, options);
        check_against_reference(in, trimix::Window{0}, options);  // no row sees a key
        options.max_tiles_per_item = 1;  // every multi-tile row split: partial slots and the combine
        check_against_reference(in, trimix::Triangle{3, 70, 20}, options);
      }
      using View = Kokkos::View<trimix::bf16****, Kokkos::LayoutRight, ExecSpace>;
      const View q("q", s.batch, s.q_heads, s.seq_q, s.head_dim), k("k", s.batch, s.kv_heads, s.seq_k, s.head_dim);
      const auto plan = trimix::plan_attention(ExecSpace{}, q, k, k, View("o", s.batch, s.q_heads, s.seq_q, s.head_dim),
                                               trimix::Causal{});
      CHECK(plan.backend_engine);
    }
    // Head dims that are not contiguous (LayoutLeft): the engine declines the views
    // (handles_views) and the portable kernel runs on the plan made for the engine's tiles.
    const Shape s{1, 4, 1, 70, 130, 64};
    const auto in = random_inputs<trimix::bf16>(s, rng, Layout::bhsd);
    using Left = Kokkos::View<trimix::bf16****, Kokkos::LayoutLeft, ExecSpace>;
    auto to_left = [](const auto& host) {
      Left out(std::string(host.label()), host.extent(0), host.extent(1), host.extent(2), host.extent(3));
      auto mirror = Kokkos::create_mirror_view(out);
      for (std::size_t a = 0; a < host.extent(0); ++a)
        for (std::size_t b = 0; b < host.extent(1); ++b)
          for (std::size_t c = 0; c < host.extent(2); ++c)
            for (std::size_t d = 0; d < host.extent(3); ++d) mirror(a, b, c, d) = host(a, b, c, d);
      Kokkos::deep_copy(out, mirror);
      return out;
    };
    const Left q = to_left(in.q), k = to_left(in.k), v = to_left(in.v), o("o", s.batch, s.q_heads, s.seq_q, s.head_dim);
    REQUIRE(q.stride(3) != 1);
    poison(o);
    const auto mask = trimix::Triangle{3, 40, 20};
    CHECK(trimix::plan_attention(ExecSpace{}, q, k, v, o, mask).backend_engine);
    trimix::attention(ExecSpace{}, q, k, v, o, mask);
    Kokkos::fence();
    Kokkos::View<double****, Kokkos::HostSpace> o_ref("o_ref", s.batch, s.q_heads, s.seq_q, s.head_dim);
    trimix::reference::attention(in.q, in.k, in.v, o_ref, mask, {});
    CHECK(all_close(o, o_ref, Tolerance<trimix::bf16>::atol, Tolerance<trimix::bf16>::rtol));
  }
#else
  SKIP("not an x86-64 Linux GCC/Clang build");
#endif
}
