#pragma once
/// \file test_support.hpp
/// Helpers shared by the tests: random and poisoned views, per-type tolerances, an all-close check
/// that reports the first mismatches with their indices, and a test-only custom mask policy.

#include "test_config.hpp"

#include <trimix/element.hpp>
#include <trimix/mask.hpp>

#include <catch2/catch_test_macros.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>

namespace trimix_test {

using trimix::index_t;

/// A policy defined only by the long form of the contract (classify + runs + visible), to prove
/// the extension point: kv-tiles of width `tile` whose index is a multiple of `stride`.
struct EveryNthTile {
  index_t tile = 16;
  index_t stride = 3;
  TRIMIX_FUNCTION bool visible(index_t, index_t j, index_t) const { return (j / tile) % stride == 0; }
  TRIMIX_FUNCTION trimix::TileClass classify(const trimix::TileGeometry& g, index_t, index_t u) const {
    // Exact when the geometry's kv tile equals ours, conservative otherwise.
    if (g.kv_tile != tile) return trimix::TileClass::partial;
    return u % stride == 0 ? trimix::TileClass::full : trimix::TileClass::empty;
  }
  struct Cursor {
    index_t next_tile, end, stride;
    bool partial;
    TRIMIX_FUNCTION bool next(trimix::KvRun& r) {
      if (next_tile >= end) return false;
      if (partial) {
        r = trimix::KvRun{0, end, trimix::TileClass::partial};
        next_tile = end;
        return true;
      }
      r = trimix::KvRun{next_tile, next_tile + 1, trimix::TileClass::full};
      next_tile += stride;
      return true;
    }
  };
  TRIMIX_FUNCTION Cursor runs(const trimix::TileGeometry& g, index_t) const {
    return Cursor{0, g.kv_tiles(), stride, g.kv_tile != tile};
  }
  const char* name() const { return "every_nth_tile"; }
};

/// Per-element tolerance |actual - expected| <= atol + rtol * |expected| of a storage type
/// (fp32 compute in every case; 16-bit types add their output rounding).
template <class T>
struct Tolerance {
  static constexpr double rtol = trimix::element_traits<T>::epsilon >= 1e-3 ? 1e-2    // bf16
                                 : trimix::element_traits<T>::epsilon >= 1e-4 ? 2e-3  // fp16
                                                                              : 1e-5;  // f32, f64
  static constexpr double atol = rtol;  // outputs are averages of unit-normal values
};

/// Host view of `T` with unit-normal entries times `scale` (never zeros), rounded to T.
template <class T, class... Extents>
Kokkos::View<T****, Kokkos::HostSpace> random_view(const std::string& label, std::mt19937_64& rng,
                                                    double scale, Extents... extents) {
  Kokkos::View<T****, Kokkos::HostSpace> v(label, std::size_t(extents)...);
  std::normal_distribution<double> normal(0.0, 1.0);
  T* data = v.data();
  for (std::size_t i = 0; i < v.span(); ++i)
    data[i] = trimix::element_traits<T>::from_double(scale * normal(rng));
  return v;
}

/// Fills a view with NaN so that any element a kernel forgets to write fails the comparison.
template <class View>
void poison(const View& v) {
  using T = typename View::non_const_value_type;
  auto host = Kokkos::create_mirror_view(v);
  T* data = host.data();
  for (std::size_t i = 0; i < host.span(); ++i)
    data[i] = trimix::element_traits<T>::from_double(std::numeric_limits<double>::quiet_NaN());
  Kokkos::deep_copy(v, host);
}

/// Copies a host view to the test execution space.
template <class View>
auto to_exec(const View& host) {
  auto dev = Kokkos::create_mirror_view(typename ExecSpace::memory_space{}, host);
  Kokkos::deep_copy(dev, host);
  return dev;
}

template <class View>
auto to_host(const View& v) {
  return Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, v);
}

template <class T>
double as_double(const T& x) {
  return trimix::element_traits<T>::to_double(x);
}

/// Every element of `actual` against `expected` (same extents, any element types). NaN never
/// passes; -inf matches only -inf. Prints the first mismatches with their indices.
template <class A, class E>
bool all_close(const A& actual_any, const E& expected_any, double atol, double rtol) {
  const auto actual = to_host(actual_any);
  const auto expected = to_host(expected_any);
  REQUIRE(actual.size() == expected.size());
  std::ostringstream report;
  std::size_t bad = 0;
  double worst = 0;
  auto check = [&](double a, double e, const std::string& where) {
    const bool ok = (std::isinf(e) || std::isinf(a)) ? a == e
                                                     : std::abs(a - e) <= atol + rtol * std::abs(e);
    if (!std::isnan(a) && !std::isinf(e)) worst = std::max(worst, std::abs(a - e));
    if (ok && !std::isnan(a)) return;
    if (bad++ < 8) report << "  at " << where << ": actual " << a << ", expected " << e << "\n";
  };
  if constexpr (A::rank == 4) {
    for (std::size_t i0 = 0; i0 < actual.extent(0); ++i0)
      for (std::size_t i1 = 0; i1 < actual.extent(1); ++i1)
        for (std::size_t i2 = 0; i2 < actual.extent(2); ++i2)
          for (std::size_t i3 = 0; i3 < actual.extent(3); ++i3)
            check(as_double(actual(i0, i1, i2, i3)), as_double(expected(i0, i1, i2, i3)),
                  "(" + std::to_string(i0) + "," + std::to_string(i1) + "," + std::to_string(i2) +
                      "," + std::to_string(i3) + ")");
  } else {
    static_assert(A::rank == 3);
    for (std::size_t i0 = 0; i0 < actual.extent(0); ++i0)
      for (std::size_t i1 = 0; i1 < actual.extent(1); ++i1)
        for (std::size_t i2 = 0; i2 < actual.extent(2); ++i2)
          check(double(actual(i0, i1, i2)), double(expected(i0, i1, i2)),
                "(" + std::to_string(i0) + "," + std::to_string(i1) + "," + std::to_string(i2) + ")");
  }
  if (bad) {
    UNSCOPED_INFO("'" << actual.label() << "': " << bad << " of " << actual.size()
                      << " elements differ (atol " << atol << ", rtol " << rtol << ", worst finite |diff| "
                      << worst << ")\n"
                      << report.str());
  }
  return bad == 0;
}

}  // namespace trimix_test
