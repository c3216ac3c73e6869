// The tile contract of every mask policy against brute force (DESIGN.md section 3).
#include "test_config.hpp"

#include <trimix/mask.hpp>

#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

using trimix::index_t;
using trimix::KvRun;
using trimix::TileClass;
using trimix::TileGeometry;

namespace {

/// A policy defined only by the long form of the contract (classify + runs + visible), to prove
/// the extension point: every `stride`-th kv-tile is visible in full, nothing else.
struct EveryNthTile {
  index_t tile = 16;
  index_t stride = 3;
  TRIMIX_FUNCTION bool visible(index_t, index_t j, index_t) const {
    return (j / tile) % stride == 0;
  }
  TRIMIX_FUNCTION TileClass classify(const TileGeometry& g, index_t, index_t u) const {
    // Exact when the geometry's kv tile equals ours, conservative otherwise.
    if (g.kv_tile != tile) return TileClass::partial;
    return u % stride == 0 ? TileClass::full : TileClass::empty;
  }
  struct Cursor {
    index_t next_tile, end, stride;
    bool partial;
    TRIMIX_FUNCTION bool next(KvRun& r) {
      if (next_tile >= end) return false;
      if (partial) {
        r = KvRun{0, end, TileClass::partial};
        next_tile = end;
        return true;
      }
      r = KvRun{next_tile, next_tile + 1, TileClass::full};
      next_tile += stride;
      return true;
    }
  };
  TRIMIX_FUNCTION Cursor runs(const TileGeometry& g, index_t) const {
    return Cursor{0, g.kv_tiles(), stride, g.kv_tile != tile};
  }
  const char* name() const { return "every_nth_tile"; }
};
static_assert(trimix::is_mask_policy_v<EveryNthTile>);
static_assert(trimix::is_mask_policy_v<trimix::Triangle>);
static_assert(!trimix::is_mask_policy_v<int>);

/// Exact class of a block from visible() on every pair.
template <class P>
TileClass brute_class(const P& p, const TileGeometry& g, index_t qt, index_t u) {
  index_t seen = 0, total = 0;
  for (index_t pos = g.first_position(qt); pos <= g.last_position(qt); ++pos)
    for (index_t j = g.first_key(u); j <= g.last_key(u); ++j, ++total)
      seen += trimix::visible(p, pos, j, g.seq_k) ? 1 : 0;
  return seen == 0 ? TileClass::empty : seen == total ? TileClass::full : TileClass::partial;
}

template <class P>
std::vector<KvRun> collect_runs(const P& p, const TileGeometry& g, index_t qt) {
  std::vector<KvRun> runs;
  auto cursor = trimix::kv_runs(p, g, qt);
  KvRun r;
  while (cursor.next(r)) {
    runs.push_back(r);
    REQUIRE(runs.size() <= std::size_t(g.kv_tiles()) + 1);  // no endless cursor
  }
  return runs;
}

const char* class_name(TileClass c) {
  return c == TileClass::full ? "full" : c == TileClass::partial ? "partial" : "empty";
}

/// The whole contract for one policy and geometry. `exact`: classify must equal brute force
/// (true for the key-span primitives), otherwise it must be conservative.
template <class P>
void check_contract(const P& p, const TileGeometry& g, bool exact) {
  CAPTURE(trimix::mask_name(p), g.seq_q, g.seq_k, g.q_tile, g.kv_tile);
  for (index_t qt = 0; qt < g.q_tiles(); ++qt) {
    CAPTURE(qt);
    const auto runs = collect_runs(p, g, qt);
    // Runs are ordered, disjoint, non-empty, inside the kv range, and not empty-class.
    for (std::size_t i = 0; i < runs.size(); ++i) {
      CAPTURE(i, runs[i].begin, runs[i].end, class_name(runs[i].cls));
      REQUIRE(runs[i].begin < runs[i].end);
      REQUIRE(runs[i].begin >= 0);
      REQUIRE(runs[i].end <= g.kv_tiles());
      REQUIRE(runs[i].cls != TileClass::empty);
      if (i > 0) REQUIRE(runs[i - 1].end <= runs[i].begin);
    }
    std::vector<TileClass> from_runs(std::size_t(g.kv_tiles()), TileClass::empty);
    for (const auto& r : runs)
      for (index_t u = r.begin; u < r.end; ++u) from_runs[std::size_t(u)] = r.cls;
    for (index_t u = 0; u < g.kv_tiles(); ++u) {
      CAPTURE(u);
      const TileClass truth = brute_class(p, g, qt, u);
      const TileClass claimed = trimix::classify(p, g, qt, u);
      INFO("truth " << class_name(truth) << ", classify " << class_name(claimed) << ", runs "
                    << class_name(from_runs[std::size_t(u)]));
      REQUIRE(claimed == from_runs[std::size_t(u)]);
      if (exact) {
        REQUIRE(claimed == truth);
      } else {
        if (claimed == TileClass::full) REQUIRE(truth == TileClass::full);
        if (claimed == TileClass::empty) REQUIRE(truth == TileClass::empty);
      }
    }
  }
}

/// visible_bits against visible() key by key: rows of the geometry (all, or a stride of them),
/// 64-key windows starting anywhere (tile-aligned or not, past seq_k).
template <class P>
void check_visible_bits(const P& p, const TileGeometry& g, std::mt19937_64& rng) {
  if constexpr (trimix::impl::has_visible_bits<P>::value) {
    CAPTURE(trimix::mask_name(p), g.seq_q, g.seq_k);
    // Up to 64 positions past the last row too: the kernels ask for a tile's padding rows.
    const index_t first = g.position_offset(), last = g.seq_k - 1 + 64;
    const index_t step = 1 + (last - first) / 97;
    for (index_t pos = first; pos <= last; pos += step) {
      for (int w = 0; w < 6; ++w) {
        const index_t first_key = w == 0 ? 0 : w == 1 ? (pos / 64) * 64 : w == 2 ? g.seq_k - 1 - index_t(rng() % 64)
                                                                          : index_t(rng() % std::uint64_t(g.seq_k + 64));
        if (first_key < 0) continue;
        const std::uint64_t bits = trimix::visible_bits(p, pos, first_key, g.seq_k);
        for (int c = 0; c < 64; ++c) {
          const index_t j = first_key + c;
          const bool expected = j < g.seq_k && trimix::visible(p, pos, j, g.seq_k);
          CAPTURE(pos, first_key, c);
          REQUIRE(((bits >> c) & 1u) == std::uint64_t(expected));
        }
      }
    }
  }
}

/// visible_key_end against brute force on every (q-tile, kv-tile): never below the end of the
/// keys some row sees (the portable kernel skips the keys past it), never past the tile; equal to
/// it where `exact` (KeySpan policies).
template <class P>
void check_visible_key_end(const P& p, const TileGeometry& g, bool exact) {
  CAPTURE(trimix::mask_name(p), g.seq_q, g.seq_k, g.q_tile, g.kv_tile);
  for (index_t qt = 0; qt < g.q_tiles(); ++qt) {
    for (index_t u = 0; u < g.kv_tiles(); ++u) {
      const index_t j0 = g.first_key(u), keys = g.kv_keys(u);
      index_t seen_end = 0;
      for (index_t pos = g.first_position(qt); pos <= g.last_position(qt); ++pos) {
        if constexpr (trimix::impl::has_visible_bits<P>::value) {  // a 64-key word at a time
          for (index_t w = (keys - 1) / 64; w >= 0 && (w + 1) * 64 > seen_end; --w) {
            const index_t n = keys - w * 64 < 64 ? keys - w * 64 : 64;
            std::uint64_t bits = trimix::visible_bits(p, pos, j0 + w * 64, g.seq_k);
            if (n < 64) bits &= (std::uint64_t(1) << n) - 1;
            if (bits != 0) {
              index_t top = 63;
              while (!((bits >> top) & 1u)) --top;
              seen_end = std::max(seen_end, w * 64 + top + 1);
              break;
            }
          }
        } else {
          for (index_t c = keys - 1; c >= seen_end; --c) {
            if (trimix::visible(p, pos, j0 + c, g.seq_k)) {
              seen_end = c + 1;
              break;
            }
          }
        }
      }
      const index_t end = trimix::visible_key_end(p, g, qt, u);
      CAPTURE(qt, u, seen_end, end);
      REQUIRE(end >= seen_end);
      REQUIRE(end <= keys);
      if (exact) REQUIRE(end == seen_end);
    }
  }
}

/// Random geometry: tile sizes 16..128, lengths not multiples of the tile, Sq <= Sk.
TileGeometry random_geometry(std::mt19937_64& rng) {
  std::uniform_int_distribution<index_t> tile(16, 128), len(1, 700);
  const index_t seq_k = len(rng);
  const index_t seq_q = std::uniform_int_distribution<index_t>(1, seq_k)(rng);
  // Half the time plain prefill (Sq == Sk), the other half chunked prefill (Sq < Sk).
  return TileGeometry{rng() % 2 ? seq_k : seq_q, seq_k, tile(rng), tile(rng)};
}

/// Mask parameters around the interesting values: 0, 1, a tile or two, beyond N.
index_t random_extent(std::mt19937_64& rng, index_t n) {
  switch (rng() % 6) {
    case 0: return 0;
    case 1: return 1;
    case 2: return n + 1 + index_t(rng() % 100);
    default: return 1 + index_t(rng() % std::uint64_t(n + 1));
  }
}

// Factories for random instances of each policy and of compositions of them.
struct MakeFull { static auto make(std::mt19937_64&, index_t) { return trimix::Full{}; } static constexpr bool exact = true; };
struct MakeCausal { static auto make(std::mt19937_64&, index_t) { return trimix::Causal{}; } static constexpr bool exact = true; };
struct MakeWindow { static auto make(std::mt19937_64& r, index_t n) { return trimix::Window{random_extent(r, n)}; } static constexpr bool exact = true; };
struct MakeSink { static auto make(std::mt19937_64& r, index_t n) { return trimix::Sink{random_extent(r, n)}; } static constexpr bool exact = true; };
struct MakeLastRows { static auto make(std::mt19937_64& r, index_t n) { return trimix::LastRows{random_extent(r, n)}; } static constexpr bool exact = true; };
struct MakeTriangle {
  static auto make(std::mt19937_64& r, index_t n) {
    return trimix::Triangle{random_extent(r, n), random_extent(r, n), random_extent(r, n)};
  }
  static constexpr bool exact = false;
};
struct MakeStreaming {
  static auto make(std::mt19937_64& r, index_t n) { return trimix::Streaming{random_extent(r, n), random_extent(r, n)}; }
  static constexpr bool exact = false;
};
struct MakeWindowOrLastRows {
  static auto make(std::mt19937_64& r, index_t n) { return trimix::Window{random_extent(r, n)} | trimix::LastRows{random_extent(r, n)}; }
  static constexpr bool exact = false;
};
struct MakeNested {
  static auto make(std::mt19937_64& r, index_t n) {
    using namespace trimix;
    return (Causal{} & Window{random_extent(r, n)}) | (Sink{random_extent(r, n)} & LastRows{random_extent(r, n)}) |
           (Full{} & Window{random_extent(r, n)});
  }
  static constexpr bool exact = false;
};
struct MakeCustomComposed {
  static auto make(std::mt19937_64& r, index_t n) {
    return trimix::Causal{} & (EveryNthTile{16 * index_t(1 + r() % 4), index_t(1 + r() % 3)} | trimix::Sink{random_extent(r, n)});
  }
  static constexpr bool exact = false;
};
struct MakeCustom {
  static auto make(std::mt19937_64& r, index_t) { return EveryNthTile{16 * index_t(1 + r() % 4), index_t(1 + r() % 3)}; }
  static constexpr bool exact = false;
};

using Factories = std::tuple<MakeFull, MakeCausal, MakeWindow, MakeSink, MakeLastRows, MakeTriangle,
                             MakeStreaming, MakeWindowOrLastRows, MakeNested, MakeCustomComposed, MakeCustom>;

}  // namespace

TEMPLATE_LIST_TEST_CASE("mask policies agree with brute force", "[mask]", Factories) {
  std::mt19937_64 rng(20261128);
  for (int trial = 0; trial < 60; ++trial) {
    const TileGeometry g = random_geometry(rng);
    const auto policy = TestType::make(rng, g.seq_k);
    check_contract(policy, g, TestType::exact);
    check_visible_bits(policy, g, rng);
    if (trial % 4 == 0) check_visible_key_end(policy, g, TestType::exact);
  }
}

TEST_CASE("visible_key_end: Triangle's sink tile shows its sink, the diagonal its rows", "[mask]") {
  using namespace trimix;
  const TileGeometry g{4096, 4096, 16, 64};
  const Triangle tri{8, 512, 128};
  // A band q-tile far from both ends: the sink tile shows 8 keys, window tiles all 64 of theirs,
  // its diagonal tile up to its last row, tiles outside the pattern none.
  const index_t qt = 100;  // positions 1600..1615: diagonal tile 25, keys 1600..1615 of 1600..1663
  CHECK(visible_key_end(tri, g, qt, 0) == 8);
  CHECK(visible_key_end(tri, g, qt, 1) == 0);
  CHECK(visible_key_end(tri, g, qt, 24) == 64);
  CHECK(visible_key_end(tri, g, qt, 25) == 16);
  CHECK(visible_key_end(tri, g, qt, 26) == 0);
  // The last rows see every key: nothing to shrink but their own diagonal.
  CHECK(visible_key_end(tri, g, g.q_tiles() - 1, 0) == 64);
  CHECK(visible_key_end(Streaming{8, 512}, g, qt, 0) == 8);
  CHECK(visible_key_end(Causal{}, g, qt, 0) == 64);
  // A policy without key spans answers the whole tile.
  const TileGeometry short_end{100, 100, 16, 64};
  CHECK(visible_key_end(EveryNthTile{16, 3}, short_end, 0, 1) == 36);
}

TEST_CASE("visible_bits at extreme parameters (no overflow, empty and unbounded extents)", "[mask]") {
  using namespace trimix;
  constexpr index_t huge = std::numeric_limits<index_t>::max();
  std::mt19937_64 rng(5);
  for (const index_t seq_k : {1, 70, 300}) {
    const TileGeometry g{seq_k, seq_k, 16, 64};
    check_visible_bits(Window{huge}, g, rng);
    check_visible_bits(Window{0}, g, rng);
    check_visible_bits(Window{-3}, g, rng);
    check_visible_bits(Sink{huge}, g, rng);
    check_visible_bits(Sink{-1}, g, rng);
    check_visible_bits(LastRows{huge}, g, rng);
    check_visible_bits(LastRows{-5}, g, rng);
    check_visible_bits(Triangle{huge, huge, huge}, g, rng);
    check_visible_bits(Triangle{0, huge, 0}, g, rng);
    check_visible_bits(Triangle{-1, -3, -5}, g, rng);
    check_visible_bits(Streaming{huge, huge}, g, rng);
    check_visible_bits(Streaming{0, -3}, g, rng);
    check_visible_bits(Causal{} & (Window{huge} | Sink{0}), g, rng);
  }
}

// Built-in policies and their compositions answer 64 keys at once; a composition with a policy
// that cannot does not claim to.
static_assert(trimix::impl::has_visible_bits<trimix::Triangle>::value);
static_assert(trimix::impl::has_visible_bits<trimix::Streaming>::value);
static_assert(trimix::impl::has_visible_bits<decltype(MakeNested::make(std::declval<std::mt19937_64&>(), 0))>::value);
static_assert(!trimix::impl::has_visible_bits<EveryNthTile>::value);
static_assert(!trimix::impl::has_visible_bits<decltype(MakeCustomComposed::make(std::declval<std::mt19937_64&>(), 0))>::value);

TEST_CASE("mask edge geometries: one row, one key, tiles larger than the sequence", "[mask]") {
  for (index_t n : {1, 2, 3, 17, 63, 65, 127}) {
    for (index_t tile : {16, 64, 128}) {
      for (index_t sq : {index_t(1), n}) {
        const TileGeometry g{sq, n, tile, tile};
        check_contract(trimix::Causal{}, g, true);
        check_contract(trimix::Triangle{}, g, false);
        check_contract(trimix::Triangle{1, 1, 1}, g, false);
        check_contract(trimix::Window{0}, g, true);
        check_contract(trimix::Sink{0}, g, true);
        check_contract(trimix::LastRows{0}, g, true);
      }
    }
  }
}

namespace {
template <class A, class B>
void require_same_mask(const A& a, const B& b, const TileGeometry& g) {
  CAPTURE(trimix::mask_name(a), trimix::mask_name(b), g.seq_q, g.seq_k, g.q_tile, g.kv_tile);
  for (index_t i = 0; i < g.seq_q; ++i) {
    const index_t p = g.position_offset() + i;
    for (index_t j = 0; j < g.seq_k; ++j)
      REQUIRE(trimix::visible(a, p, j, g.seq_k) == trimix::visible(b, p, j, g.seq_k));
  }
  for (index_t qt = 0; qt < g.q_tiles(); ++qt)
    for (index_t u = 0; u < g.kv_tiles(); ++u)
      REQUIRE(trimix::classify(a, g, qt, u) == trimix::classify(b, g, qt, u));
}
}  // namespace

TEST_CASE("Triangle degenerates to Streaming and Causal", "[mask]") {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    const TileGeometry g = random_geometry(rng);
    const index_t s = random_extent(rng, g.seq_k), w = random_extent(rng, g.seq_k);
    require_same_mask(trimix::Triangle{s, w, 0}, trimix::Streaming{s, w}, g);
    require_same_mask(trimix::Triangle{s, w, g.seq_k + index_t(rng() % 3)}, trimix::Causal{}, g);
    require_same_mask(trimix::Triangle{s, g.seq_k + index_t(rng() % 3), w}, trimix::Causal{}, g);
  }
}

TEST_CASE("canonical: compositions that spell a built-in policy become it", "[mask]") {
  using namespace trimix;
  // The types, in either operand order and any grouping of the union.
  static_assert(std::is_same_v<decltype(canonical(Causal{} & (Sink{} | Window{} | LastRows{}))), Triangle>);
  static_assert(std::is_same_v<decltype(canonical((LastRows{} | (Window{} | Sink{})) & Causal{})), Triangle>);
  static_assert(std::is_same_v<decltype(canonical(Causal{} & (Window{} | Sink{}))), Streaming>);
  static_assert(std::is_same_v<decltype(canonical(Window{} & Causal{})), Window>);
  static_assert(std::is_same_v<decltype(canonical(Causal{} & (LastRows{} | Window{}))), Triangle>);  // sink 0
  // Not built-in forms: left as they are.
  using NotCausal = decltype(Sink{} | Window{} | LastRows{});
  static_assert(std::is_same_v<decltype(canonical(NotCausal{})), NotCausal>);
  using TwoSinks = decltype(Causal{} & (Sink{} | Sink{} | Window{}));
  static_assert(std::is_same_v<decltype(canonical(TwoSinks{})), TwoSinks>);
  using NoWindow = decltype(Causal{} & (Sink{} | LastRows{}));
  static_assert(std::is_same_v<decltype(canonical(NoWindow{})), NoWindow>);
  using WithFull = decltype(Causal{} & (Window{} | Full{}));
  static_assert(std::is_same_v<decltype(canonical(WithFull{})), WithFull>);
  static_assert(std::is_same_v<decltype(canonical(Triangle{})), Triangle>);

  // The parameters carried over, and the same visible pairs and tile classes, at random extents
  // (0, 1, past the sequence) and geometries.
  const Triangle tri = canonical(Causal{} & (LastRows{3} | Sink{5} | Window{7}));
  REQUIRE((tri.sink == 5 && tri.window == 7 && tri.last_rows == 3));
  const Streaming st = canonical((Window{9} | Sink{2}) & Causal{});
  REQUIRE((st.sink == 2 && st.window == 9));
  REQUIRE(canonical(Causal{} & Window{11}).size == 11);
  const Triangle no_sink = canonical(Causal{} & (Window{4} | LastRows{6}));
  REQUIRE((no_sink.sink == 0 && no_sink.window == 4 && no_sink.last_rows == 6));
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    const TileGeometry g = random_geometry(rng);
    const index_t s = random_extent(rng, g.seq_k), w = random_extent(rng, g.seq_k), l = random_extent(rng, g.seq_k);
    const auto triangle = Causal{} & ((Window{w} | LastRows{l}) | Sink{s});
    require_same_mask(triangle, canonical(triangle), g);
    const auto streaming = (Sink{s} | Window{w}) & Causal{};
    require_same_mask(streaming, canonical(streaming), g);
    require_same_mask(Causal{} & Window{w}, canonical(Causal{} & Window{w}), g);
    const auto no_sink = Causal{} & (LastRows{l} | Window{w});
    require_same_mask(no_sink, canonical(no_sink), g);
  }
}

TEST_CASE("TriangleMix runs: a sink run, a window run and the diagonal", "[mask]") {
  // N = 8192, 128-wide tiles, Triangle(8, 512, 128): a middle q-tile visits the sink tile, the
  // four window tiles before the diagonal and the diagonal; the last q-tile everything causal.
  const TileGeometry g{8192, 8192, 128, 128};
  const auto middle = collect_runs(trimix::Triangle{}, g, 30);
  REQUIRE(middle.size() == 4);
  CHECK((middle[0].begin == 0 && middle[0].end == 1 && middle[0].cls == TileClass::partial));
  // The window's far edge is ragged inside its first tile, then full tiles, then the diagonal.
  CHECK((middle[1].begin == 26 && middle[1].end == 27 && middle[1].cls == TileClass::partial));
  CHECK((middle[2].begin == 27 && middle[2].end == 30 && middle[2].cls == TileClass::full));
  CHECK((middle[3].begin == 30 && middle[3].end == 31 && middle[3].cls == TileClass::partial));
  const auto last = collect_runs(trimix::Triangle{}, g, g.q_tiles() - 1);
  REQUIRE(last.size() == 2);
  CHECK(last[0].begin == 0);
  CHECK(last[0].end == g.kv_tiles() - 1);
  CHECK(last[0].cls == TileClass::full);
  CHECK(last[1].cls == TileClass::partial);
}

TEST_CASE("mask contract is callable from device code", "[mask]") {
  // The same run enumeration inside a Kokkos kernel on the test execution space.
  using Exec = trimix_test::ExecSpace;
  const TileGeometry g{1000, 1300, 64, 32};
  const auto mask = trimix::Triangle{8, 100, 70} | trimix::Window{5};
  Kokkos::View<index_t*, Exec::memory_space> visited("visited", g.q_tiles());
  Kokkos::parallel_for(
      "trimix_test::runs", Kokkos::RangePolicy<Exec>(0, g.q_tiles()), KOKKOS_LAMBDA(index_t qt) {
        auto cursor = trimix::kv_runs(mask, g, qt);
        KvRun r;
        index_t weighted = 0;
        while (cursor.next(r)) weighted += (r.end - r.begin) * index_t(r.cls);
        visited(qt) = weighted;
      });
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, visited);
  for (index_t qt = 0; qt < g.q_tiles(); ++qt) {
    index_t expected = 0;
    for (const auto& r : collect_runs(mask, g, qt)) expected += (r.end - r.begin) * index_t(r.cls);
    CHECK(host(qt) == expected);
  }
}

TEST_CASE("mask names compose", "[mask]") {
  using namespace trimix;
  CHECK(mask_name(Triangle{}) == "triangle");
  CHECK(mask_name(Causal{} & (Sink{8} | Window{512})) == "(causal&(sink|window))");
  CHECK(mask_name(EveryNthTile{}) == "every_nth_tile");
}

TEST_CASE("count_visible_pairs counts every visible pair once", "[mask]") {
  std::mt19937_64 rng(99);
  for (int trial = 0; trial < 30; ++trial) {
    const TileGeometry g = random_geometry(rng);
    const trimix::Triangle tri{random_extent(rng, g.seq_k), random_extent(rng, g.seq_k),
                               random_extent(rng, g.seq_k)};
    std::int64_t brute = 0;
    for (index_t i = 0; i < g.seq_q; ++i)
      for (index_t j = 0; j < g.seq_k; ++j) brute += trimix::visible(tri, g.position_offset() + i, j, g.seq_k);
    CAPTURE(g.seq_q, g.seq_k, g.q_tile, tri.sink, tri.window, tri.last_rows);
    REQUIRE(trimix::count_visible_pairs(tri, g.seq_q, g.seq_k, g.q_tile) == brute);
  }
  // Causal, square: N (N + 1) / 2 for lengths that are and are not tile multiples.
  for (index_t n : {1, 63, 64, 1000})
    REQUIRE(trimix::count_visible_pairs(trimix::Causal{}, n, n) == std::int64_t(n) * (n + 1) / 2);
}

TEST_CASE("tile_picture draws the tile classes", "[mask]") {
  REQUIRE(trimix::tile_picture(trimix::Causal{}, 4, 4, 2, 2) == "+.\n#+\n");
  REQUIRE(trimix::tile_picture(trimix::Full{}, 3, 5, 2, 2) == "###\n###\n");
  // Triangle(1, 2, 2) on 8 x 8 in 2 x 2 tiles: the sink column and the window band are partial,
  // the last q-tile (the last rows) sees every earlier key.
  REQUIRE(trimix::tile_picture(trimix::Triangle{1, 2, 2}, 8, 8, 2, 2) == "+...\n++..\n+++.\n###+\n");
}
