// The online softmax's arithmetic: exp2_nonpositive against std::exp2 on the host and on the
// backend under test (where it runs inside the portable kernel and the combine pass), and the
// edge cases the kernels rely on (-inf gives exactly 0, 0 gives exactly 1, below -126 gives 0).
#include "test_config.hpp"

#include <trimix/softmax.hpp>

#include <catch2/catch_test_macros.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

using trimix::index_t;
using trimix::impl::exp2_nonpositive;

namespace {

/// Largest relative error of exp2_nonpositive over xs (exact 0 expected below -126), or +inf when
/// a value is NaN.
double worst_relative_error(const std::vector<float>& xs, const std::vector<float>& ys) {
  double worst = 0.0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (std::isnan(ys[i])) return std::numeric_limits<double>::infinity();
    const double exact = xs[i] < -126.0f ? 0.0 : std::exp2(double(xs[i]));
    const double error = exact > 0.0 ? std::fabs(ys[i] - exact) / exact : std::fabs(double(ys[i]));
    worst = std::max(worst, error);
  }
  return worst;
}

}  // namespace

TEST_CASE("exp2_nonpositive: edge values", "[softmax]") {
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(exp2_nonpositive(-inf) == 0.0f);
  CHECK(exp2_nonpositive(0.0f) == 1.0f);
  CHECK(exp2_nonpositive(-0.0f) == 1.0f);
  CHECK(exp2_nonpositive(-1.0f) == 0.5f);
  CHECK(exp2_nonpositive(-126.0f) == std::exp2(-126.0f));
  CHECK(exp2_nonpositive(-126.5f) == 0.0f);
  CHECK(exp2_nonpositive(-1.0e30f) == 0.0f);
  CHECK(std::fabs(exp2_nonpositive(-1.0e-30f) - 1.0f) <= 2e-7f);
  // The rescale factor of a row that has seen nothing is 1, and the LSE of an empty row -inf.
  CHECK(trimix::impl::rescale_factor(-inf, -inf) == 1.0f);
  CHECK(trimix::impl::finish_lse(-inf, 0.0f) == -inf);
}

TEST_CASE("exp2_nonpositive: relative error below 2e-7 on host and device", "[softmax]") {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> wide(-140.0f, 0.0f), near_zero(-2.0f, 0.0f);
  const index_t n = 1 << 16;
  std::vector<float> xs(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) xs[std::size_t(i)] = i % 2 ? wide(rng) : near_zero(rng);
  xs[0] = -126.0f;
  xs[1] = -125.99999f;
  xs[2] = -0.0f;

  std::vector<float> host(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) host[i] = exp2_nonpositive(xs[i]);
  CHECK(worst_relative_error(xs, host) < 2e-7);

  Kokkos::View<float*, typename trimix_test::ExecSpace::memory_space> x("x", std::size_t(n)), y("y", std::size_t(n));
  auto x_host = Kokkos::create_mirror_view(x);
  for (index_t i = 0; i < n; ++i) x_host(i) = xs[std::size_t(i)];
  Kokkos::deep_copy(x, x_host);
  Kokkos::deep_copy(y, std::numeric_limits<float>::quiet_NaN());  // poisoned
  Kokkos::parallel_for(
      "trimix_test::exp2", Kokkos::RangePolicy<trimix_test::ExecSpace>(0, n),
      KOKKOS_LAMBDA(index_t i) { y(i) = exp2_nonpositive(x(i)); });
  auto y_host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), y);
  std::vector<float> device(xs.size());
  for (index_t i = 0; i < n; ++i) device[std::size_t(i)] = y_host(i);
  CHECK(worst_relative_error(xs, device) < 2e-7);
}
