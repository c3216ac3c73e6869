#pragma once
/// \file problem.hpp
/// Options of an attention call, and the validated description of its tensors (shapes, strides)
/// shared by the reference, the plan and the kernels.

#include <trimix/config.hpp>
#include <trimix/element.hpp>

#include <cmath>
#include <optional>
#include <string>

namespace trimix {

/// Axis order of the rank-4 Q/K/V/O views. LSE is always (batch, q_heads, seq_q).
enum class Layout {
  bhsd,  ///< (batch, heads, seq, head_dim): the FlashAttention / SDPA order
  bshd   ///< (batch, seq, heads, head_dim): the order model code often holds after the projections
};

/// How kv-splitting is chosen (DESIGN.md section 4).
enum class SplitKv {
  automatic,  ///< split items far longer than the mean q-tile and the engine's balanced share (the default)
  never       ///< one work item per q-tile, no combine pass
};

/// Options of trimix::attention and trimix::reference::attention.
struct AttentionOptions {
  /// Softmax scale; 1 / sqrt(head_dim) when unset.
  std::optional<double> scale;
  Layout layout = Layout::bhsd;
  SplitKv split_kv = SplitKv::automatic;
  /// Longest work item, in kv-tiles, when split_kv is automatic; 0 picks it from the mean.
  index_t max_tiles_per_item = 0;
};

namespace impl {

/// Element offsets of one rank-4 tensor along (batch, head, seq, dim), whatever the layout.
struct Strides4 {
  index_t batch = 0, head = 0, seq = 0, dim = 0;
  TRIMIX_FUNCTION index_t operator()(index_t b, index_t h, index_t s, index_t d) const {
    return b * batch + h * head + s * seq + d * dim;
  }
};

/// Shapes and strides of one validated attention problem.
struct Problem {
  index_t batch = 0, q_heads = 0, kv_heads = 0, seq_q = 0, seq_k = 0, head_dim = 0;
  float scale = 1.0f;
  Layout layout = Layout::bhsd;
  Strides4 q, k, v, o;
  index_t lse_batch = 0, lse_head = 0, lse_seq = 0;  // strides of the optional LSE view
  bool has_lse = false;
  TRIMIX_FUNCTION index_t group_size() const { return q_heads / kv_heads; }
};

template <class View>
std::string describe_view(const View& v) {
  std::string s = "'" + std::string(v.label()) + "'(";
  for (unsigned r = 0; r < View::rank; ++r) s += (r ? "," : "") + std::to_string(v.extent(r));
  return s + ")";
}

template <class View>
Strides4 strides_of(const View& v, Layout layout) {
  const index_t s0 = index_t(v.stride(0)), s1 = index_t(v.stride(1)), s2 = index_t(v.stride(2)),
                s3 = index_t(v.stride(3));
  return layout == Layout::bhsd ? Strides4{s0, s1, s2, s3} : Strides4{s0, s2, s1, s3};
}

/// Elements from a view's first to its last one, inclusive (0 when empty). Not span(): for a
/// strided subview that starting inside an array Kokkos counts from the start as if at the array's
/// beginning, and a fresh allocation right after the array would look aliased.
template <class V>
std::size_t reached_elements(const V& v) {
  if (v.size() == 0) return 0;
  std::size_t last = 0;
  for (int r = 0; r < int(V::rank); ++r) last += (std::size_t(v.extent(r)) - 1) * std::size_t(v.stride(r));
  return last + 1;
}

template <class A, class B>
bool views_overlap(const A& a, const B& b) {
  const std::size_t a_elements = reached_elements(a), b_elements = reached_elements(b);
  if (a_elements == 0 || b_elements == 0) return false;
  const char* a0 = reinterpret_cast<const char*>(a.data());
  const char* a1 = a0 + a_elements * sizeof(typename A::value_type);
  const char* b0 = reinterpret_cast<const char*>(b.data());
  const char* b1 = b0 + b_elements * sizeof(typename B::value_type);
  return a0 < b1 && b0 < a1;
}

/// Compile-time checks common to every entry point: ranks, element types, writability.
template <class Q, class K, class V, class O>
constexpr bool check_view_types() {
  static_assert(Kokkos::is_view<Q>::value && Kokkos::is_view<K>::value &&
                    Kokkos::is_view<V>::value && Kokkos::is_view<O>::value,
                "trimix::attention: q, k, v and o must be Kokkos::View");
  static_assert(Q::rank == 4 && K::rank == 4 && V::rank == 4 && O::rank == 4,
                "trimix::attention: q, k, v and o must be rank-4 views (batch, heads, seq, head_dim) "
                "or (batch, seq, heads, head_dim)");
  static_assert(is_element_v<typename Q::non_const_value_type> &&
                    is_element_v<typename K::non_const_value_type> &&
                    is_element_v<typename V::non_const_value_type> &&
                    is_element_v<typename O::non_const_value_type>,
                "trimix::attention: element types need a trimix::element_traits specialisation "
                "(float, double, trimix::bf16, trimix::fp16, Kokkos half_t / bhalf_t)");
  static_assert(!std::is_const_v<typename O::value_type>, "trimix::attention: o must be writable");
  return true;
}

/// Validates shapes, sizes and aliasing, and describes the problem. Throws
/// std::invalid_argument naming the offending argument; touches no data.
template <class Q, class K, class V, class O, class Lse>
Problem describe_problem(const char* api, const Q& q, const K& k, const V& v, const O& o,
                         const Lse* lse, const AttentionOptions& options) {
  const bool bhsd = options.layout == Layout::bhsd;
  const char* order = bhsd ? "(batch, heads, seq, head_dim)" : "(batch, seq, heads, head_dim)";
  const int h_axis = bhsd ? 1 : 2, s_axis = bhsd ? 2 : 1;
  Problem p;
  p.layout = options.layout;
  p.batch = index_t(q.extent(0));
  p.q_heads = index_t(q.extent(h_axis));
  p.seq_q = index_t(q.extent(s_axis));
  p.head_dim = index_t(q.extent(3));
  p.kv_heads = index_t(k.extent(h_axis));
  p.seq_k = index_t(k.extent(s_axis));
  TRIMIX_REQUIRE(api, q.data() != nullptr || q.span() == 0, "q ", describe_view(q), " is not allocated");
  TRIMIX_REQUIRE(api, index_t(k.extent(0)) == p.batch && index_t(k.extent(3)) == p.head_dim,
                 "k ", describe_view(k), " does not match q ", describe_view(q), " in batch or head_dim ",
                 order);
  TRIMIX_REQUIRE(api,
                 v.extent(0) == k.extent(0) && v.extent(1) == k.extent(1) &&
                     v.extent(2) == k.extent(2) && v.extent(3) == k.extent(3),
                 "v ", describe_view(v), " must have the shape of k ", describe_view(k));
  TRIMIX_REQUIRE(api,
                 o.extent(0) == q.extent(0) && o.extent(1) == q.extent(1) &&
                     o.extent(2) == q.extent(2) && o.extent(3) == q.extent(3),
                 "o ", describe_view(o), " must have the shape of q ", describe_view(q));
  TRIMIX_REQUIRE(api, p.kv_heads > 0 || p.q_heads == 0, "k ", describe_view(k), " has no heads");
  TRIMIX_REQUIRE(api, p.kv_heads == 0 || p.q_heads % p.kv_heads == 0, "q heads (", p.q_heads,
                 ") must be a multiple of k/v heads (", p.kv_heads, "): q ", describe_view(q),
                 ", k ", describe_view(k));
  TRIMIX_REQUIRE(api, p.seq_q <= p.seq_k, "q ", describe_view(q), " has more positions (", p.seq_q,
                 ") than k ", describe_view(k), " (", p.seq_k,
                 "); queries are the last seq_q of seq_k positions");
  TRIMIX_REQUIRE(api, p.head_dim > 0, "head_dim of q ", describe_view(q), " must be positive");
  const double scale = options.scale ? *options.scale : 1.0 / std::sqrt(double(p.head_dim));
  TRIMIX_REQUIRE(api, std::isfinite(scale), "options.scale must be finite, got ", scale);
  p.scale = float(scale);
  TRIMIX_REQUIRE(api, !views_overlap(o, q), "o ", describe_view(o), " aliases q ", describe_view(q));
  TRIMIX_REQUIRE(api, !views_overlap(o, k), "o ", describe_view(o), " aliases k ", describe_view(k));
  TRIMIX_REQUIRE(api, !views_overlap(o, v), "o ", describe_view(o), " aliases v ", describe_view(v));
  p.q = strides_of(q, p.layout);
  p.k = strides_of(k, p.layout);
  p.v = strides_of(v, p.layout);
  p.o = strides_of(o, p.layout);
  if constexpr (Kokkos::is_view<Lse>::value) {
    if (!lse) return p;
    TRIMIX_REQUIRE(api,
                   index_t(lse->extent(0)) == p.batch && index_t(lse->extent(1)) == p.q_heads &&
                       index_t(lse->extent(2)) == p.seq_q,
                   "lse ", describe_view(*lse), " must be (batch, q_heads, seq_q) = (", p.batch, ",",
                   p.q_heads, ",", p.seq_q, ")");
    TRIMIX_REQUIRE(api, !views_overlap(*lse, q) && !views_overlap(*lse, k) &&
                            !views_overlap(*lse, v) && !views_overlap(*lse, o),
                   "lse ", describe_view(*lse), " aliases q, k, v or o");
    p.has_lse = true;
    p.lse_batch = index_t(lse->stride(0));
    p.lse_head = index_t(lse->stride(1));
    p.lse_seq = index_t(lse->stride(2));
  }
  return p;
}

}  // namespace impl
}  // namespace trimix
