#pragma once
/// \file reference.hpp
/// Exact, naive attention for any mask policy: every visible pair, double accumulation, serial.
/// The yardstick of the tests and a fallback for users; O(seq_q * seq_k * head_dim) per head.

#include <trimix/element.hpp>
#include <trimix/mask.hpp>
#include <trimix/problem.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace trimix::reference {

namespace impl_ref {
struct NoLse {
  static constexpr unsigned rank = 3;
};
}  // namespace impl_ref

/// O[b,h,i,:] = softmax_j(scale * <Q[b,h,i,:], K[b,g(h),j,:]> | visible(p_i, j)) V[b,g(h),j,:]
/// with p_i = seq_k - seq_q + i and g(h) = h / (q_heads / kv_heads).
///
/// \param q   (batch, q_heads, seq_q, head_dim), or (batch, seq_q, q_heads, head_dim) for Layout::bshd
/// \param k   (batch, kv_heads, seq_k, head_dim), likewise
/// \param v   like k
/// \param o   like q; written
/// \param lse (batch, q_heads, seq_q), natural-log sum of exp of the scaled scores; written.
///            A row that sees no key gets o = 0 and lse = -inf.
/// All views must be host accessible. Throws std::invalid_argument on bad shapes before writing.
template <class Q, class K, class V, class O, class Lse, class Mask>
void attention(const Q& q, const K& k, const V& v, const O& o, const Lse& lse, const Mask& mask,
               const AttentionOptions& options = {}) {
  static_assert(trimix::impl::check_view_types<Q, K, V, O>());
  static_assert(check_mask_policy<Mask>());
  static_assert(Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename Q::memory_space>::accessible &&
                    Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename K::memory_space>::accessible &&
                    Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename V::memory_space>::accessible &&
                    Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename O::memory_space>::accessible,
                "trimix::reference::attention: views must be host accessible");
  constexpr bool with_lse = !std::is_same_v<Lse, impl_ref::NoLse>;
  static_assert(Lse::rank == 3, "trimix::reference::attention: lse must be rank 3 (batch, q_heads, seq_q)");
  const auto p = trimix::impl::describe_problem("reference::attention", q, k, v, o,
                                                with_lse ? &lse : static_cast<const Lse*>(nullptr), options);
  using TQ = element_traits<typename Q::non_const_value_type>;
  using TK = element_traits<typename K::non_const_value_type>;
  using TV = element_traits<typename V::non_const_value_type>;
  using TO = element_traits<typename O::non_const_value_type>;
  const double scale = options.scale ? *options.scale : 1.0 / std::sqrt(double(p.head_dim));
  const index_t group = p.kv_heads ? p.group_size() : 1;
  check_policy_fits(mask, "reference::attention", TileGeometry{p.seq_q, p.seq_k, 1, 1}, p.batch, p.q_heads);
  const double minus_inf = -std::numeric_limits<double>::infinity();
  auto elem = [&](const auto& view, index_t b, index_t h, index_t s, index_t d) {
    return p.layout == Layout::bhsd ? view(b, h, s, d) : view(b, s, h, d);
  };
  std::vector<double> score(std::size_t(p.seq_k)), acc(std::size_t(p.head_dim));
  for (index_t b = 0; b < p.batch; ++b) {
    for (index_t h = 0; h < p.q_heads; ++h) {
      const index_t g = h / group;
      const auto head_mask = bind_head(mask, b, h, p.q_heads);
      for (index_t i = 0; i < p.seq_q; ++i) {
        const index_t pos = p.seq_k - p.seq_q + i;
        double row_max = minus_inf;
        for (index_t j = 0; j < p.seq_k; ++j) {
          double s = minus_inf;
          if (trimix::visible(head_mask, pos, j, p.seq_k)) {
            s = 0;
            for (index_t d = 0; d < p.head_dim; ++d)
              s += TQ::to_double(elem(q, b, h, i, d)) * TK::to_double(elem(k, b, g, j, d));
            s *= scale;
          }
          score[std::size_t(j)] = s;
          row_max = std::max(row_max, s);
        }
        for (auto& a : acc) a = 0;
        double sum = 0;
        if (row_max != minus_inf) {
          for (index_t j = 0; j < p.seq_k; ++j) {
            if (score[std::size_t(j)] == minus_inf) continue;
            const double w = std::exp(score[std::size_t(j)] - row_max);
            sum += w;
            for (index_t d = 0; d < p.head_dim; ++d)
              acc[std::size_t(d)] += w * TV::to_double(elem(v, b, g, j, d));
          }
        }
        for (index_t d = 0; d < p.head_dim; ++d) {
          using OT = typename O::non_const_value_type;
          const OT value = TO::from_double(!(sum <= 0) ? acc[std::size_t(d)] / sum : 0.0);
          if (p.layout == Layout::bhsd) o(b, h, i, d) = value;
          else o(b, i, h, d) = value;
        }
        if constexpr (with_lse) {
          lse(b, h, i) = !(sum <= 0) ? row_max + std::log(sum) : minus_inf;
        }
      }
    }
  }
}

/// As above, without the LSE output.
template <class Q, class K, class V, class O, class Mask,
          class = std::enable_if_t<!Kokkos::is_view<Mask>::value>>
void attention(const Q& q, const K& k, const V& v, const O& o, const Mask& mask,
               const AttentionOptions& options = {}) {
  reference::attention(q, k, v, o, impl_ref::NoLse{}, mask, options);
}

}  // namespace trimix::reference
