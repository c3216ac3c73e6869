// The portable engine's two tile products for every micro-tile shape a backend's traits can pick
// (4x16 on GPUs, 6x16 on AVX2 CPUs, 6x32 on AVX-512 CPUs), whatever this machine's ISA: the
// attention tests only reach the shape of the build's own traits. Checked element by element
// against plain loops in double, on random tiles, outputs poisoned.
#include "test_support.hpp"

#include <trimix/engine_host_bf16.hpp>
#include <trimix/engine_portable.hpp>

#include <catch2/catch_test_macros.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace trimix_test;

namespace {

using Memory = typename ExecSpace::memory_space;
using Floats = Kokkos::View<float*, Memory>;

Floats random_floats(const std::string& label, std::mt19937_64& rng, index_t n) {
  Floats v(label, std::size_t(n));
  auto host = Kokkos::create_mirror_view(v);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (index_t i = 0; i < n; ++i) host(i) = normal(rng);
  Kokkos::deep_copy(v, host);
  return v;
}

std::vector<float> host_copy(const Floats& v) {
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return std::vector<float>(host.data(), host.data() + host.size());
}

/// |a - e| <= 1e-5 * (1 + sum of |terms|) per element (fp32 sums of up to 256 products); NaN fails.
int count_mismatches(const std::vector<float>& actual, const std::vector<double>& expected,
                     const std::vector<double>& magnitude) {
  int bad = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double err = std::abs(double(actual[i]) - expected[i]);
    if (!(err <= 1e-5 * (1.0 + magnitude[i]))) {
      if (bad < 4) UNSCOPED_INFO("element " << i << ": " << actual[i] << " vs " << expected[i]);
      ++bad;
    }
  }
  return bad;
}

/// Checks S = Q Kt and O = O_before * alpha + P[:, :keys] V[:keys] element by element against
/// double sums (host vectors in the engines' tile layouts).
void check_products(const std::vector<float>& s, const std::vector<float>& o, const std::vector<float>& q,
                    const std::vector<float>& kt, const std::vector<float>& v, const std::vector<float>& p,
                    const std::vector<float>& alpha, const std::vector<float>& o_before, index_t rows,
                    index_t dim, index_t kv_tile, index_t keys) {
  std::vector<double> s_exact(std::size_t(rows * kv_tile)), s_mag(s_exact.size());
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < kv_tile; ++c)
      for (index_t d = 0; d < dim; ++d) {
        const double term = double(q[std::size_t(r * dim + d)]) * kt[std::size_t(d * kv_tile + c)];
        s_exact[std::size_t(r * kv_tile + c)] += term;
        s_mag[std::size_t(r * kv_tile + c)] += std::abs(term);
      }
  std::vector<double> o_exact(std::size_t(rows * dim)), o_mag(o_exact.size());
  for (index_t r = 0; r < rows; ++r)
    for (index_t d = 0; d < dim; ++d) {
      double acc = double(o_before[std::size_t(r * dim + d)]) * alpha[std::size_t(r)], mag = std::abs(acc);
      for (index_t j = 0; j < keys; ++j) {  // columns at or past `keys` must not contribute
        const double term = double(p[std::size_t(r * kv_tile + j)]) * v[std::size_t(j * dim + d)];
        acc += term;
        mag += std::abs(term);
      }
      o_exact[std::size_t(r * dim + d)] = acc;
      o_mag[std::size_t(r * dim + d)] = mag;
    }
  CHECK(count_mismatches(s, s_exact, s_mag) == 0);
  CHECK(count_mismatches(o, o_exact, o_mag) == 0);
}

template <index_t RowBlock, index_t LaneBlock>
void check_engine(index_t rows, index_t dim, index_t kv_tile, index_t keys, std::mt19937_64& rng) {
  using Engine = trimix::impl::PortableEngine<RowBlock, LaneBlock>;
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  INFO("engine " << RowBlock << "x" << LaneBlock << ", rows " << rows << ", dim " << dim << ", kv_tile "
                 << kv_tile << ", keys " << keys);
  const Floats q = random_floats("q", rng, rows * dim), kt = random_floats("kt", rng, dim * kv_tile);
  const Floats v = random_floats("v", rng, kv_tile * dim), p = random_floats("p", rng, rows * kv_tile);
  const Floats alpha = random_floats("alpha", rng, rows), o = random_floats("o", rng, rows * dim);
  const std::vector<float> o_before = host_copy(o);
  Floats s("s", std::size_t(rows * kv_tile));
  Kokkos::deep_copy(s, std::numeric_limits<float>::quiet_NaN());

  const int team_size = Kokkos::SpaceAccessibility<Kokkos::HostSpace, Memory>::accessible ? 1 : 64;
  Kokkos::parallel_for(
      "trimix_test::portable_engine", Policy(1, team_size),
      KOKKOS_LAMBDA(const typename Policy::member_type& team) {
        Engine::scores(team, q.data(), kt.data(), s.data(), rows, dim, kv_tile);
        Engine::accumulate(team, p.data(), v.data(), alpha.data(), o.data(), rows, dim, kv_tile, keys);
      });
  Kokkos::fence();

  check_products(host_copy(s), host_copy(o), host_copy(q), host_copy(kt), host_copy(v), host_copy(p),
                 host_copy(alpha), o_before, rows, dim, kv_tile, keys);
}

}  // namespace

TEST_CASE("PortableEngine: scores and accumulate for every micro-tile shape", "[engine][sanitize]") {
  std::mt19937_64 rng(31);
  for (const index_t dim : {64, 80, 128}) {  // 80: not a multiple of 32, takes 16-column tiles
    check_engine<4, 16>(16, dim, 32, 32, rng);
    check_engine<4, 16>(32, dim, 64, 17, rng);
    check_engine<6, 16>(48, dim, 64, 64, rng);
    check_engine<6, 16>(12, dim, 64, 5, rng);
    check_engine<6, 32>(48, dim, 64, 64, rng);
    check_engine<6, 32>(24, dim, 64, 33, rng);
  }
}

// The AVX512-BF16 host engine (engine_host_bf16.hpp) on tiles whose values are bf16 numbers, as
// the kernel gives it: scores are exact products summed in fp32; P is rounded to bf16 for P V,
// so the expected O uses the rounded P. Runs where the CPU has the instructions, skips elsewhere.
TEST_CASE("HostBf16Engine: vdpbf16ps products match exact sums", "[engine]") {
  using Engine = trimix::impl::HostBf16Engine<6, 32>;
  using Host = Kokkos::DefaultHostExecutionSpace;
  if (!Engine::uses_bf16dp(48, 128, 64)) SKIP("no AVX512-BF16 on this CPU, or not an x86 GCC/Clang build");
  CHECK_FALSE(Engine::prescales_q(48, 128, 64));
  std::mt19937_64 rng(37);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto bf16_value = [&] { return float(trimix::bf16(normal(rng))); };
  for (const index_t dim : {64, 96, 128, 256}) {  // 96: a 64-column block and two 16-column blocks
    const index_t rows = 48, kv_tile = 64;
    INFO("dim " << dim);
    const auto n = [](index_t count) { return static_cast<std::size_t>(count); };
    std::vector<float> q(n(rows * dim)), kt(n(dim * kv_tile)), v(n(kv_tile * dim));
    std::vector<float> p(n(rows * kv_tile)), alpha(n(rows)), o(n(rows * dim));
    for (auto* x : {&q, &kt, &v}) for (float& e : *x) e = bf16_value();
    for (float& e : p) e = std::abs(normal(rng));  // probabilities-like, not bf16 numbers
    for (float& e : alpha) e = std::abs(normal(rng));
    for (float& e : o) e = normal(rng);
    const std::vector<float> o_before = o;
    std::vector<float> s(std::size_t(rows * kv_tile), std::numeric_limits<float>::quiet_NaN());
    Kokkos::parallel_for(
        "trimix_test::host_bf16_engine", Kokkos::TeamPolicy<Host>(1, 1),
        [&](const typename Kokkos::TeamPolicy<Host>::member_type& team) {
          Engine::scores(team, q.data(), kt.data(), s.data(), rows, dim, kv_tile);
          Engine::accumulate(team, p.data(), v.data(), alpha.data(), o.data(), rows, dim, kv_tile, kv_tile);
        });
    Kokkos::fence();
    std::vector<float> p_rounded = p;  // the engine rounds P to bf16 for P V
    for (float& e : p_rounded) e = float(trimix::bf16(e));
    check_products(s, o, q, kt, v, p_rounded, alpha, o_before, rows, dim, kv_tile, kv_tile);
  }
}
