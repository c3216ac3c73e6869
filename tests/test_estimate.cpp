// The dynamic-sparsity estimators: on inputs with planted attention structure they keep the planted
// blocks and drop most others; on random inputs they agree with a host (double) reference of the
// same selection wherever the reference is not within rounding of its threshold; maps are well
// formed; layouts agree; bad arguments throw before anything is launched.
#include "test_support.hpp"

#include <trimix/estimate.hpp>

#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <tuple>
#include <vector>

using namespace trimix_test;
using trimix::Layout;
using trimix::PooledBlockOptions;
using trimix::VerticalSlashOptions;

namespace {

using HostView = Kokkos::View<float****, Kokkos::HostSpace>;

struct Shape {
  index_t batch, q_heads, kv_heads, seq_q, seq_k, head_dim;
};

/// A map copied to the host, with the geometry of its block rows.
struct HostMap {
  trimix::BlockSparseMap<Kokkos::HostSpace> map;
  explicit HostMap(const trimix::BlockSparseMap<ExecSpace::memory_space>& m)
      : map(trimix::mirror<Kokkos::HostSpace>(m)) {}
  index_t first_position(index_t qb) const { return map.seq_k() - map.seq_q() + qb * map.block_q(); }
  index_t last_position(index_t qb) const {
    return map.seq_k() - map.seq_q() + std::min((qb + 1) * map.block_q(), map.seq_q()) - 1;
  }
  index_t visible_blocks(index_t qb) const { return last_position(qb) / map.block_k() + 1; }
  index_t count(index_t b, index_t h, index_t qb) const { return map.counts()(b, h, qb); }
  bool listed(index_t b, index_t h, index_t qb, index_t kb) const {
    for (index_t e = 0; e < count(b, h, qb); ++e)
      if ((map.entries()(b, h, qb, e) >> 1) == kb) return true;
    return false;
  }
};

/// Entries sorted and distinct, all Full, none above the diagonal, counts within a tight capacity.
void check_well_formed(const HostMap& m) {
  index_t longest = 0;
  bool ok = true;
  for (index_t b = 0; b < m.map.batch(); ++b)
    for (index_t h = 0; h < m.map.heads(); ++h)
      for (index_t qb = 0; qb < m.map.q_blocks(); ++qb) {
        const index_t n = m.count(b, h, qb);
        longest = std::max(longest, n);
        ok = ok && n >= 0 && n <= m.map.capacity();
        for (index_t e = 0; e < std::min(n, m.map.capacity()); ++e) {
          const std::int32_t entry = m.map.entries()(b, h, qb, e);
          const index_t kb = entry >> 1;
          ok = ok && (entry & 1) == 1 && kb >= 0 && kb < m.visible_blocks(qb);
          ok = ok && (e == 0 || (m.map.entries()(b, h, qb, e - 1) >> 1) < kb);
          if (!ok) {
            UNSCOPED_INFO("row (" << b << "," << h << "," << qb << ") entry " << e << " = " << entry);
            CHECK(ok);
            return;
          }
        }
      }
  CHECK(ok);
  CHECK(longest == m.map.capacity());
}

template <class T>
Kokkos::View<T****, Kokkos::HostSpace> rounded(const HostView& v) {
  Kokkos::View<T****, Kokkos::HostSpace> out(v.label(), v.extent(0), v.extent(1), v.extent(2), v.extent(3));
  for (std::size_t i = 0; i < v.span(); ++i) out.data()[i] = trimix::element_traits<T>::from_double(v.data()[i]);
  return out;
}

template <class T>
double value(const Kokkos::View<T****, Kokkos::HostSpace>& v, index_t a, index_t b, index_t c, index_t d) {
  return trimix::element_traits<T>::to_double(v(a, b, c, d));
}

/// (batch, heads, seq, dim) -> (batch, seq, heads, dim).
template <class T>
Kokkos::View<T****, Kokkos::HostSpace> to_bshd(const Kokkos::View<T****, Kokkos::HostSpace>& v) {
  Kokkos::View<T****, Kokkos::HostSpace> out(v.label(), v.extent(0), v.extent(2), v.extent(1), v.extent(3));
  for (std::size_t a = 0; a < v.extent(0); ++a)
    for (std::size_t h = 0; h < v.extent(1); ++h)
      for (std::size_t s = 0; s < v.extent(2); ++s)
        for (std::size_t d = 0; d < v.extent(3); ++d) out(a, s, h, d) = v(a, h, s, d);
  return out;
}

// ---- planted structure --------------------------------------------------------------------------

/// Q/K whose attention has a sink (keys 0..3), a local band (offset 0), vertical columns at
/// `columns` and slash diagonals at `offsets`, over unit noise. Columns and the sink share a
/// direction u every query has; diagonals come from rotary-like phases: q_p . k_j sums
/// cos(theta_f (p - j - o)) over frequencies f and planted offsets o, which peaks at p - j = o.
struct Planted {
  HostView q, k;
};

Planted planted_vertical_slash(const Shape& s, const std::vector<index_t>& columns, const std::vector<index_t>& offsets,
                               std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.2, 3.0);
  const index_t freqs = 32, u_dims = 8, u_begin = 2 * freqs;  // needs head_dim >= 72 + noise
  REQUIRE(s.head_dim >= u_begin + u_dims + 8);
  std::vector<double> theta(freqs);
  for (auto& t : theta) t = uniform(rng);
  const double a = 2.0, q_u = 2.0, sink_u = 6.0, column_u = 5.5;
  Planted in{HostView("q", s.batch, s.q_heads, s.seq_q, s.head_dim), HostView("k", s.batch, s.kv_heads, s.seq_k, s.head_dim)};
  for (index_t b = 0; b < s.batch; ++b) {
    for (index_t h = 0; h < s.q_heads; ++h)
      for (index_t i = 0; i < s.seq_q; ++i) {
        const double p = double(s.seq_k - s.seq_q + i);
        for (index_t f = 0; f < freqs; ++f) {
          in.q(b, h, i, 2 * f) = float(a * std::cos(theta[f] * p));
          in.q(b, h, i, 2 * f + 1) = float(a * std::sin(theta[f] * p));
        }
        for (index_t d = u_begin; d < u_begin + u_dims; ++d) in.q(b, h, i, d) = float(q_u);
        for (index_t d = u_begin + u_dims; d < s.head_dim; ++d) in.q(b, h, i, d) = float(normal(rng));
      }
    for (index_t h = 0; h < s.kv_heads; ++h)
      for (index_t j = 0; j < s.seq_k; ++j) {
        for (index_t f = 0; f < freqs; ++f) {
          double c = 0, sn = 0;
          for (index_t o : offsets) {
            c += std::cos(theta[f] * double(j + o));
            sn += std::sin(theta[f] * double(j + o));
          }
          in.k(b, h, j, 2 * f) = float(a * c);
          in.k(b, h, j, 2 * f + 1) = float(a * sn);
        }
        const bool column = std::find(columns.begin(), columns.end(), j) != columns.end();
        const double u = j < 4 ? sink_u : column ? column_u : 0.0;
        for (index_t d = u_begin; d < u_begin + u_dims; ++d) in.k(b, h, j, d) = float(u);
        for (index_t d = u_begin + u_dims; d < s.head_dim; ++d) in.k(b, h, j, d) = float(normal(rng));
      }
  }
  return in;
}

/// Q/K of unit noise plus a direction u that every query has and the keys of kv-block `hot` (and
/// keys 0..3, a sink) have, so that the pooled scores of block `hot` stand out.
Planted planted_hot_block(const Shape& s, index_t block_k, index_t hot, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  const index_t u_dims = 8;
  Planted in{HostView("q", s.batch, s.q_heads, s.seq_q, s.head_dim), HostView("k", s.batch, s.kv_heads, s.seq_k, s.head_dim)};
  for (index_t b = 0; b < s.batch; ++b) {
    for (index_t h = 0; h < s.q_heads; ++h)
      for (index_t i = 0; i < s.seq_q; ++i)
        for (index_t d = 0; d < s.head_dim; ++d) in.q(b, h, i, d) = float(normal(rng) + (d < u_dims ? 2.0 : 0.0));
    for (index_t h = 0; h < s.kv_heads; ++h)
      for (index_t j = 0; j < s.seq_k; ++j) {
        const double u = j / block_k == hot ? 5.0 : j < 4 ? 6.0 : 0.0;
        for (index_t d = 0; d < s.head_dim; ++d) in.k(b, h, j, d) = float(normal(rng) + (d < u_dims ? u : 0.0));
      }
  }
  return in;
}

// ---- host references ----------------------------------------------------------------------------

/// Which elements of a scored list a top-k (forced ones first) must keep and must drop: elements
/// within `margin` (relative) of the k-th score are undecided.
struct Decision {
  std::vector<char> keep, drop;
};

Decision decide_top(const std::vector<double>& score, index_t forced, index_t top, double margin) {
  const index_t n = index_t(score.size());
  Decision d{std::vector<char>(n, 0), std::vector<char>(n, 0)};
  forced = std::min(forced, n);
  for (index_t e = 0; e < forced; ++e) d.keep[e] = 1;
  if (top >= n) {
    std::fill(d.keep.begin(), d.keep.end(), 1);
    return d;
  }
  const index_t extra = top - forced;  // non-forced elements kept
  std::vector<double> rest(score.begin() + forced, score.end());
  std::sort(rest.begin(), rest.end(), std::greater<double>());
  const double cut = extra > 0 ? rest[extra - 1] : std::numeric_limits<double>::infinity();
  for (index_t e = forced; e < n; ++e) {
    d.keep[e] = extra > 0 && score[e] > cut * (1 + margin);
    d.drop[e] = extra <= 0 || score[e] < cut * (1 - margin);
  }
  return d;
}

/// Vertical and slash scores of one (batch, head) in double, as the estimator defines them.
template <class T>
void vertical_slash_scores(const Kokkos::View<T****, Kokkos::HostSpace>& q, const Kokkos::View<T****, Kokkos::HostSpace>& k,
                           index_t b, index_t h, index_t last_q, std::vector<double>& vertical,
                           std::vector<double>& slash) {
  const index_t seq_q = index_t(q.extent(2)), seq_k = index_t(k.extent(2)), dim = index_t(q.extent(3));
  const index_t kv_head = h / (index_t(q.extent(1)) / index_t(k.extent(1)));
  const double scale = 1.0 / std::sqrt(double(dim));
  vertical.assign(seq_k, 0.0);
  slash.assign(seq_k, 0.0);
  std::vector<double> s(seq_k);
  for (index_t i = seq_q - last_q; i < seq_q; ++i) {
    const index_t p = seq_k - seq_q + i;
    double m = -std::numeric_limits<double>::infinity();
    for (index_t j = 0; j <= p; ++j) {
      double dot = 0;
      for (index_t d = 0; d < dim; ++d) dot += value(q, b, h, i, d) * value(k, b, kv_head, j, d);
      s[j] = scale * dot;
      m = std::max(m, s[j]);
    }
    double l = 0;
    for (index_t j = 0; j <= p; ++j) l += std::exp(s[j] - m);
    for (index_t j = 0; j <= p; ++j) {
      const double prob = std::exp(s[j] - m) / l;
      vertical[j] += prob;
      slash[p - j] += prob;
    }
  }
}

/// Checks a vertical-slash map against the host reference: blocks the reference must list are
/// listed, blocks it must not list are not. Returns the fraction of (row, block) pairs decided.
template <class T>
double check_vertical_slash_reference(const Kokkos::View<T****, Kokkos::HostSpace>& q,
                                      const Kokkos::View<T****, Kokkos::HostSpace>& k, const HostMap& m,
                                      const VerticalSlashOptions& o) {
  const index_t seq_k = index_t(k.extent(2)), bk = o.block_k;
  index_t decided = 0, total = 0, wrong = 0;
  for (index_t b = 0; b < m.map.batch(); ++b)
    for (index_t h = 0; h < m.map.heads(); ++h) {
      std::vector<double> vertical, slash;
      vertical_slash_scores(q, k, b, h, o.last_q, vertical, slash);
      const Decision v = decide_top(vertical, o.sink, o.vertical_size, 1e-3);
      const Decision sl = decide_top(slash, o.local, o.slash_size, 1e-3);
      for (index_t qb = 0; qb < m.map.q_blocks(); ++qb) {
        const index_t p0 = m.first_position(qb), p1 = m.last_position(qb);
        for (index_t kb = 0; kb < m.visible_blocks(qb); ++kb) {
          bool must = false, never = true;
          for (index_t j = kb * bk; j <= std::min(kb * bk + bk - 1, p1); ++j) must |= v.keep[j], never &= v.drop[j];
          for (index_t off = std::max<index_t>(0, p0 - (kb * bk + bk - 1)); off <= std::min(p1 - kb * bk, seq_k - 1); ++off)
            must |= sl.keep[off], never &= sl.drop[off];
          const bool listed = m.listed(b, h, qb, kb);
          ++total;
          if (must || never) ++decided;
          if ((must && !listed) || (never && listed)) {
            if (wrong++ < 5)
              UNSCOPED_INFO("head (" << b << "," << h << ") q-block " << qb << " kv-block " << kb
                                     << (must ? " must be listed" : " must not be listed"));
          }
        }
      }
    }
  CHECK(wrong == 0);
  return total ? double(decided) / double(total) : 1.0;
}

/// Checks a pooled map against the host reference mass cut; returns the fraction decided.
template <class T>
double check_pooled_reference(const Kokkos::View<T****, Kokkos::HostSpace>& q, const Kokkos::View<T****, Kokkos::HostSpace>& k,
                              const HostMap& m, const PooledBlockOptions& o) {
  const index_t seq_q = index_t(q.extent(2)), seq_k = index_t(k.extent(2)), dim = index_t(q.extent(3));
  const index_t group = index_t(q.extent(1)) / index_t(k.extent(1));
  const double scale = 1.0 / std::sqrt(double(dim));
  const double margin = 1e-4;
  index_t decided = 0, total = 0, wrong = 0;
  auto pooled = [&](const auto& v, index_t b, index_t h, index_t block, index_t size, index_t length) {
    std::vector<double> mean(dim, 0.0);
    const index_t end = std::min((block + 1) * size, length);
    for (index_t t = block * size; t < end; ++t)
      for (index_t d = 0; d < dim; ++d) mean[d] += value(v, b, h, t, d);
    for (auto& x : mean) x /= double(end - block * size);
    return mean;
  };
  for (index_t b = 0; b < m.map.batch(); ++b)
    for (index_t h = 0; h < m.map.heads(); ++h)
      for (index_t qb = 0; qb < m.map.q_blocks(); ++qb) {
        const index_t n = m.visible_blocks(qb), diagonal = m.first_position(qb) / o.block_k;
        const auto qbar = pooled(q, b, h, qb, o.block_q, seq_q);
        std::vector<double> s(n);
        for (index_t kb = 0; kb < n; ++kb) {
          const auto kbar = pooled(k, b, h / group, kb, o.block_k, seq_k);
          s[kb] = scale * std::inner_product(qbar.begin(), qbar.end(), kbar.begin(), 0.0);
        }
        const double mx = *std::max_element(s.begin(), s.end());
        double l = 0;
        for (double x : s) l += std::exp(x - mx);
        std::vector<double> prob(n);
        for (index_t kb = 0; kb < n; ++kb) prob[kb] = std::exp(s[kb] - mx) / l;
        auto forced = [&](index_t kb) { return kb == 0 || kb >= diagonal; };
        std::vector<index_t> order;
        double before = 0;
        for (index_t kb = 0; kb < n; ++kb)
          if (forced(kb)) before += prob[kb];
          else order.push_back(kb);
        std::sort(order.begin(), order.end(), [&](index_t x, index_t y) { return prob[x] > prob[y]; });
        std::vector<int> expect(n, 1);  // 1 keep, 0 drop, -1 undecided
        for (index_t kb : order) {
          expect[kb] = o.gamma >= 1.0 || before < o.gamma - margin ? 1 : before > o.gamma + margin ? 0 : -1;
          before += prob[kb];
        }
        for (index_t kb = 0; kb < n; ++kb) {
          ++total;
          if (expect[kb] < 0) continue;
          ++decided;
          if ((expect[kb] == 1) != m.listed(b, h, qb, kb) && wrong++ < 5)
            UNSCOPED_INFO("head (" << b << "," << h << ") q-block " << qb << " kv-block " << kb
                                   << (expect[kb] == 1 ? " must be listed" : " must not be listed"));
        }
      }
  CHECK(wrong == 0);
  return total ? double(decided) / double(total) : 1.0;
}

template <class T>
auto estimate_vs(const Kokkos::View<T****, Kokkos::HostSpace>& q, const Kokkos::View<T****, Kokkos::HostSpace>& k,
                 const VerticalSlashOptions& options) {
  const auto map = trimix::estimate_vertical_slash(ExecSpace(), to_exec(q), to_exec(k), options);
  ExecSpace().fence();
  HostMap host(map);
  check_well_formed(host);
  return host;
}

template <class T>
auto estimate_pooled(const Kokkos::View<T****, Kokkos::HostSpace>& q, const Kokkos::View<T****, Kokkos::HostSpace>& k,
                     const PooledBlockOptions& options) {
  const auto map = trimix::estimate_pooled_blocks(ExecSpace(), to_exec(q), to_exec(k), options);
  ExecSpace().fence();
  HostMap host(map);
  check_well_formed(host);
  return host;
}

using ElementTypes = std::tuple<float, trimix::bf16, Kokkos::Experimental::half_t>;

}  // namespace

TEST_CASE("vertical-slash keeps the planted sink, local band, columns and diagonals", "[estimate]") {
  const Shape s{1, 4, 2, 2048, 2048, 128};
  const std::vector<index_t> columns = {200, 650, 1500}, offsets = {0, 400, 1100};
  const Planted in = planted_vertical_slash(s, columns, offsets, 7);
  VerticalSlashOptions options;
  // Room for the planted columns and diagonals and a few more. The columns of the last 64 keys
  // hold the local band's mass (each is the diagonal key of one of the last rows): they rank
  // above planted column 200 in some heads, hence 80 more columns.
  options.vertical_size = options.sink + 80;
  options.slash_size = options.local + 8;
  const HostMap m = estimate_vs(in.q, in.k, options);
  const index_t bk = options.block_k;
  index_t kept = 0, causal = 0;
  for (index_t h = 0; h < s.q_heads; ++h)
    for (index_t qb = 0; qb < m.map.q_blocks(); ++qb) {
      const index_t p0 = m.first_position(qb), p1 = m.last_position(qb);
      INFO("head " << h << ", q-block " << qb);
      CHECK(m.listed(0, h, qb, 0));                                                  // sink
      for (index_t kb = std::max<index_t>(0, p0 - options.local + 1) / bk; kb <= p1 / bk; ++kb)  // local band
        CHECK(m.listed(0, h, qb, kb));
      for (index_t j : columns)
        if (j <= p1) CHECK(m.listed(0, h, qb, j / bk));
      for (index_t o : offsets)
        for (index_t kb = std::max<index_t>(0, p0 - o) / bk; p1 >= o && kb <= (p1 - o) / bk; ++kb)
          CHECK(m.listed(0, h, qb, kb));
      kept += m.count(0, h, qb);
      causal += m.visible_blocks(qb);
    }
  // Selective: the planted structure, the forced blocks and a few more, not the whole triangle.
  const double density = double(kept) / double(causal);
  INFO("density " << density);
  CHECK(density < 0.5);
  CHECK(std::abs(trimix::block_sparse_density(m.map) - density) < 1e-12);
}

TEST_CASE("pooled blocks keep the planted hot block, and gamma 1 keeps every causal block", "[estimate]") {
  const Shape s{2, 4, 2, 1000, 1500, 64};  // Sq < Sk, lengths not block multiples
  const index_t hot = 7;
  const Planted in = planted_hot_block(s, 64, hot, 11);
  for (double gamma : {0.9, 0.95}) {
    PooledBlockOptions options;
    options.gamma = gamma;
    const HostMap m = estimate_pooled(in.q, in.k, options);
    for (index_t b = 0; b < s.batch; ++b)
      for (index_t h = 0; h < s.q_heads; ++h)
        for (index_t qb = 0; qb < m.map.q_blocks(); ++qb) {
          INFO("gamma " << gamma << ", head (" << b << "," << h << "), q-block " << qb);
          const index_t diagonal = m.first_position(qb) / 64;
          CHECK(m.listed(b, h, qb, 0));
          for (index_t kb = diagonal; kb < m.visible_blocks(qb); ++kb) CHECK(m.listed(b, h, qb, kb));
          if (hot < m.visible_blocks(qb)) CHECK(m.listed(b, h, qb, hot));
          // The hot block holds nearly all the mass: forced blocks + hot (+ at most one more).
          CHECK(m.count(b, h, qb) <= 1 + (m.visible_blocks(qb) - diagonal) + 2);
        }
    CHECK(trimix::block_sparse_density(m.map) < 0.35);
  }
  PooledBlockOptions all;
  all.gamma = 1.0;
  const HostMap m = estimate_pooled(in.q, in.k, all);
  for (index_t b = 0; b < s.batch; ++b)
    for (index_t h = 0; h < s.q_heads; ++h)
      for (index_t qb = 0; qb < m.map.q_blocks(); ++qb) CHECK(m.count(b, h, qb) == m.visible_blocks(qb));
  CHECK(trimix::block_sparse_density(m.map) == 1.0);
}

TEMPLATE_LIST_TEST_CASE("vertical-slash agrees with a host reference selection", "[estimate]", ElementTypes) {
  std::mt19937_64 rng(2025);
  // Sq < Sk, GQA 2 / 1 / 8, lengths that are not block multiples, a head_dim of 80.
  const Shape shapes[] = {{1, 4, 2, 700, 1000, 64}, {2, 2, 2, 513, 513, 32}, {1, 8, 1, 300, 300, 16}, {1, 2, 1, 90, 130, 80}};
  for (const Shape& s : shapes) {
    const auto q = random_view<TestType>("q", rng, 1.5, s.batch, s.q_heads, s.seq_q, s.head_dim);
    const auto k = random_view<TestType>("k", rng, 1.5, s.batch, s.kv_heads, s.seq_k, s.head_dim);
    VerticalSlashOptions options;
    options.last_q = std::min<index_t>(64, s.seq_q - 7);
    options.vertical_size = 40;
    options.slash_size = 30;
    options.sink = 16;
    options.local = 20;
    options.block_q = 32;
    options.block_k = 64;
    INFO("shape (" << s.batch << "," << s.q_heads << "," << s.kv_heads << "," << s.seq_q << "," << s.seq_k << ","
                   << s.head_dim << ")");
    CHECK(check_vertical_slash_reference(q, k, estimate_vs(q, k, options), options) > 0.95);
    // Columns only, with no local diagonals: the kv-block of a row's last position lists only
    // kept columns at or before it.
    options.slash_size = options.local = 0;
    options.block_q = 16;
    CHECK(check_vertical_slash_reference(q, k, estimate_vs(q, k, options), options) > 0.95);
    // Defaults: 1000 columns and 6096 diagonals cover these lengths, so every causal block.
    const HostMap all = estimate_vs(q, k, VerticalSlashOptions{});
    CHECK(trimix::block_sparse_density(all.map) == 1.0);
  }
}

TEST_CASE("vertical-slash top-k keeps exactly vertical_size columns and slash_size diagonals", "[estimate]") {
  // Blocks of one key and one query: the last row's entries are the kept columns, or the keys
  // p - o of the kept diagonals, one for one.
  std::mt19937_64 rng(9);
  const Shape s{1, 2, 1, 200, 300, 32};
  const auto q = random_view<float>("q", rng, 1.5, s.batch, s.q_heads, s.seq_q, s.head_dim);
  const auto k = random_view<float>("k", rng, 1.5, s.batch, s.kv_heads, s.seq_k, s.head_dim);
  VerticalSlashOptions options;
  options.last_q = 32;
  options.block_q = options.block_k = 1;
  for (const auto& [sink, vertical_size, local, slash_size] :
       {std::tuple<index_t, index_t, index_t, index_t>{0, 25, 0, 0}, {5, 12, 0, 0}, {0, 0, 0, 17}, {0, 0, 6, 9}}) {
    options.sink = sink;
    options.vertical_size = vertical_size;
    options.local = local;
    options.slash_size = slash_size;
    const HostMap m = estimate_vs(q, k, options);
    const index_t last = s.seq_q - 1, p = s.seq_k - 1;
    for (index_t h = 0; h < s.q_heads; ++h) {
      std::vector<double> vertical, slash;
      vertical_slash_scores(q, k, 0, h, options.last_q, vertical, slash);
      const bool columns = vertical_size > 0;
      const auto& score = columns ? vertical : slash;
      const index_t forced = columns ? sink : local, top = columns ? vertical_size : slash_size;
      std::vector<index_t> order(score.size() - forced);
      std::iota(order.begin(), order.end(), forced);
      std::sort(order.begin(), order.end(), [&](index_t x, index_t y) { return score[x] > score[y]; });
      order.resize(top - forced);
      for (index_t e = 0; e < forced; ++e) order.push_back(e);
      INFO("sink " << sink << ", vertical " << vertical_size << ", local " << local << ", slash " << slash_size
                   << ", head " << h);
      CHECK(m.count(0, h, last) == top);
      for (index_t x : order) CHECK(m.listed(0, h, last, columns ? x : p - x));
    }
  }
}

TEST_CASE("vertical-slash: a query sees its own key (diagonal 0)", "[estimate]") {
  // q = k with large norms: every row's mass sits on its own key, so the one kept diagonal is
  // offset 0 and each block row lists exactly the kv-blocks of its own positions.
  std::mt19937_64 rng(3);
  const Shape s{1, 2, 2, 500, 500, 32};
  const auto q = random_view<float>("q", rng, 3.0, s.batch, s.q_heads, s.seq_q, s.head_dim);
  VerticalSlashOptions options;
  options.sink = options.local = options.vertical_size = 0;
  options.slash_size = 1;
  options.block_q = 48;
  options.block_k = 32;
  const HostMap m = estimate_vs(q, q, options);
  for (index_t h = 0; h < s.q_heads; ++h)
    for (index_t qb = 0; qb < m.map.q_blocks(); ++qb) {
      const index_t first = m.first_position(qb) / options.block_k, last = m.last_position(qb) / options.block_k;
      INFO("head " << h << ", q-block " << qb);
      CHECK(m.count(0, h, qb) == last - first + 1);
      for (index_t kb = first; kb <= last; ++kb) CHECK(m.listed(0, h, qb, kb));
    }
}

TEMPLATE_LIST_TEST_CASE("pooled blocks agree with a host reference mass cut", "[estimate]", ElementTypes) {
  std::mt19937_64 rng(77);
  const Shape shapes[] = {{1, 4, 2, 700, 1000, 64}, {2, 2, 1, 1100, 1100, 32}, {1, 2, 2, 300, 333, 17}};
  for (const Shape& s : shapes)
    for (double gamma : {0.0, 0.5, 0.9, 0.95, 1.0}) {
      // Scale 8: pooled vectors keep enough spread for the softmax not to be flat.
      const auto q = random_view<TestType>("q", rng, 8.0, s.batch, s.q_heads, s.seq_q, s.head_dim);
      const auto k = random_view<TestType>("k", rng, 8.0, s.batch, s.kv_heads, s.seq_k, s.head_dim);
      PooledBlockOptions options;
      options.gamma = gamma;
      options.block_q = 64;
      options.block_k = 32;
      INFO("gamma " << gamma << ", seq_q " << s.seq_q << ", seq_k " << s.seq_k);
      const double decided = check_pooled_reference(q, k, estimate_pooled(q, k, options), options);
      CHECK(decided > 0.95);
    }
}

TEST_CASE("estimators read (batch, seq, heads, dim) views like (batch, heads, seq, dim)", "[estimate]") {
  std::mt19937_64 rng(5);
  const Shape s{2, 4, 2, 300, 400, 32};
  const auto q = random_view<float>("q", rng, 2.0, s.batch, s.q_heads, s.seq_q, s.head_dim);
  const auto k = random_view<float>("k", rng, 2.0, s.batch, s.kv_heads, s.seq_k, s.head_dim);
  auto same = [](const HostMap& a, const HostMap& b) {
    if (a.map.capacity() != b.map.capacity()) return false;
    for (index_t bb = 0; bb < a.map.batch(); ++bb)
      for (index_t h = 0; h < a.map.heads(); ++h)
        for (index_t qb = 0; qb < a.map.q_blocks(); ++qb) {
          if (a.count(bb, h, qb) != b.count(bb, h, qb)) return false;
          for (index_t e = 0; e < a.count(bb, h, qb); ++e)
            if (a.map.entries()(bb, h, qb, e) != b.map.entries()(bb, h, qb, e)) return false;
        }
    return true;
  };
  VerticalSlashOptions vs;
  vs.vertical_size = 30;
  vs.slash_size = 30;
  vs.sink = 4;
  vs.local = 8;
  vs.block_q = vs.block_k = 32;
  PooledBlockOptions pooled;
  pooled.block_q = pooled.block_k = 32;
  const HostMap vs_bhsd = estimate_vs(q, k, vs), pooled_bhsd = estimate_pooled(q, k, pooled);
  vs.layout = pooled.layout = Layout::bshd;
  CHECK(same(vs_bhsd, estimate_vs(to_bshd(q), to_bshd(k), vs)));
  CHECK(same(pooled_bhsd, estimate_pooled(to_bshd(q), to_bshd(k), pooled)));
}

namespace {

int launches = 0;
void count_launch(const char*, std::uint32_t, std::uint64_t*) { ++launches; }

}  // namespace

TEST_CASE("estimators reject bad arguments before launching anything", "[estimate]") {
  using Catch::Matchers::ContainsSubstring;
  using V4 = Kokkos::View<float****, Kokkos::LayoutRight, ExecSpace::memory_space>;
  const ExecSpace exec;
  const V4 q("q", 1, 4, 100, 32), k("k", 1, 2, 120, 32);
  // Views for the shape errors, made before counting (their initialisation is a kernel).
  const V4 k_3_heads("k", 1, 3, 120, 32), k_dim_16("k", 1, 2, 120, 16), k_short("k", 1, 2, 99, 32),
      q_no_heads("q", 1, 0, 100, 32), q_dim_17("q", 1, 4, 100, 17), k_dim_17("k", 1, 2, 120, 17);
  // Kokkos Tools callbacks count the kernels launched (this replaces a loaded tool's callbacks
  // for the rest of the run; the tests load none).
  namespace tools = Kokkos::Tools::Experimental;
  tools::set_begin_parallel_for_callback(count_launch);
  tools::set_begin_parallel_reduce_callback(count_launch);
  tools::set_begin_parallel_scan_callback(count_launch);
  launches = 0;
  auto vs = [&](auto edit) {
    VerticalSlashOptions o;
    edit(o);
    return trimix::estimate_vertical_slash(exec, q, k, o);
  };
  auto pooled = [&](auto edit) {
    PooledBlockOptions o;
    edit(o);
    return trimix::estimate_pooled_blocks(exec, q, k, o);
  };
  CHECK_THROWS_WITH(vs([](auto& o) { o.last_q = 101; }), ContainsSubstring("options.last_q"));
  CHECK_THROWS_WITH(vs([](auto& o) { o.last_q = 0; }), ContainsSubstring("options.last_q"));
  CHECK_THROWS_WITH(vs([](auto& o) { o.vertical_size = -1; }), ContainsSubstring("options.vertical_size"));
  CHECK_THROWS_WITH(vs([](auto& o) { o.slash_size = -1; }), ContainsSubstring("options.slash_size"));
  CHECK_THROWS_WITH(vs([](auto& o) { o.sink = -1; }), ContainsSubstring("options.sink"));
  CHECK_THROWS_WITH(vs([](auto& o) { o.local = -2; }), ContainsSubstring("options.local"));
  CHECK_THROWS_WITH(vs([](auto& o) { o.block_k = 0; }), ContainsSubstring("options.block_q and options.block_k"));
  CHECK_THROWS_WITH(vs([](auto& o) { o.scale = std::nan(""); }), ContainsSubstring("options.scale"));
  CHECK_THROWS_WITH(pooled([](auto& o) { o.gamma = 1.5; }), ContainsSubstring("options.gamma"));
  CHECK_THROWS_WITH(pooled([](auto& o) { o.gamma = -0.1; }), ContainsSubstring("options.gamma"));
  CHECK_THROWS_WITH(pooled([](auto& o) { o.gamma = std::nan(""); }), ContainsSubstring("options.gamma"));
  CHECK_THROWS_WITH(pooled([](auto& o) { o.block_q = -64; }), ContainsSubstring("options.block_q"));
  CHECK_THROWS_WITH(trimix::estimate_pooled_blocks(exec, q, k_3_heads),
                    ContainsSubstring("q heads (4) must be a multiple of k heads (3)"));
  CHECK_THROWS_WITH(trimix::estimate_pooled_blocks(exec, q, k_dim_16),
                    ContainsSubstring("k 'k'(1,2,120,16) does not match q 'q'(1,4,100,32)"));
  CHECK_THROWS_WITH(trimix::estimate_vertical_slash(exec, q, k_short),
                    ContainsSubstring("more positions (100) than k"));
  CHECK_THROWS_WITH(trimix::estimate_vertical_slash(exec, q_no_heads, k), ContainsSubstring("must have heads"));
  CHECK_THROWS_WITH(trimix::estimate_vertical_slash(exec, q_dim_17, k_dim_17), ContainsSubstring("head_dim 17 is not supported"));
  CHECK(launches == 0);
  // Control: the counter sees the kernels of a valid call.
  const auto map = trimix::estimate_pooled_blocks(exec, q, k);
  exec.fence();
  CHECK(launches > 0);
  tools::set_begin_parallel_for_callback(nullptr);
  tools::set_begin_parallel_reduce_callback(nullptr);
  tools::set_begin_parallel_scan_callback(nullptr);
}
