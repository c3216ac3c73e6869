#pragma once
/// \file mask.hpp
/// Mask policies and the tile contract (DESIGN.md section 3).
///
/// A query row i of a (seq_q x seq_k) problem sits at absolute position p = seq_k - seq_q + i
/// (bottom-right aligned); key j sits at position j. Every policy is defined on (p, j) and answers
/// three questions, in device code and without allocation:
///   1. classify(geometry, q_tile, kv_tile) -> empty | partial | full (conservative);
///   2. runs(geometry, q_tile): the non-empty kv-tiles of a q-tile as ordered runs of contiguous
///      tiles, each full or partial, at a cost proportional to the number of runs;
///   3. visible(p, j, seq_k), asked only inside partial tiles.
/// The algorithm reaches them through the free functions trimix::classify, trimix::kv_runs and
/// trimix::visible, which also derive 1 and 2 for policies that describe each q-tile by a KeySpan.
/// Optionally, 4. visible_bits(p, first_key, seq_k): question 3 for 64 keys at once, as a bit mask
/// (the built-in policies and their compositions have it; kernels use it on partial tiles).
/// Derived, 5. visible_key_end(geometry, q_tile, kv_tile): how many leading keys of a tile any row
/// of the q-tile may see (the portable kernel shortens such tiles: Triangle's sink tile shows 8
/// of its 64 keys).

#include <trimix/config.hpp>

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

namespace trimix {

/// How much of a (q-tile, kv-tile) block a mask leaves visible. Ordered: empty < partial < full.
enum class TileClass : int { empty = 0, partial = 1, full = 2 };

/// A run of contiguous kv-tiles [begin, end) of one class (never empty).
struct KvRun {
  index_t begin = 0;
  index_t end = 0;
  TileClass cls = TileClass::empty;
};

/// How a (seq_q x seq_k) problem is cut into q-tiles of `q_tile` rows and kv-tiles of `kv_tile`
/// keys. The last tile of each dimension may be short.
struct TileGeometry {
  index_t seq_q = 0;
  index_t seq_k = 0;
  index_t q_tile = 1;
  index_t kv_tile = 1;

  TRIMIX_FUNCTION index_t position_offset() const { return seq_k - seq_q; }
  TRIMIX_FUNCTION index_t q_tiles() const { return (seq_q + q_tile - 1) / q_tile; }
  TRIMIX_FUNCTION index_t kv_tiles() const { return (seq_k + kv_tile - 1) / kv_tile; }
  TRIMIX_FUNCTION index_t q_rows(index_t qt) const {
    const index_t end = (qt + 1) * q_tile;
    return (end < seq_q ? end : seq_q) - qt * q_tile;
  }
  TRIMIX_FUNCTION index_t kv_keys(index_t u) const {
    const index_t end = (u + 1) * kv_tile;
    return (end < seq_k ? end : seq_k) - u * kv_tile;
  }
  /// Absolute position of the first / last query row of q-tile `qt`.
  TRIMIX_FUNCTION index_t first_position(index_t qt) const {
    return position_offset() + qt * q_tile;
  }
  TRIMIX_FUNCTION index_t last_position(index_t qt) const {
    return first_position(qt) + q_rows(qt) - 1;
  }
  TRIMIX_FUNCTION index_t first_key(index_t u) const { return u * kv_tile; }
  TRIMIX_FUNCTION index_t last_key(index_t u) const { return first_key(u) + kv_keys(u) - 1; }
};

/// The keys a q-tile (positions first..last) can see, as two inclusive intervals: `any` holds every
/// key visible to at least one row, `all` the keys visible to every row (all is inside any). An
/// interval with first > last is empty. Policies whose visible keys per q-tile have this shape
/// (bands, prefixes, row ranges) need only provide `KeySpan key_span(first, last, seq_k)`.
struct KeySpan {
  index_t any_first = 0;
  index_t any_last = -1;
  index_t all_first = 0;
  index_t all_last = -1;
};

/// A causal sink + window band in numbers: row p < seq_k sees keys [0, min(sink - 1, p)] and
/// [p - window + 1, p]; rows p >= seq_k - last_rows see every key up to p (Triangle's last rows;
/// Streaming has none: 0). What Streaming and Triangle report through `sink_window()`.
struct SinkWindow {
  index_t sink = 0;
  index_t window = 0;
  index_t last_rows = 0;
};

template <class A, class B>
struct Union;
template <class A, class B>
struct Intersection;

namespace impl {

/// Large enough for "unbounded" offsets, small enough that p +- it never overflows.
constexpr index_t unbounded = index_t(1) << 60;

TRIMIX_FUNCTION constexpr index_t max_index(index_t a, index_t b) { return a < b ? b : a; }
TRIMIX_FUNCTION constexpr index_t min_index(index_t a, index_t b) { return a < b ? a : b; }
TRIMIX_FUNCTION constexpr TileClass max_class(TileClass a, TileClass b) { return a < b ? b : a; }
TRIMIX_FUNCTION constexpr TileClass min_class(TileClass a, TileClass b) { return a < b ? a : b; }

/// Clamps both intervals of a span to the keys that exist, [0, seq_k - 1].
TRIMIX_FUNCTION KeySpan clamp_span(KeySpan s, index_t seq_k) {
  s.any_first = max_index(s.any_first, 0);
  s.any_last = min_index(s.any_last, seq_k - 1);
  s.all_first = max_index(s.all_first, 0);
  s.all_last = min_index(s.all_last, seq_k - 1);
  if (s.any_first > s.any_last) s.all_first = 0, s.all_last = -1;
  return s;
}

TRIMIX_FUNCTION KeySpan empty_span() { return KeySpan{0, -1, 0, -1}; }
TRIMIX_FUNCTION KeySpan every_key_span(index_t seq_k) { return KeySpan{0, seq_k - 1, 0, seq_k - 1}; }

/// Class of keys [j0, j1] under a span: exact whenever the span is.
TRIMIX_FUNCTION TileClass classify_keys(const KeySpan& s, index_t j0, index_t j1) {
  if (j1 < s.any_first || j0 > s.any_last) return TileClass::empty;
  if (j0 >= s.all_first && j1 <= s.all_last) return TileClass::full;
  return TileClass::partial;
}

/// The (at most three) runs a KeySpan makes: partial, full, partial.
class SpanRuns {
 public:
  TRIMIX_FUNCTION SpanRuns(const TileGeometry& g, const KeySpan& s) {
    if (s.any_first > s.any_last) return;
    const index_t first = s.any_first / g.kv_tile;       // first non-empty tile
    const index_t end = s.any_last / g.kv_tile + 1;      // one past the last non-empty tile
    // Full tiles: first_key(u) >= all_first and last_key(u) <= all_last.
    index_t full_first = (max_index(s.all_first, 0) + g.kv_tile - 1) / g.kv_tile;
    index_t full_end = s.all_last == g.seq_k - 1 ? g.kv_tiles() : (s.all_last + 1) / g.kv_tile;
    if (s.all_first > s.all_last || full_first >= full_end) full_first = full_end = end;
    push(first, full_first, TileClass::partial);
    push(full_first, full_end, TileClass::full);
    push(full_end, end, TileClass::partial);
  }
  TRIMIX_FUNCTION bool next(KvRun& run) {
    if (m_next == m_count) return false;
    run = m_runs[m_next++];
    return true;
  }

 private:
  TRIMIX_FUNCTION void push(index_t begin, index_t end, TileClass cls) {
    if (begin < end) m_runs[m_count++] = KvRun{begin, end, cls};
  }
  KvRun m_runs[3];
  int m_count = 0;
  int m_next = 0;
};

/// Merges two ordered run lists tile by tile with `Combine` (max for union, min for intersection),
/// dropping empty stretches and coalescing neighbours of equal class. O(runs of a + runs of b).
template <class CursorA, class CursorB, TileClass (*Combine)(TileClass, TileClass)>
class MergedRuns {
 public:
  TRIMIX_FUNCTION MergedRuns(const CursorA& a, const CursorB& b) : m_a(a), m_b(b) {
    m_has_a = m_a.next(m_run_a);
    m_has_b = m_b.next(m_run_b);
  }
  TRIMIX_FUNCTION bool next(KvRun& run) {
    if (!m_has_pending && !(m_has_pending = next_segment(m_pending))) return false;
    run = m_pending;
    m_has_pending = false;
    KvRun seg;
    while (next_segment(seg)) {
      if (seg.begin == run.end && seg.cls == run.cls) {
        run.end = seg.end;
      } else {
        m_pending = seg;
        m_has_pending = true;
        break;
      }
    }
    return true;
  }

 private:
  /// Next maximal stretch on which both inputs keep one class, with a non-empty combination.
  TRIMIX_FUNCTION bool next_segment(KvRun& seg) {
    for (;;) {
      while (m_has_a && m_run_a.end <= m_x) m_has_a = m_a.next(m_run_a);
      while (m_has_b && m_run_b.end <= m_x) m_has_b = m_b.next(m_run_b);
      if (!m_has_a && !m_has_b) return false;
      const bool in_a = m_has_a && m_run_a.begin <= m_x;
      const bool in_b = m_has_b && m_run_b.begin <= m_x;
      if (!in_a && !in_b) {  // jump over tiles neither input visits
        m_x = min_index(m_has_a ? m_run_a.begin : unbounded, m_has_b ? m_run_b.begin : unbounded);
        continue;
      }
      index_t stop = unbounded;
      if (m_has_a) stop = min_index(stop, in_a ? m_run_a.end : m_run_a.begin);
      if (m_has_b) stop = min_index(stop, in_b ? m_run_b.end : m_run_b.begin);
      const TileClass cls = Combine(in_a ? m_run_a.cls : TileClass::empty,
                                    in_b ? m_run_b.cls : TileClass::empty);
      const index_t start = m_x;
      m_x = stop;
      if (cls == TileClass::empty) continue;
      seg = KvRun{start, stop, cls};
      return true;
    }
  }

  CursorA m_a;
  CursorB m_b;
  KvRun m_run_a, m_run_b, m_pending;
  bool m_has_a = false, m_has_b = false, m_has_pending = false;
  index_t m_x = 0;
};

// ---- detection of the contract's members --------------------------------------------------

template <class P, class = void>
struct has_visible : std::false_type {};
template <class P>
struct has_visible<P, std::enable_if_t<std::is_convertible_v<
                          decltype(std::declval<const P&>().visible(index_t{}, index_t{}, index_t{})),
                          bool>>> : std::true_type {};

template <class P, class = void>
struct has_key_span : std::false_type {};
template <class P>
struct has_key_span<P, std::enable_if_t<std::is_same_v<
                           decltype(std::declval<const P&>().key_span(index_t{}, index_t{}, index_t{})),
                           KeySpan>>> : std::true_type {};

template <class P, class = void>
struct has_classify : std::false_type {};
template <class P>
struct has_classify<P, std::enable_if_t<std::is_same_v<
                           decltype(std::declval<const P&>().classify(
                               std::declval<const TileGeometry&>(), index_t{}, index_t{})),
                           TileClass>>> : std::true_type {};

template <class Cursor, class = void>
struct is_run_cursor : std::false_type {};
template <class Cursor>
struct is_run_cursor<Cursor, std::enable_if_t<std::is_same_v<
                                 decltype(std::declval<Cursor&>().next(std::declval<KvRun&>())),
                                 bool>>> : std::true_type {};

template <class P, class = void>
struct has_runs : std::false_type {};
template <class P>
struct has_runs<P, std::enable_if_t<is_run_cursor<decltype(std::declval<const P&>().runs(
                       std::declval<const TileGeometry&>(), index_t{}))>::value>> : std::true_type {};

/// Optional: `std::uint64_t visible_bits(index_t position, index_t first_key, index_t seq_k) const`,
/// bit c set when key first_key + c (c < 64, key < seq_k) is visible to `position`. The kernels
/// mask a partial tile's row with it (one call per row and 64 keys) instead of asking `visible`
/// per key: for Triangle, 4 intervals per row instead of the composed test for every score.
template <class P, class = void>
struct has_visible_bits : std::false_type {};
template <class P>
struct has_visible_bits<P, std::enable_if_t<std::is_same_v<
                               decltype(std::declval<const P&>().visible_bits(index_t{}, index_t{}, index_t{})),
                               std::uint64_t>>> : std::true_type {};

/// Optional: `SinkWindow sink_window() const` for policies whose rows form a causal sink + window
/// band (Streaming, Triangle): the shape in numbers, for engines that place tiles by it (the CUDA
/// engine carries a band row's sink keys inside another of its tiles, sink_fold in plan.hpp).
template <class P, class = void>
struct has_sink_window : std::false_type {};
template <class P>
struct has_sink_window<P, std::enable_if_t<std::is_same_v<decltype(std::declval<const P&>().sink_window()), SinkWindow>>>
    : std::true_type {};

template <class P, class = void>
struct has_name : std::false_type {};
template <class P>
struct has_name<P, std::void_t<decltype(std::string(std::declval<const P&>().name()))>>
    : std::true_type {};

// ---- policies that depend on the head (runtime masks, block_sparse.hpp) -------------------------
//
// A policy whose mask differs per (batch, query head) provides
//   `bind(index_t batch, index_t q_head, index_t q_heads) const`
// returning a position-only policy for that head. The algorithm calls trimix::bind_head on the
// whole mask once per work item; compositions bind their parts, position-only policies bind to
// themselves. Optional members such a policy may add: `bool uniform_within_group(q_heads,
// kv_heads) const` (GQA packing allowed) and `void check(api, geometry, batch, q_heads) const`
// (throws when the policy does not fit the problem or the engine's tiles).

template <class P, class = void>
struct has_bind : std::false_type {};
template <class P>
struct has_bind<P, std::void_t<decltype(std::declval<const P&>().bind(index_t{}, index_t{}, index_t{}))>>
    : std::true_type {};

template <class P>
struct is_head_dependent : has_bind<P> {};
template <class A, class B>
struct is_head_dependent<Union<A, B>>
    : std::bool_constant<is_head_dependent<A>::value || is_head_dependent<B>::value> {};
template <class A, class B>
struct is_head_dependent<Intersection<A, B>>
    : std::bool_constant<is_head_dependent<A>::value || is_head_dependent<B>::value> {};

template <class P>
inline constexpr bool satisfies_tile_contract =
    has_visible<P>::value && std::is_trivially_copyable_v<P> &&
    (has_key_span<P>::value || (has_classify<P>::value && has_runs<P>::value));

template <class P, bool = has_bind<P>::value>
struct binds_to_policy : std::true_type {};  // compositions: their parts were checked
template <class P>
struct binds_to_policy<P, true>
    : std::bool_constant<std::is_trivially_copyable_v<P> &&
                         satisfies_tile_contract<decltype(std::declval<const P&>().bind(
                             index_t{}, index_t{}, index_t{}))>> {};

template <class P, bool = is_head_dependent<P>::value>
struct is_mask_policy : std::bool_constant<satisfies_tile_contract<P>> {};
template <class P>
struct is_mask_policy<P, true> : binds_to_policy<P> {};

}  // namespace impl

/// True for types that satisfy the tile contract: `visible`, and either `key_span` or both
/// `classify` and `runs`; or that bind per head to such a type. Policies must also be trivially
/// copyable (they are copied to devices).
template <class P>
inline constexpr bool is_mask_policy_v = impl::is_mask_policy<P>::value;

/// Compile-time check with a message that says which part of the contract is missing.
template <class P>
constexpr bool check_mask_policy() {
  if constexpr (impl::is_head_dependent<P>::value) {
    static_assert(impl::binds_to_policy<P>::value,
                  "trimix mask policy: `bind(batch, q_head, q_heads)` must return a trivially copyable "
                  "position-only mask policy, and the policy itself must be trivially copyable");
  } else {
    static_assert(impl::has_visible<P>::value,
                  "trimix mask policy: missing `bool visible(index_t position, index_t key, "
                  "index_t seq_k) const`");
    static_assert(impl::has_key_span<P>::value || impl::has_classify<P>::value,
                  "trimix mask policy: missing `TileClass classify(const TileGeometry&, index_t "
                  "q_tile, index_t kv_tile) const` (or `KeySpan key_span(index_t first_position, "
                  "index_t last_position, index_t seq_k) const`)");
    static_assert(impl::has_key_span<P>::value || impl::has_runs<P>::value,
                  "trimix mask policy: missing `runs(const TileGeometry&, index_t q_tile) const` "
                  "returning a cursor with `bool next(KvRun&)` (or `KeySpan key_span(...)`)");
    static_assert(std::is_trivially_copyable_v<P>,
                  "trimix mask policy: must be trivially copyable (it is copied to the device)");
  }
  return true;
}

// ---- the contract, as the algorithm asks it -----------------------------------------------

/// Class of the block (q-tile `qt`, kv-tile `u`).
template <class P>
TRIMIX_FUNCTION TileClass classify(const P& policy, const TileGeometry& g, index_t qt, index_t u) {
  if constexpr (impl::has_classify<P>::value) {
    return policy.classify(g, qt, u);
  } else {
    const KeySpan s = impl::clamp_span(policy.key_span(g.first_position(qt), g.last_position(qt), g.seq_k), g.seq_k);
    return impl::classify_keys(s, g.first_key(u), g.last_key(u));
  }
}

/// Cursor over the ordered non-empty kv-tile runs of q-tile `qt`: `KvRun r; while (c.next(r))`.
template <class P>
TRIMIX_FUNCTION auto kv_runs(const P& policy, const TileGeometry& g, index_t qt) {
  if constexpr (impl::has_runs<P>::value) {
    return policy.runs(g, qt);
  } else {
    return impl::SpanRuns(g, impl::clamp_span(policy.key_span(g.first_position(qt), g.last_position(qt), g.seq_k), g.seq_k));
  }
}

/// Whether query position `p` sees key `j` in a sequence of `seq_k` keys.
template <class P>
TRIMIX_FUNCTION bool visible(const P& policy, index_t p, index_t j, index_t seq_k) {
  return policy.visible(p, j, seq_k);
}

/// Bits of the 64 keys from `first_key` that position `p` sees (bit c: key first_key + c; keys at
/// or past seq_k are 0). For policies with `visible_bits` (impl::has_visible_bits).
template <class P>
TRIMIX_FUNCTION std::uint64_t visible_bits(const P& policy, index_t p, index_t first_key, index_t seq_k) {
  static_assert(impl::has_visible_bits<P>::value, "trimix::visible_bits: the policy has no visible_bits member");
  return policy.visible_bits(p, first_key, seq_k);
}

/// Short name used in kernel labels ("trimix::attention[triangle]"); "custom" if none is given.
template <class P>
std::string mask_name(const P& policy) {
  if constexpr (impl::has_name<P>::value) return std::string(policy.name());
  else return "custom";
}

// ---- built-in policies --------------------------------------------------------------------

namespace impl {
/// visible_bits of a row that sees exactly the keys [first, last] (a single-row key_span's `any`):
/// bit c for first <= first_key + c <= last, first_key + c < seq_k, c < 64.
TRIMIX_FUNCTION std::uint64_t interval_bits(const KeySpan& row, index_t first_key, index_t seq_k) {
  // Differences only where they cannot overflow (spans may reach +-2^63 for huge windows).
  const index_t last = min_index(row.any_last, seq_k - 1);
  if (last < first_key || row.any_first > last || row.any_first >= first_key + 64) return 0;
  const index_t lo = row.any_first <= first_key ? 0 : row.any_first - first_key;
  const index_t hi = min_index(last - first_key, 63) + 1;  // exclusive
  if (lo >= hi) return 0;
  const std::uint64_t below_hi = hi == 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << hi) - 1;
  return below_hi & (~std::uint64_t(0) << lo);
}

/// visible_bits of the rows of a causal sink + window band (Streaming, Triangle): keys
/// [0, min(sink_last, p)] and [p - window + 1, p] (none where window <= 0), as two intervals
/// instead of the composition's four leaves and their combinations (those were ~200 SASS
/// instructions a call for Triangle in 037298b's CUDA kernels; on the H200 the head-dim-64 kernel
/// then took ~10% less time for triangle and ~2% for streaming, bench/NOTES.md; the warp-specialised
/// kernel and the CPU engines did not change). sink_last = p makes the first interval the whole
/// causal row (Triangle's last rows).
TRIMIX_FUNCTION std::uint64_t sink_window_bits(index_t sink_last, index_t window, index_t p, index_t first_key,
                                               index_t seq_k) {
  const std::uint64_t sink_bits = interval_bits(KeySpan{0, min_index(sink_last, p)}, first_key, seq_k);
  if (window <= 0) return sink_bits;
  return sink_bits | interval_bits(KeySpan{p - (window - 1), p}, first_key, seq_k);
}

/// Keys j with lo <= p - j <= hi: the shape of Full, Causal and Window.
TRIMIX_FUNCTION KeySpan band_span(index_t lo, index_t hi, index_t first, index_t last) {
  if (lo > hi) return empty_span();
  return KeySpan{first - hi, last - lo, last - hi, first - lo};
}
}  // namespace impl

/// Every key is visible.
struct Full {
  TRIMIX_FUNCTION bool visible(index_t, index_t, index_t) const { return true; }
  TRIMIX_FUNCTION KeySpan key_span(index_t, index_t, index_t seq_k) const {
    return impl::every_key_span(seq_k);
  }
  TRIMIX_FUNCTION std::uint64_t visible_bits(index_t p, index_t first_key, index_t seq_k) const {
    return impl::interval_bits(key_span(p, p, seq_k), first_key, seq_k);  // one row: one interval
  }
  const char* name() const { return "full"; }
};

/// Keys at or before the query's position: j <= p.
struct Causal {
  TRIMIX_FUNCTION bool visible(index_t p, index_t j, index_t) const { return j <= p; }
  TRIMIX_FUNCTION KeySpan key_span(index_t first, index_t last, index_t) const {
    return impl::band_span(0, impl::unbounded, first, last);
  }
  TRIMIX_FUNCTION std::uint64_t visible_bits(index_t p, index_t first_key, index_t seq_k) const {
    return impl::interval_bits(key_span(p, p, seq_k), first_key, seq_k);  // one row: one interval
  }
  const char* name() const { return "causal"; }
};

/// Sliding window of `size` keys ending at the query itself: 0 <= p - j < size.
struct Window {
  index_t size = 512;
  constexpr Window() = default;
  TRIMIX_FUNCTION constexpr explicit Window(index_t size_) : size(size_) {}
  TRIMIX_FUNCTION bool visible(index_t p, index_t j, index_t) const {
    return j <= p && p - j < size;
  }
  TRIMIX_FUNCTION KeySpan key_span(index_t first, index_t last, index_t) const {
    return impl::band_span(0, size - 1, first, last);
  }
  TRIMIX_FUNCTION std::uint64_t visible_bits(index_t p, index_t first_key, index_t seq_k) const {
    return impl::interval_bits(key_span(p, p, seq_k), first_key, seq_k);  // one row: one interval
  }
  const char* name() const { return "window"; }
};

/// The first `count` keys (attention sinks): j < count.
struct Sink {
  index_t count = 8;
  constexpr Sink() = default;
  TRIMIX_FUNCTION constexpr explicit Sink(index_t count_) : count(count_) {}
  TRIMIX_FUNCTION bool visible(index_t, index_t j, index_t) const { return j < count; }
  TRIMIX_FUNCTION KeySpan key_span(index_t, index_t, index_t) const {
    return KeySpan{0, count - 1, 0, count - 1};
  }
  TRIMIX_FUNCTION std::uint64_t visible_bits(index_t p, index_t first_key, index_t seq_k) const {
    return impl::interval_bits(key_span(p, p, seq_k), first_key, seq_k);  // one row: one interval
  }
  const char* name() const { return "sink"; }
};

/// The last `count` rows of the whole sequence see every key: p >= seq_k - count.
struct LastRows {
  index_t count = 128;
  constexpr LastRows() = default;
  TRIMIX_FUNCTION constexpr explicit LastRows(index_t count_) : count(count_) {}
  TRIMIX_FUNCTION bool visible(index_t p, index_t, index_t seq_k) const {
    return p >= seq_k - count;
  }
  TRIMIX_FUNCTION KeySpan key_span(index_t first, index_t last, index_t seq_k) const {
    const index_t threshold = seq_k - count;
    if (first >= threshold) return impl::every_key_span(seq_k);
    if (last >= threshold) return KeySpan{0, seq_k - 1, 0, -1};
    return impl::empty_span();
  }
  TRIMIX_FUNCTION std::uint64_t visible_bits(index_t p, index_t first_key, index_t seq_k) const {
    return impl::interval_bits(key_span(p, p, seq_k), first_key, seq_k);  // one row: one interval
  }
  const char* name() const { return "last_rows"; }
};

/// Union: visible where either policy is. Build with `a | b`.
template <class A, class B>
struct Union {
  static_assert(check_mask_policy<A>() && check_mask_policy<B>());
  A a;
  B b;
  TRIMIX_FUNCTION bool visible(index_t p, index_t j, index_t seq_k) const {
    return trimix::visible(a, p, j, seq_k) || trimix::visible(b, p, j, seq_k);
  }
  TRIMIX_FUNCTION TileClass classify(const TileGeometry& g, index_t qt, index_t u) const {
    // b is not asked where a already decides (a runtime mask's lookups cost more than a compare).
    const TileClass ca = trimix::classify(a, g, qt, u);
    return ca == TileClass::full ? ca : impl::max_class(ca, trimix::classify(b, g, qt, u));
  }
  TRIMIX_FUNCTION auto runs(const TileGeometry& g, index_t qt) const {
    using CA = decltype(kv_runs(a, g, qt));
    using CB = decltype(kv_runs(b, g, qt));
    return impl::MergedRuns<CA, CB, impl::max_class>(kv_runs(a, g, qt), kv_runs(b, g, qt));
  }
  template <class A_ = A, class B_ = B,
            std::enable_if_t<impl::has_visible_bits<A_>::value && impl::has_visible_bits<B_>::value, int> = 0>
  TRIMIX_FUNCTION std::uint64_t visible_bits(index_t p, index_t first_key, index_t seq_k) const {
    return a.visible_bits(p, first_key, seq_k) | b.visible_bits(p, first_key, seq_k);
  }
  std::string name() const { return "(" + mask_name(a) + "|" + mask_name(b) + ")"; }
};

/// Intersection: visible where both policies are. Build with `a & b`.
template <class A, class B>
struct Intersection {
  static_assert(check_mask_policy<A>() && check_mask_policy<B>());
  A a;
  B b;
  TRIMIX_FUNCTION bool visible(index_t p, index_t j, index_t seq_k) const {
    return trimix::visible(a, p, j, seq_k) && trimix::visible(b, p, j, seq_k);
  }
  TRIMIX_FUNCTION TileClass classify(const TileGeometry& g, index_t qt, index_t u) const {
    const TileClass ca = trimix::classify(a, g, qt, u);  // as in Union: b only where a does not decide
    return ca == TileClass::empty ? ca : impl::min_class(ca, trimix::classify(b, g, qt, u));
  }
  TRIMIX_FUNCTION auto runs(const TileGeometry& g, index_t qt) const {
    using CA = decltype(kv_runs(a, g, qt));
    using CB = decltype(kv_runs(b, g, qt));
    return impl::MergedRuns<CA, CB, impl::min_class>(kv_runs(a, g, qt), kv_runs(b, g, qt));
  }
  template <class A_ = A, class B_ = B,
            std::enable_if_t<impl::has_visible_bits<A_>::value && impl::has_visible_bits<B_>::value, int> = 0>
  TRIMIX_FUNCTION std::uint64_t visible_bits(index_t p, index_t first_key, index_t seq_k) const {
    return a.visible_bits(p, first_key, seq_k) & b.visible_bits(p, first_key, seq_k);
  }
  std::string name() const { return "(" + mask_name(a) + "&" + mask_name(b) + ")"; }
};

template <class A, class B, class = std::enable_if_t<is_mask_policy_v<A> && is_mask_policy_v<B>>>
TRIMIX_FUNCTION constexpr Union<A, B> operator|(const A& a, const B& b) {
  return Union<A, B>{a, b};
}
template <class A, class B, class = std::enable_if_t<is_mask_policy_v<A> && is_mask_policy_v<B>>>
TRIMIX_FUNCTION constexpr Intersection<A, B> operator&(const A& a, const B& b) {
  return Intersection<A, B>{a, b};
}

/// The mask of one (batch, query head of q_heads): position-only policies are returned as they
/// are, head-dependent ones bound (see has_bind above), compositions part by part.
template <class P>
TRIMIX_FUNCTION auto bind_head(const P& policy, index_t batch, index_t q_head, index_t q_heads) {
  if constexpr (impl::has_bind<P>::value) return policy.bind(batch, q_head, q_heads);
  else return policy;
}
template <class A, class B>
TRIMIX_FUNCTION auto bind_head(const Union<A, B>& u, index_t batch, index_t q_head, index_t q_heads) {
  if constexpr (impl::is_head_dependent<Union<A, B>>::value) {
    const auto a = bind_head(u.a, batch, q_head, q_heads);
    const auto b = bind_head(u.b, batch, q_head, q_heads);
    return Union<std::remove_const_t<decltype(a)>, std::remove_const_t<decltype(b)>>{a, b};
  } else {
    return u;
  }
}
template <class A, class B>
TRIMIX_FUNCTION auto bind_head(const Intersection<A, B>& x, index_t batch, index_t q_head, index_t q_heads) {
  if constexpr (impl::is_head_dependent<Intersection<A, B>>::value) {
    const auto a = bind_head(x.a, batch, q_head, q_heads);
    const auto b = bind_head(x.b, batch, q_head, q_heads);
    return Intersection<std::remove_const_t<decltype(a)>, std::remove_const_t<decltype(b)>>{a, b};
  } else {
    return x;
  }
}

namespace impl {
template <class P, class = void>
struct has_composed : std::false_type {};
template <class P>
struct has_composed<P, std::void_t<decltype(std::declval<const P&>().composed())>> : std::true_type {};
}  // namespace impl

/// One past the last key of kv-tile `u`, counted from its first key, that any row of q-tile `qt`
/// may see: an upper bound in [0, kv_keys(u)], exact for KeySpan policies and their unions
/// (keys past it are invisible to every row; keys before it may be invisible too). Policies
/// without a KeySpan (classify-only, runtime masks) answer kv_keys(u).
template <class P>
TRIMIX_FUNCTION index_t visible_key_end(const P& policy, const TileGeometry& g, index_t qt, index_t u) {
  if constexpr (impl::has_composed<P>::value) {
    return visible_key_end(policy.composed(), g, qt, u);
  } else if constexpr (impl::has_key_span<P>::value && !impl::has_bind<P>::value) {
    const KeySpan s = impl::clamp_span(policy.key_span(g.first_position(qt), g.last_position(qt), g.seq_k), g.seq_k);
    const index_t j0 = g.first_key(u), j1 = g.last_key(u);
    if (s.any_first > s.any_last || s.any_last < j0 || s.any_first > j1) return 0;
    return impl::min_index(s.any_last, j1) - j0 + 1;
  } else {
    return g.kv_keys(u);
  }
}
template <class A, class B>
TRIMIX_FUNCTION index_t visible_key_end(const Union<A, B>& x, const TileGeometry& g, index_t qt, index_t u) {
  return impl::max_index(visible_key_end(x.a, g, qt, u), visible_key_end(x.b, g, qt, u));
}
template <class A, class B>
TRIMIX_FUNCTION index_t visible_key_end(const Intersection<A, B>& x, const TileGeometry& g, index_t qt, index_t u) {
  return impl::min_index(visible_key_end(x.a, g, qt, u), visible_key_end(x.b, g, qt, u));
}

namespace impl {
template <class P, class = void>
struct has_uniform_within_group : std::false_type {};
template <class P>
struct has_uniform_within_group<P, std::void_t<decltype(std::declval<const P&>().uniform_within_group(
                                       index_t{}, index_t{}))>> : std::true_type {};
template <class P, class = void>
struct has_check : std::false_type {};
template <class P>
struct has_check<P, std::void_t<decltype(std::declval<const P&>().check(
                        "", std::declval<const TileGeometry&>(), index_t{}, index_t{}))>> : std::true_type {};
}  // namespace impl

/// Whether every query head of a GQA group has the same mask (then an item may pack the group).
template <class P>
bool uniform_within_group(const P& policy, index_t q_heads, index_t kv_heads) {
  if constexpr (impl::has_uniform_within_group<P>::value) return policy.uniform_within_group(q_heads, kv_heads);
  else return !impl::has_bind<P>::value;
}
template <class A, class B>
bool uniform_within_group(const Union<A, B>& u, index_t q_heads, index_t kv_heads) {
  return uniform_within_group(u.a, q_heads, kv_heads) && uniform_within_group(u.b, q_heads, kv_heads);
}
template <class A, class B>
bool uniform_within_group(const Intersection<A, B>& x, index_t q_heads, index_t kv_heads) {
  return uniform_within_group(x.a, q_heads, kv_heads) && uniform_within_group(x.b, q_heads, kv_heads);
}

/// Throws std::invalid_argument (naming `api`) when a runtime policy does not fit the problem or
/// the engine's tiles; position-only policies always fit.
template <class P>
void check_policy_fits(const P& policy, const char* api, const TileGeometry& g, index_t batch, index_t q_heads) {
  if constexpr (impl::has_check<P>::value) policy.check(api, g, batch, q_heads);
}
template <class A, class B>
void check_policy_fits(const Union<A, B>& u, const char* api, const TileGeometry& g, index_t batch, index_t q_heads) {
  check_policy_fits(u.a, api, g, batch, q_heads);
  check_policy_fits(u.b, api, g, batch, q_heads);
}
template <class A, class B>
void check_policy_fits(const Intersection<A, B>& x, const char* api, const TileGeometry& g, index_t batch,
                       index_t q_heads) {
  check_policy_fits(x.a, api, g, batch, q_heads);
  check_policy_fits(x.b, api, g, batch, q_heads);
}

/// Policies defined as a composition of others: `composed()` returns the expression, everything
/// else forwards to it (so the composite gets the merged runs and a name of its own).
template <class Derived>
struct ComposedPolicy {
  TRIMIX_FUNCTION bool visible(index_t p, index_t j, index_t seq_k) const {
    return trimix::visible(self().composed(), p, j, seq_k);
  }
  TRIMIX_FUNCTION TileClass classify(const TileGeometry& g, index_t qt, index_t u) const {
    return trimix::classify(self().composed(), g, qt, u);
  }
  TRIMIX_FUNCTION auto runs(const TileGeometry& g, index_t qt) const {
    return kv_runs(self().composed(), g, qt);
  }
  template <class D = Derived,
            std::enable_if_t<impl::has_visible_bits<decltype(std::declval<const D&>().composed())>::value, int> = 0>
  TRIMIX_FUNCTION std::uint64_t visible_bits(index_t p, index_t first_key, index_t seq_k) const {
    return static_cast<const D&>(*this).composed().visible_bits(p, first_key, seq_k);
  }

 private:
  TRIMIX_FUNCTION const Derived& self() const { return static_cast<const Derived&>(*this); }
};

/// A-shape / StreamingLLM: Causal and (Sink{sink} or Window{window}).
struct Streaming : ComposedPolicy<Streaming> {
  index_t sink = 8;
  index_t window = 512;
  constexpr Streaming() = default;
  TRIMIX_FUNCTION constexpr Streaming(index_t sink_, index_t window_) : sink(sink_), window(window_) {}
  TRIMIX_FUNCTION auto composed() const { return Causal{} & (Sink{sink} | Window{window}); }
  TRIMIX_FUNCTION SinkWindow sink_window() const { return SinkWindow{sink, window, 0}; }
  TRIMIX_FUNCTION std::uint64_t visible_bits(index_t p, index_t first_key, index_t seq_k) const {
    return impl::sink_window_bits(sink - 1, window, p, first_key, seq_k);
  }
  const char* name() const { return "streaming"; }
};

/// TriangleMix's static pattern: Causal and (Sink{sink} or Window{window} or LastRows{last_rows}).
/// Defaults are MInference's tri_mix values (n_init 8, n_local 512, n_last 128).
struct Triangle : ComposedPolicy<Triangle> {
  index_t sink = 8;
  index_t window = 512;
  index_t last_rows = 128;
  constexpr Triangle() = default;
  TRIMIX_FUNCTION constexpr Triangle(index_t sink_, index_t window_, index_t last_rows_)
      : sink(sink_), window(window_), last_rows(last_rows_) {}
  TRIMIX_FUNCTION auto composed() const {
    return Causal{} & (Sink{sink} | Window{window} | LastRows{last_rows});
  }
  TRIMIX_FUNCTION SinkWindow sink_window() const { return SinkWindow{sink, window, last_rows}; }
  TRIMIX_FUNCTION std::uint64_t visible_bits(index_t p, index_t first_key, index_t seq_k) const {
    // A last row sees every key up to itself: its "sink" interval then covers the window too.
    return impl::sink_window_bits(p >= seq_k - last_rows ? p : sink - 1, window, p, first_key, seq_k);
  }
  const char* name() const { return "triangle"; }
};

// ---- canonical form ----------------------------------------------------------------------------

namespace impl {
/// How many Sink, Window and LastRows leaves a union of only such leaves has (ok = false: some
/// other policy is in it, or it is not a union of leaves).
template <bool Ok, int SinkLeaves, int WindowLeaves, int LastRowsLeaves>
struct leaf_counts {
  static constexpr bool ok = Ok;
  static constexpr int sink = SinkLeaves, window = WindowLeaves, last_rows = LastRowsLeaves;
};
template <class P>
struct band_leaves : leaf_counts<false, 0, 0, 0> {};
template <>
struct band_leaves<Sink> : leaf_counts<true, 1, 0, 0> {};
template <>
struct band_leaves<Window> : leaf_counts<true, 0, 1, 0> {};
template <>
struct band_leaves<LastRows> : leaf_counts<true, 0, 0, 1> {};
template <class A, class B>
struct band_leaves<Union<A, B>>
    : leaf_counts<band_leaves<A>::ok && band_leaves<B>::ok, band_leaves<A>::sink + band_leaves<B>::sink,
                  band_leaves<A>::window + band_leaves<B>::window,
                  band_leaves<A>::last_rows + band_leaves<B>::last_rows> {};

/// The built-in policy that Causal & U is, by U's leaves (one Window, at most one of the others):
/// 3 Triangle (with LastRows; sink 0 without a Sink), 2 Streaming (Sink), 1 Window (alone: causal
/// already); 0 none. A constant, not a constexpr function: nvcc calls those host-only.
template <class U, class L = band_leaves<U>>
constexpr int causal_band_kind = !L::ok || L::window != 1 || L::sink > 1 || L::last_rows > 1 ? 0
                                 : L::last_rows == 1                                       ? 3
                                 : L::sink == 1                                            ? 2
                                                                                           : 1;

TRIMIX_FUNCTION void gather_band(const Sink& s, SinkWindow& out) { out.sink = s.count; }
TRIMIX_FUNCTION void gather_band(const Window& w, SinkWindow& out) { out.window = w.size; }
TRIMIX_FUNCTION void gather_band(const LastRows& l, SinkWindow& out) { out.last_rows = l.count; }
template <class A, class B>
TRIMIX_FUNCTION void gather_band(const Union<A, B>& u, SinkWindow& out) {
  gather_band(u.a, out);
  gather_band(u.b, out);
}

template <class U>
TRIMIX_FUNCTION auto causal_band(const U& u) {
  SinkWindow sw;
  gather_band(u, sw);
  constexpr int kind = causal_band_kind<U>;
  if constexpr (kind == 3) return Triangle{sw.sink, sw.window, sw.last_rows};
  else if constexpr (kind == 2) return Streaming{sw.sink, sw.window};
  else return Window{sw.window};
}
}  // namespace impl

/// The built-in policy with exactly the visible pairs of `policy`, where the composition spells one
/// out, else `policy` itself: Causal & (Sink | Window | LastRows) is Triangle (without the Sink,
/// Triangle with sink 0), Causal & (Sink | Window) is Streaming and Causal & Window is Window, in
/// either operand order and any grouping of the union. trimix::attention plans and runs the
/// canonical policy (the plan keeps the one given), so a composition runs the kernels and mask bits
/// tuned for its built-in form.
template <class P>
TRIMIX_FUNCTION auto canonical(const P& policy) {
  return policy;
}
template <class A, class B>
TRIMIX_FUNCTION auto canonical(const Intersection<A, B>& x) {
  if constexpr (std::is_same_v<A, Causal> && impl::causal_band_kind<B> > 0) return impl::causal_band(x.b);
  else if constexpr (std::is_same_v<B, Causal> && impl::causal_band_kind<A> > 0) return impl::causal_band(x.a);
  else return x;
}

// ---- host utilities built on the contract ------------------------------------------------------

/// Visible (query, key) pairs of one head for Sq = seq_q, Sk = seq_k: the work a mask leaves
/// (4 * D FLOPs per pair and query head). Full tiles count by area, Partial tiles pair by pair, so
/// the cost is O(#tiles + partial area) on the host; no N x N storage.
template <class P>
std::int64_t count_visible_pairs(const P& policy, index_t seq_q, index_t seq_k, index_t tile = 64) {
  check_mask_policy<P>();
  const TileGeometry g{seq_q, seq_k, tile, tile};
  std::int64_t pairs = 0;
  for (index_t qt = 0; qt < g.q_tiles(); ++qt) {
    auto cursor = kv_runs(policy, g, qt);
    KvRun run;
    while (cursor.next(run)) {
      for (index_t u = run.begin; u < run.end; ++u) {
        if (run.cls == TileClass::full) {
          pairs += std::int64_t(g.q_rows(qt)) * std::int64_t(g.kv_keys(u));
          continue;
        }
        for (index_t p = g.first_position(qt); p <= g.last_position(qt); ++p)
          for (index_t j = g.first_key(u); j <= g.last_key(u); ++j) pairs += visible(policy, p, j, seq_k) ? 1 : 0;
      }
    }
  }
  return pairs;
}

/// The tile pattern as text, one line per q-tile: '#' Full, '+' Partial, '.' Empty (README
/// pictures, the demo, debugging a custom policy).
template <class P>
std::string tile_picture(const P& policy, index_t seq_q, index_t seq_k, index_t q_tile, index_t kv_tile) {
  check_mask_policy<P>();
  const TileGeometry g{seq_q, seq_k, q_tile, kv_tile};
  std::string text;
  for (index_t qt = 0; qt < g.q_tiles(); ++qt) {
    for (index_t u = 0; u < g.kv_tiles(); ++u) {
      const TileClass c = classify(policy, g, qt, u);
      text += c == TileClass::full ? '#' : c == TileClass::partial ? '+' : '.';
    }
    text += '\n';
  }
  return text;
}

}  // namespace trimix
