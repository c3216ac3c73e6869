// The exact reference against an independent direct formula on small inputs.
#include "test_support.hpp"

#include <trimix/reference.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <vector>

using namespace trimix_test;

namespace {

/// softmax written the textbook way (no running max, long double), with the GQA head map and the
/// bottom-right alignment spelled out independently of the library.
template <class Mask>
void direct_attention(const Kokkos::View<double****, Kokkos::HostSpace>& q,
                      const Kokkos::View<double****, Kokkos::HostSpace>& k,
                      const Kokkos::View<double****, Kokkos::HostSpace>& v, const Mask& visible,
                      double scale, std::vector<long double>& o, std::vector<long double>& lse) {
  const std::size_t B = q.extent(0), Hq = q.extent(1), Sq = q.extent(2), D = q.extent(3);
  const std::size_t Hkv = k.extent(1), Sk = k.extent(2);
  o.assign(B * Hq * Sq * D, 0.0L);
  lse.assign(B * Hq * Sq, 0.0L);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t h = 0; h < Hq; ++h)
      for (std::size_t i = 0; i < Sq; ++i) {
        const std::size_t kv_head = h * Hkv / Hq;  // heads h .. of a group share one kv head
        const long pos = long(Sk) - long(Sq) + long(i);
        long double denom = 0;
        std::vector<long double> num(D, 0.0L);
        for (std::size_t j = 0; j < Sk; ++j) {
          if (!visible(pos, long(j))) continue;
          long double s = 0;
          for (std::size_t d = 0; d < D; ++d) s += (long double)q(b, h, i, d) * k(b, kv_head, j, d);
          const long double w = std::exp((long double)scale * s);
          denom += w;
          for (std::size_t d = 0; d < D; ++d) num[d] += w * v(b, kv_head, j, d);
        }
        for (std::size_t d = 0; d < D; ++d)
          o[((b * Hq + h) * Sq + i) * D + d] = denom > 0 ? num[d] / denom : 0.0L;
        lse[(b * Hq + h) * Sq + i] = denom > 0 ? std::log(denom) : -INFINITY;
      }
}

template <class Policy, class Direct>
void compare(const Policy& policy, const Direct& direct, std::size_t sq, std::size_t sk, std::mt19937_64& rng) {
  const std::size_t B = 2, Hq = 6, Hkv = 2, D = 8;
  auto q = random_view<double>("q", rng, 1.0, B, Hq, sq, D);
  auto k = random_view<double>("k", rng, 1.0, B, Hkv, sk, D);
  auto v = random_view<double>("v", rng, 1.0, B, Hkv, sk, D);
  Kokkos::View<double****, Kokkos::HostSpace> o("o", B, Hq, sq, D);
  Kokkos::View<double***, Kokkos::HostSpace> lse("lse", B, Hq, sq);
  poison(o);
  poison(lse);
  trimix::AttentionOptions options;
  options.scale = 0.3;
  trimix::reference::attention(q, k, v, o, lse, policy, options);
  std::vector<long double> o_direct, lse_direct;
  direct_attention(q, k, v, direct, 0.3, o_direct, lse_direct);
  for (std::size_t i = 0; i < o.span(); ++i) {
    REQUIRE(!std::isnan(o.data()[i]));
    REQUIRE(std::abs(o.data()[i] - double(o_direct[i])) <= 1e-12);
  }
  for (std::size_t i = 0; i < lse.span(); ++i) {
    if (std::isinf(double(lse_direct[i]))) {
      REQUIRE(lse.data()[i] == -std::numeric_limits<double>::infinity());
    } else {
      REQUIRE(std::abs(lse.data()[i] - double(lse_direct[i])) <= 1e-12);
    }
  }
}

}  // namespace

TEST_CASE("reference equals the textbook formula", "[reference]") {
  std::mt19937_64 rng(42);
  for (const auto& lengths : {std::pair<std::size_t, std::size_t>{9, 9}, {4, 13}, {1, 1}, {1, 7}}) {
    const std::size_t sq = lengths.first, sk = lengths.second;
    compare(trimix::Causal{}, [](long p, long j) { return j <= p; }, sq, sk, rng);
    compare(trimix::Full{}, [](long, long) { return true; }, sq, sk, rng);
    compare(trimix::Triangle{2, 3, 2}, [sk](long p, long j) {
      return j <= p && (j < 2 || p - j < 3 || p >= long(sk) - 2);
    }, sq, sk, rng);
    compare(trimix::Streaming{1, 2}, [](long p, long j) { return j <= p && (j < 1 || p - j < 2); }, sq, sk, rng);
    // Rows that see nothing: o = 0, lse = -inf.
    compare(trimix::LastRows{2}, [sk](long p, long) { return p >= long(sk) - 2; }, sq, sk, rng);
  }
}

TEST_CASE("reference validates its arguments", "[reference][errors]") {
  using Catch::Matchers::ContainsSubstring;
  using V = Kokkos::View<float****, Kokkos::HostSpace>;
  V q("q", 1, 4, 5, 8), k("k", 1, 3, 5, 8), o("o", 1, 4, 5, 8);
  CHECK_THROWS_WITH(trimix::reference::attention(q, k, k, o, trimix::Causal{}),
                    ContainsSubstring("trimix::reference::attention: q heads (4) must be a multiple of k/v heads (3)"));
  V q0("q0", 1, 4, 5, 0), k0("k0", 1, 2, 5, 0), o0("o0", 1, 4, 5, 0);
  CHECK_THROWS_WITH(trimix::reference::attention(q0, k0, k0, o0, trimix::Causal{}),
                    ContainsSubstring("head_dim"));
}
