// The AVX-512 K / V tile copy, row softmax and fused scores + softmax of the host engines
// (engine_host_avx512.hpp) against their portable definitions: the copy exactly (K transposed,
// element conversions, zeros past the tile's keys, rows not dim apart), the softmax within fp32
// rounding (masked keys, fully masked rows, a running max that moves or stays, keys < kv_tile, NaN).
#include "test_support.hpp"

#include <trimix/engine.hpp>

#include <catch2/catch_test_macros.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#if TRIMIX_HAS_HOST_AVX512

namespace {

using trimix::index_t;
namespace avx = trimix::impl::host_avx512;

bool has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}

template <class T>
std::vector<T> random_rows(std::mt19937_64& rng, index_t rows, index_t stride) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<T> out(std::size_t(rows * stride));
  for (auto& x : out) x = T(normal(rng));
  return out;
}

std::uint32_t bits(float x) {
  std::uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}

template <class T>
void check_load_kv(std::mt19937_64& rng) {
  constexpr index_t tile = 64;
  for (const index_t dim : {16, 80, 128, 256}) {
    for (const index_t keys : {tile, index_t(37), index_t(1), index_t(16), index_t(17)}) {
      CAPTURE(dim, keys);
      const index_t stride = 3 * dim + 16;  // rows of a (batch, seq, heads, dim) view: not dim apart
      // Only `keys` rows exist: the copy must not read past them (a sanitizer build would see).
      const auto k = random_rows<T>(rng, keys, stride), v = random_rows<T>(rng, keys, stride);
      std::vector<float> kt(std::size_t(tile * dim), std::nanf("")), vt(std::size_t(tile * dim), std::nanf(""));
      avx::load_kv(k.data(), stride, v.data(), stride, keys, dim, tile, kt.data(), vt.data());
      std::size_t k_wrong = 0, v_wrong = 0;
      for (index_t key = 0; key < tile; ++key)
        for (index_t d = 0; d < dim; ++d) {
          const auto at = std::size_t(key * stride + d);
          const float k_expected = key < keys ? trimix::element_traits<T>::to_float(k[at]) : 0.0f;
          const float v_expected = key < keys ? trimix::element_traits<T>::to_float(v[at]) : 0.0f;
          k_wrong += bits(kt[std::size_t(d * tile + key)]) != bits(k_expected);  // kt[d][key]
          v_wrong += bits(vt[std::size_t(key * dim + d)]) != bits(v_expected);
        }
      CHECK(k_wrong == 0);
      CHECK(v_wrong == 0);
    }
  }
}

}  // namespace

TEST_CASE("host AVX-512 tile copy: K transposed, V as rows, exact conversions, zeros past the keys",
          "[engine][avx512]") {
  if (!has_avx512()) SKIP("no AVX-512 F/BW/VL on this CPU");
  std::mt19937_64 rng(123);
  check_load_kv<float>(rng);
  check_load_kv<trimix::bf16>(rng);
  check_load_kv<trimix::fp16>(rng);
}

TEST_CASE("host AVX-512 row softmax matches the portable one", "[engine][avx512]") {
  if (!has_avx512()) SKIP("no AVX-512 F/BW/VL on this CPU");
  using Portable = trimix::impl::PortableEngine<>;
  constexpr index_t tile = 64, rows = 24;
  const float inf = std::numeric_limits<float>::infinity();
  std::mt19937_64 rng(7);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (const index_t keys : {tile, index_t(50), index_t(16), index_t(1)}) {
    for (int round = 0; round < 3; ++round) {  // round 0: fresh state; later: a running max exists
      CAPTURE(keys, round);
      std::vector<float> s(std::size_t(rows * tile)), m(rows), l(rows), alpha(rows, std::nanf(""));
      for (index_t r = 0; r < rows; ++r) {
        for (index_t j = 0; j < tile; ++j) {
          float x = normal(rng);
          if (r % 5 == 1 && uniform(rng) < 0.5f) x = -inf;  // partly masked rows
          if (r % 5 == 3) x = -inf;                          // a fully masked row
          if (j >= keys) x = 100.0f;  // past the keys: above every score, yet probability 0
          s[std::size_t(r * tile + j)] = x;
        }
        m[std::size_t(r)] = round == 0 || r % 4 == 0 ? -inf : normal(rng);  // the max moves or stays
        l[std::size_t(r)] = m[std::size_t(r)] == -inf ? 0.0f : 1.0f + uniform(rng);
      }
      auto s_ref = s, m_ref = m, l_ref = l, alpha_ref = alpha;
      for (index_t r = 0; r < rows; ++r)
        Portable::softmax_row(s_ref.data() + r * tile, keys, tile, m_ref[std::size_t(r)], l_ref[std::size_t(r)],
                              alpha_ref[std::size_t(r)]);
      avx::softmax_rows(s.data(), m.data(), l.data(), alpha.data(), rows, keys, tile);
      std::size_t wrong = 0;
      auto close = [](float a, float b) {
        if (std::isnan(a) || std::isnan(b)) return false;  // NaN never passes
        if (a == b) return true;                             // includes -inf == -inf and 0 == 0
        return std::fabs(a - b) <= 2e-6f * std::fmax(std::fabs(a), std::fabs(b));
      };
      for (index_t r = 0; r < rows; ++r) {
        const auto i = std::size_t(r);
        wrong += !close(m[i], m_ref[i]) + !close(l[i], l_ref[i]) + !close(alpha[i], alpha_ref[i]);
        for (index_t j = 0; j < tile; ++j) wrong += !close(s[i * tile + std::size_t(j)], s_ref[i * tile + std::size_t(j)]);
      }
      CHECK(wrong == 0);
    }
  }
  // A NaN score (NaN in Q or K) reaches the row's sum on both paths, never a finite result.
  std::vector<float> s(std::size_t(2 * tile), 1.0f), m(2, -inf), l(2, 0.0f), alpha(2);
  s[5] = std::nanf("");
  s[std::size_t(tile + 40)] = std::nanf("");
  auto s_ref = s, m_ref = m, l_ref = l, alpha_ref = alpha;
  for (index_t r = 0; r < 2; ++r)
    Portable::softmax_row(s_ref.data() + r * tile, tile, tile, m_ref[std::size_t(r)], l_ref[std::size_t(r)],
                          alpha_ref[std::size_t(r)]);
  avx::softmax_rows(s.data(), m.data(), l.data(), alpha.data(), 2, tile, tile);
  CHECK(std::isnan(l_ref[0]));
  CHECK(std::isnan(l_ref[1]));
  CHECK(std::isnan(l[0]));
  CHECK(std::isnan(l[1]));
  CHECK(m[0] == m_ref[0]);
  CHECK(m[1] == m_ref[1]);
}

TEST_CASE("host AVX-512 fused scores + softmax matches the products then the portable softmax",
          "[engine][avx512]") {
  if (!has_avx512()) SKIP("no AVX-512 F/BW/VL on this CPU");
  using Portable = trimix::impl::PortableEngine<>;
  constexpr index_t tile = 64, rows = 18;  // three 6-row blocks
  const float inf = std::numeric_limits<float>::infinity();
  std::mt19937_64 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const index_t dim : {16, 80, 128}) {
    for (const float q_scale : {0.1f, 30.0f}) {  // 30: scores in the thousands (large logits)
      for (int round = 0; round < 2; ++round) {   // round 0: fresh state; 1: a running max exists
        CAPTURE(dim, q_scale, round);
        std::vector<float> q(std::size_t(rows * dim)), kt(std::size_t(dim * tile));
        for (auto& x : q) x = q_scale * normal(rng);
        for (auto& x : kt) x = normal(rng);
        if (round == 1) q[std::size_t(4 * dim + 3)] = std::nanf("");  // row 4 sees a NaN score
        std::vector<float> m(rows), l(rows), alpha(rows, std::nanf(""));
        for (index_t r = 0; r < rows; ++r) {
          m[std::size_t(r)] = round == 0 || r % 3 == 0 ? -inf : q_scale * 4.0f * normal(rng);  // moves or stays
          l[std::size_t(r)] = m[std::size_t(r)] == -inf ? 0.0f : 1.5f;
        }
        // Reference: each score as one fused multiply-add chain over the head dim (the order of
        // both products), then the portable row softmax.
        std::vector<float> s_ref(std::size_t(rows * tile));
        for (index_t r = 0; r < rows; ++r)
          for (index_t j = 0; j < tile; ++j) {
            float acc = 0.0f;
            for (index_t d = 0; d < dim; ++d)
              acc = std::fma(q[std::size_t(r * dim + d)], kt[std::size_t(d * tile + j)], acc);
            s_ref[std::size_t(r * tile + j)] = acc;
          }
        auto m_ref = m, l_ref = l, alpha_ref = alpha;
        for (index_t r = 0; r < rows; ++r)
          Portable::softmax_row(s_ref.data() + r * tile, tile, tile, m_ref[std::size_t(r)], l_ref[std::size_t(r)],
                                alpha_ref[std::size_t(r)]);
        std::vector<float> p(std::size_t(rows * tile), std::nanf(""));
        avx::scores_softmax64(q.data(), kt.data(), p.data(), m.data(), l.data(), alpha.data(), rows, dim);
        auto close = [](float a, float b) {
          if (std::isnan(a) || std::isnan(b)) return false;  // NaN never passes
          if (a == b) return true;
          return std::fabs(a - b) <= 2e-6f * std::fmax(std::fabs(a), std::fabs(b));
        };
        std::size_t wrong = 0;
        for (index_t r = 0; r < rows; ++r) {
          const auto i = std::size_t(r);
          if (round == 1 && r == 4) {  // the NaN row: its sum is NaN on both paths
            CHECK(std::isnan(l[i]));
            CHECK(std::isnan(l_ref[i]));
            continue;
          }
          wrong += !close(m[i], m_ref[i]) + !close(l[i], l_ref[i]) + !close(alpha[i], alpha_ref[i]);
          for (index_t j = 0; j < tile; ++j) wrong += !close(p[i * tile + std::size_t(j)], s_ref[i * tile + std::size_t(j)]);
        }
        CHECK(wrong == 0);
      }
    }
  }
}

#endif  // TRIMIX_HAS_HOST_AVX512
