// Element types and element_traits (DESIGN.md section 4): trimix::bf16 and trimix::fp16 decode
// every bit pattern exactly and round float and double to nearest-even, checked exhaustively
// against an independent reference built from double arithmetic.
#include "test_config.hpp"

#include <trimix/element.hpp>

#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

using trimix::bf16;
using trimix::element_traits;
using trimix::fp16;

namespace {

// ---- independent reference ----------------------------------------------------------------------

/// A binary format with `exp_bits` exponent and `frac_bits` fraction bits, decoded and rounded
/// with double arithmetic only (no code shared with element.hpp).
struct Format {
  int exp_bits;
  int frac_bits;

  int bias() const { return (1 << (exp_bits - 1)) - 1; }
  std::uint32_t sign_bit() const { return 1u << (exp_bits + frac_bits); }
  std::uint32_t inf_bits() const { return ((1u << exp_bits) - 1u) << frac_bits; }
  bool is_nan(std::uint32_t b) const { return (b & (sign_bit() - 1u)) > inf_bits(); }

  /// Value of a non-NaN pattern.
  double decode(std::uint32_t b) const {
    const std::uint32_t mag = b & (sign_bit() - 1u);
    const double s = (b & sign_bit()) ? -1.0 : 1.0;
    if (mag == inf_bits()) return s * std::numeric_limits<double>::infinity();
    const int e = static_cast<int>(mag >> frac_bits);
    const double f = static_cast<double>(mag & ((1u << frac_bits) - 1u));
    if (e == 0) return s * std::ldexp(f, 1 - bias() - frac_bits);
    return s * std::ldexp(f + std::ldexp(1.0, frac_bits), e - bias() - frac_bits);
  }

  /// Non-negative finite values in increasing order; their bit patterns are the indices. The
  /// last entry stands for inf, placed one unit in the last place above the largest finite
  /// value: IEEE rounds to inf exactly when |x| >= max + ulp/2, and inf's pattern is even.
  std::vector<double> ladder() const {
    std::vector<double> v;
    for (std::uint32_t b = 0; b < inf_bits(); ++b) v.push_back(decode(b));
    v.push_back(std::ldexp(1.0, (1 << exp_bits) - 1 - bias()));
    return v;
  }
};

constexpr Format bf16_format{8, 7};
constexpr Format fp16_format{5, 10};

/// Round-to-nearest-even of a non-NaN double into the format, by comparing with the exact
/// midpoint of the two neighbouring values (a midpoint has one more bit than the format, so it is
/// exact in double and the comparison decides).
std::uint32_t reference_round(const Format& fmt, const std::vector<double>& ladder, double x) {
  const std::uint32_t sign = std::signbit(x) ? fmt.sign_bit() : 0u;
  const double a = std::fabs(x);
  if (a >= ladder.back()) return sign | fmt.inf_bits();
  const auto hi = std::upper_bound(ladder.begin(), ladder.end(), a);  // first value > a
  const auto lo_index = static_cast<std::uint32_t>(hi - ladder.begin() - 1);
  if (ladder[lo_index] == a) return sign | lo_index;
  const double mid = (ladder[lo_index] + ladder[lo_index + 1]) / 2;
  if (a < mid) return sign | lo_index;
  if (a > mid) return sign | (lo_index + 1);
  return sign | ((lo_index & 1u) ? lo_index + 1 : lo_index);
}

const std::vector<double>& bf16_ladder() {
  static const std::vector<double> v = bf16_format.ladder();
  return v;
}
const std::vector<double>& fp16_ladder() {
  static const std::vector<double> v = fp16_format.ladder();
  return v;
}

float float_of_bits(std::uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}
std::uint32_t bits_of_float(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

std::string hex(std::uint64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

/// Counts mismatches and keeps the first few for the failure message (millions of Catch2
/// assertions would dominate the run time).
struct Mismatches {
  std::size_t count = 0;
  std::string first;
  void add(const std::string& what) {
    if (count++ < 8) first += what + "\n";
  }
};

/// The 16-bit type under test, its format and its reference ladder.
template <class T>
struct Subject;
template <>
struct Subject<bf16> {
  static const Format& format() { return bf16_format; }
  static const std::vector<double>& ladder() { return bf16_ladder(); }
};
template <>
struct Subject<fp16> {
  static const Format& format() { return fp16_format; }
  static const std::vector<double>& ladder() { return fp16_ladder(); }
};

/// Checks T(x).bits against the reference for a float x (as float and, exact, as double).
template <class T>
void check_float(float x, Mismatches& m) {
  const std::uint32_t want = reference_round(Subject<T>::format(), Subject<T>::ladder(), x);
  const std::uint16_t got = T(x).bits;
  if (got != want) m.add("from float " + hex(bits_of_float(x)) + ": got " + hex(got) + " want " + hex(want));
  const std::uint16_t got_d = T(static_cast<double>(x)).bits;
  if (got_d != want)
    m.add("from double(float " + hex(bits_of_float(x)) + "): got " + hex(got_d) + " want " + hex(want));
}

template <class T>
void check_double(double x, Mismatches& m) {
  const std::uint32_t want = reference_round(Subject<T>::format(), Subject<T>::ladder(), x);
  const std::uint16_t got = T(x).bits;
  if (got != want) {
    std::uint64_t b;
    std::memcpy(&b, &x, sizeof b);
    m.add("from double " + hex(b) + ": got " + hex(got) + " want " + hex(want));
  }
}

}  // namespace

// ---- layout ---------------------------------------------------------------------------------------

static_assert(sizeof(bf16) == 2 && alignof(bf16) == 2);
static_assert(sizeof(fp16) == 2 && alignof(fp16) == 2);
static_assert(std::is_trivially_copyable_v<bf16> && std::is_standard_layout_v<bf16>);
static_assert(std::is_trivially_copyable_v<fp16> && std::is_standard_layout_v<fp16>);
static_assert(bf16::from_bits(0x3f80).bits == 0x3f80);  // constexpr
static_assert(fp16::from_bits(0x3c00).bits == 0x3c00);
static_assert(!std::is_convertible_v<float, bf16> && !std::is_convertible_v<bf16, float>,
              "conversions that round must be spelled out");

TEST_CASE("16-bit storage types value-initialise to +0", "[element]") {
  CHECK(bf16{}.bits == 0);
  CHECK(fp16{}.bits == 0);
  Kokkos::View<bf16*, trimix_test::HostSpace> v("v", 3);
  Kokkos::View<fp16*, trimix_test::HostSpace> w("w", 3);
  CHECK((v(0).bits == 0 && v(2).bits == 0 && w(1).bits == 0));
}

// ---- decoding and round trips: every bit pattern -------------------------------------------------

TEMPLATE_TEST_CASE("16-bit types decode every bit pattern exactly and round-trip", "[element]",
                   bf16, fp16) {
  const Format& fmt = Subject<TestType>::format();
  Mismatches m;
  for (std::uint32_t b = 0; b < 0x10000u; ++b) {
    const TestType x = TestType::from_bits(static_cast<std::uint16_t>(b));
    const float f = x.to_float();
    const float g = static_cast<float>(x);
    if (bits_of_float(f) != bits_of_float(g)) m.add("operator float differs at " + hex(b));
    if (fmt.is_nan(b)) {
      // Widening keeps sign and payload; narrowing again keeps both and sets the quiet bit.
      const std::uint32_t quiet = 1u << (fmt.frac_bits - 1);
      if (!std::isnan(f) || std::signbit(f) != ((b & fmt.sign_bit()) != 0))
        m.add("NaN " + hex(b) + " decoded to " + hex(bits_of_float(f)));
      if (TestType(f).bits != (b | quiet))
        m.add("NaN " + hex(b) + " came back as " + hex(TestType(f).bits));
      if (TestType(static_cast<double>(f)).bits != (b | quiet))
        m.add("NaN " + hex(b) + " came back through double as " +
              hex(TestType(static_cast<double>(f)).bits));
      continue;
    }
    const double want = fmt.decode(b);
    if (static_cast<double>(f) != want || std::signbit(f) != std::signbit(want))
      m.add("decode " + hex(b) + " gave " + hex(bits_of_float(f)));
    if (TestType(f).bits != b) m.add("round trip " + hex(b) + " -> " + hex(TestType(f).bits));
    if (TestType(static_cast<double>(f)).bits != b)
      m.add("round trip via double " + hex(b) + " -> " + hex(TestType(static_cast<double>(f)).bits));
  }
  INFO(m.first);
  CHECK(m.count == 0);
}

// ---- rounding: every tie, and its neighbours -----------------------------------------------------

TEMPLATE_TEST_CASE("16-bit types round at every midpoint to nearest even", "[element]", bf16,
                   fp16) {
  const std::vector<double>& ladder = Subject<TestType>::ladder();
  Mismatches m;
  for (std::size_t i = 0; i + 1 < ladder.size(); ++i) {
    const double mid_d = (ladder[i] + ladder[i + 1]) / 2;
    const float mid = static_cast<float>(mid_d);
    REQUIRE(static_cast<double>(mid) == mid_d);  // every midpoint is a float
    const float inf = std::numeric_limits<float>::infinity();
    for (float x : {static_cast<float>(ladder[i]), mid, std::nextafter(mid, 0.0f),
                    std::nextafter(mid, inf)}) {
      check_float<TestType>(x, m);
      check_float<TestType>(-x, m);
    }
    // Doubles just off the midpoint: a float cannot hold them, so rounding through float first
    // would land on the tie and pick the even side whichever side x is on.
    for (double x : {mid_d, std::nextafter(mid_d, 0.0), std::nextafter(mid_d, 1e300)}) {
      check_double<TestType>(x, m);
      check_double<TestType>(-x, m);
    }
  }
  INFO(m.first);
  CHECK(m.count == 0);
}

TEMPLATE_TEST_CASE("16-bit types round random floats and doubles like the reference", "[element]",
                   bf16, fp16) {
  std::mt19937_64 rng(20261128);
  Mismatches m;
  // Uniform bit patterns: every exponent of float and double, NaNs excluded (tested above).
  for (int n = 0; n < (1 << 20); ++n) {
    const auto fb = static_cast<std::uint32_t>(rng());
    const float f = float_of_bits(fb);
    if (!std::isnan(f)) check_float<TestType>(f, m);
    const std::uint64_t db = rng();
    double d;
    std::memcpy(&d, &db, sizeof d);
    if (!std::isnan(d)) check_double<TestType>(d, m);
  }
  // Dense where the format lives: exponents from below the smallest subnormal to past overflow.
  const int max_exp = (1 << (Subject<TestType>::format().exp_bits - 1)) + 1;
  const int min_exp = 2 - max_exp - Subject<TestType>::format().frac_bits - 3;
  std::uniform_int_distribution<int> exp_dist(min_exp, max_exp);
  std::uniform_real_distribution<double> sig_dist(1.0, 2.0);
  for (int n = 0; n < (1 << 20); ++n) {
    const double d = std::ldexp(sig_dist(rng), exp_dist(rng)) * ((n & 1) ? -1.0 : 1.0);
    check_double<TestType>(d, m);
    check_float<TestType>(static_cast<float>(d), m);
  }
  INFO(m.first);
  CHECK(m.count == 0);
}

// ---- hand-checked edge cases (independent of the reference) -------------------------------------

TEST_CASE("bf16 edge cases", "[element]") {
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(bf16(0.0f).bits == 0x0000);
  CHECK(bf16(-0.0f).bits == 0x8000);
  CHECK(bf16(-0.0).bits == 0x8000);
  CHECK(bf16(1.0f).bits == 0x3f80);
  CHECK(bf16(-2.0f).bits == 0xc000);
  CHECK(bf16(1.0f + 0x1p-8f).bits == 0x3f80);        // tie, 1.0 is even
  CHECK(bf16(1.0f + 3 * 0x1p-8f).bits == 0x3f82);    // tie, 1 + 2^-6 is even
  CHECK(bf16(1.0f + 0x1p-8f + 0x1p-23f).bits == 0x3f81);  // just above the tie
  CHECK(bf16(1.0 + 0x1p-8 + 0x1p-40).bits == 0x3f81);     // double: float would round to the tie
  CHECK(bf16(1.0 + 0x1p-8 - 0x1p-40).bits == 0x3f80);
  // Largest finite 0x7f7f = (2 - 2^-7) * 2^127; the overflow threshold is (2 - 2^-8) * 2^127.
  CHECK(bf16(std::numeric_limits<float>::max()).bits == 0x7f80);
  CHECK(bf16(float_of_bits(0x7f7f7fffu)).bits == 0x7f7f);
  CHECK(bf16(float_of_bits(0x7f7f8000u)).bits == 0x7f80);  // tie, inf's pattern is even
  CHECK(bf16(-inf).bits == 0xff80);
  CHECK(bf16(1e300).bits == 0x7f80);
  CHECK(bf16(-1e300).bits == 0xff80);
  // Subnormals: same exponent range as float, 7 fraction bits.
  CHECK(bf16(0x1p-133f).bits == 0x0001);
  CHECK(bf16(0x1p-134f).bits == 0x0000);             // tie, 0 is even
  CHECK(bf16(0x1.8p-133f).bits == 0x0002);           // tie, 2 is even
  CHECK(bf16(std::numeric_limits<float>::denorm_min()).bits == 0x0000);
  CHECK(bf16(-std::numeric_limits<float>::denorm_min()).bits == 0x8000);
  CHECK(bf16(1e-300).bits == 0x0000);
  CHECK(bf16(std::numeric_limits<double>::denorm_min()).bits == 0x0000);
  CHECK(bf16::from_bits(0x0001).to_float() == 0x1p-133f);
  CHECK(bf16::from_bits(0x7f7f).to_float() == 0x1.fep127f);
  // NaN stays NaN (never inf), quiet, with its sign.
  CHECK(bf16(float_of_bits(0x7f800001u)).bits == 0x7fc0);  // signalling, payload only in low bits
  CHECK(bf16(float_of_bits(0xffc00000u)).bits == 0xffc0);
  CHECK((bf16(std::numeric_limits<double>::signaling_NaN()).bits & 0xffc0) == 0x7fc0);
  CHECK(std::isnan(bf16::from_bits(0x7fc0).to_float()));
}

TEST_CASE("fp16 edge cases", "[element]") {
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(fp16(0.0f).bits == 0x0000);
  CHECK(fp16(-0.0f).bits == 0x8000);
  CHECK(fp16(-0.0).bits == 0x8000);
  CHECK(fp16(1.0f).bits == 0x3c00);
  CHECK(fp16(-2.0f).bits == 0xc000);
  CHECK(fp16(0.1f).bits == 0x2e66);
  CHECK(fp16(1.0f + 0x1p-11f).bits == 0x3c00);       // tie, 1.0 is even
  CHECK(fp16(1.0f + 3 * 0x1p-11f).bits == 0x3c02);
  CHECK(fp16(1.0 + 0x1p-11 + 0x1p-40).bits == 0x3c01);  // double: float would round to the tie
  // Overflow: max finite 65504, threshold 65520 (tie, inf's pattern is even).
  CHECK(fp16(65504.0f).bits == 0x7bff);
  CHECK(fp16(65519.99f).bits == 0x7bff);
  CHECK(fp16(65520.0f).bits == 0x7c00);
  CHECK(fp16(65519.999999).bits == 0x7bff);
  CHECK(fp16(65520.0).bits == 0x7c00);
  CHECK(fp16(-65520.0f).bits == 0xfc00);
  CHECK(fp16(1e10f).bits == 0x7c00);
  CHECK(fp16(inf).bits == 0x7c00);
  CHECK(fp16(-inf).bits == 0xfc00);
  CHECK(fp16(std::numeric_limits<float>::max()).bits == 0x7c00);
  // Subnormals: 2^-24 steps below 2^-14.
  CHECK(fp16(0x1p-14f).bits == 0x0400);
  CHECK(fp16(0x1p-24f).bits == 0x0001);
  CHECK(fp16(0x1p-25f).bits == 0x0000);              // tie, 0 is even
  CHECK(fp16(0x1.000002p-25f).bits == 0x0001);
  CHECK(fp16(0x1.8p-24f).bits == 0x0002);            // tie, 2 is even
  CHECK(fp16(0x1p-14f - 0x1p-25f).bits == 0x0400);   // tie between 0x3ff and 0x400
  CHECK(fp16(-0x1p-24f).bits == 0x8001);
  CHECK(fp16(0x1p-26f).bits == 0x0000);
  CHECK(fp16(-0x1p-26f).bits == 0x8000);
  CHECK(fp16(std::numeric_limits<float>::denorm_min()).bits == 0x0000);
  CHECK(fp16(1e-300).bits == 0x0000);
  CHECK(fp16::from_bits(0x0001).to_float() == 0x1p-24f);
  CHECK(fp16::from_bits(0x03ff).to_float() == 0x1.ff8p-15f);
  CHECK(fp16::from_bits(0x7bff).to_float() == 65504.0f);
  CHECK(fp16::from_bits(0x7c00).to_float() == inf);
  // NaN stays NaN (never inf), quiet, with its sign.
  CHECK(fp16(float_of_bits(0x7f800001u)).bits == 0x7e00);
  CHECK(fp16(float_of_bits(0xffc00000u)).bits == 0xfe00);
  CHECK(fp16(std::numeric_limits<double>::quiet_NaN()).bits == 0x7e00);
  CHECK(std::isnan(fp16::from_bits(0x7c01).to_float()));
}

// ---- element_traits --------------------------------------------------------------------------------

namespace {

template <class Tuple, bool Add, class T>
struct append_if {
  using type = Tuple;
};
template <class... Ts, class T>
struct append_if<std::tuple<Ts...>, true, T> {
  using type = std::tuple<Ts..., T>;
};

// Kokkos' own half types join the list only where they are types of their own.
using with_kokkos_half =
    typename append_if<std::tuple<float, double, bf16, fp16>,
                       trimix::impl::is_kokkos_half_v<Kokkos::Experimental::half_t>,
                       Kokkos::Experimental::half_t>::type;
#if defined(KOKKOS_BHALF_T_IS_FLOAT)
using ElementTypes =
    typename append_if<with_kokkos_half,
                       trimix::impl::is_kokkos_bhalf_v<Kokkos::Experimental::bhalf_t>,
                       Kokkos::Experimental::bhalf_t>::type;
#else
using ElementTypes = with_kokkos_half;
#endif

/// Expected name and significand bits p (epsilon = 2^-p) of each element type.
template <class T>
struct Expected;
template <>
struct Expected<float> {
  static constexpr const char* name = "f32";
  static constexpr int digits = 24;
};
template <>
struct Expected<double> {
  static constexpr const char* name = "f64";
  static constexpr int digits = 53;
};
template <>
struct Expected<bf16> {
  static constexpr const char* name = "bf16";
  static constexpr int digits = 8;
};
template <>
struct Expected<fp16> {
  static constexpr const char* name = "f16";
  static constexpr int digits = 11;
};
#if !KOKKOS_HALF_T_IS_FLOAT
template <>
struct Expected<Kokkos::Experimental::half_t> : Expected<fp16> {};
#endif
#if defined(KOKKOS_BHALF_T_IS_FLOAT) && !KOKKOS_BHALF_T_IS_FLOAT
template <>
struct Expected<Kokkos::Experimental::bhalf_t> : Expected<bf16> {};
#endif

/// A test-only element type, to prove the extension point: a float stored as a 32-bit integer
/// number of 1/256 units.
struct Fixed8 {
  std::int32_t units;
};

/// Converts a batch of floats to T and back inside a kernel of the execution space under test.
template <class T>
struct RoundTripKernel {
  Kokkos::View<const float*, trimix_test::ExecSpace> in;
  Kokkos::View<float*, trimix_test::ExecSpace> out;
  Kokkos::View<T*, trimix_test::ExecSpace> stored;
  KOKKOS_INLINE_FUNCTION void operator()(int i) const {
    stored(i) = element_traits<T>::from_float(in(i));
    out(i) = element_traits<T>::to_float(stored(i));
  }
};

}  // namespace

namespace trimix {
template <>
struct element_traits<Fixed8> {
  using storage = Fixed8;
  static constexpr const char* name = "fixed8";
  static constexpr double epsilon = 0x1p-9;  // absolute, not relative: a test type only
  TRIMIX_FORCEINLINE static float to_float(Fixed8 x) { return static_cast<float>(x.units) / 256; }
  TRIMIX_FORCEINLINE static Fixed8 from_float(float x) {
    return Fixed8{static_cast<std::int32_t>(x * 256)};
  }
  TRIMIX_FORCEINLINE static double to_double(Fixed8 x) { return static_cast<double>(x.units) / 256; }
  TRIMIX_FORCEINLINE static Fixed8 from_double(double x) {
    return Fixed8{static_cast<std::int32_t>(x * 256)};
  }
};
}  // namespace trimix

static_assert(trimix::is_element_v<Fixed8>);
static_assert(trimix::is_element_v<const Fixed8>);
static_assert(!trimix::is_element_v<int>);
static_assert(!trimix::is_element_v<std::string>);
static_assert(!trimix::is_element_v<void*>);
static_assert(std::string_view(trimix::element_name<Fixed8>()) == "fixed8");

// The type checks must agree with Kokkos' own macros (spelled the same in 3.4 and 4.x).
static_assert(static_cast<bool>(KOKKOS_HALF_T_IS_FLOAT) ==
              std::is_same_v<Kokkos::Experimental::half_t, float>);
static_assert(trimix::is_element_v<Kokkos::Experimental::half_t>);
#if defined(KOKKOS_BHALF_T_IS_FLOAT)
static_assert(static_cast<bool>(KOKKOS_BHALF_T_IS_FLOAT) ==
              std::is_same_v<Kokkos::Experimental::bhalf_t, float>);
static_assert(trimix::is_element_v<Kokkos::Experimental::bhalf_t>);
#endif

TEST_CASE("Kokkos half types map to float or to their own traits", "[element]") {
  const std::string half_name = trimix::element_name<Kokkos::Experimental::half_t>();
  CHECK(half_name == (KOKKOS_HALF_T_IS_FLOAT ? "f32" : "f16"));
#if defined(KOKKOS_BHALF_T_IS_FLOAT)
  const std::string bhalf_name = trimix::element_name<Kokkos::Experimental::bhalf_t>();
  CHECK(bhalf_name == (KOKKOS_BHALF_T_IS_FLOAT ? "f32" : "bf16"));
#endif
}

TEMPLATE_LIST_TEST_CASE("element_traits names unit roundoff and conversions", "[element]",
                        ElementTypes) {
  using T = TestType;
  using traits = element_traits<T>;
  STATIC_REQUIRE(trimix::is_element_v<T>);
  STATIC_REQUIRE(trimix::is_element_v<const T>);
  STATIC_REQUIRE(std::is_same_v<typename traits::storage, T>);
  STATIC_REQUIRE(std::is_same_v<typename element_traits<const T>::storage, T>);
  STATIC_REQUIRE(std::is_trivially_copyable_v<T>);
  CAPTURE(trimix::element_name<T>());

  CHECK(std::string(trimix::element_name<T>()) == Expected<T>::name);
  CHECK(std::string(traits::name) == Expected<T>::name);
  CHECK(traits::epsilon == std::ldexp(1.0, -Expected<T>::digits));

  // epsilon is the unit roundoff: 1 + u is the tie between 1 and its successor 1 + 2u.
  const double u = traits::epsilon;
  if (u > 0x1p-53) {
    CHECK(traits::to_double(traits::from_double(1.0 + u)) == 1.0);
    CHECK(traits::to_double(traits::from_double(1.0 + 1.5 * u)) == 1.0 + 2 * u);
    CHECK(traits::to_double(traits::from_double(1.0 + 2 * u)) == 1.0 + 2 * u);
    CHECK(traits::to_double(traits::from_double(1.0 + 3 * u)) == 1.0 + 4 * u);  // tie, even
  } else {
    CHECK(u == std::numeric_limits<double>::epsilon() / 2);
  }

  // Exactly representable values survive; others land within one unit roundoff.
  for (float v : {0.0f, -0.0f, 1.0f, -2.0f, 0.5f, 3.0f, -1024.0f, 0.375f}) {
    CHECK(traits::to_float(traits::from_float(v)) == v);
    CHECK(traits::to_double(traits::from_double(v)) == v);
  }
  CHECK(std::signbit(traits::to_float(traits::from_float(-0.0f))));
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> dist(-1000.0, 1000.0);
  for (int n = 0; n < 10000; ++n) {
    const double x = dist(rng);
    CHECK(std::fabs(traits::to_double(traits::from_double(x)) - x) <= u * std::fabs(x));
    const float f = static_cast<float>(x);
    CHECK(std::fabs(static_cast<double>(traits::to_float(traits::from_float(f))) - f) <=
          u * std::fabs(f));
  }
}

TEMPLATE_LIST_TEST_CASE("element_traits conversions agree in a kernel and on the host",
                        "[element]", ElementTypes) {
  using T = TestType;
  constexpr int n = 1 << 16;
  // Every bf16 value, each nudged by a random fraction of its ulp: hits every binade (including
  // subnormals, overflow and NaN) of each 16-bit type.
  Kokkos::View<float*, trimix_test::HostSpace> in_h("in", n);
  std::mt19937 rng(11);
  for (int i = 0; i < n; ++i)
    in_h(i) = float_of_bits((static_cast<std::uint32_t>(i) << 16) | (rng() & 0xffffu));
  Kokkos::View<float*, trimix_test::ExecSpace> in("in", n);
  Kokkos::deep_copy(in, in_h);
  Kokkos::View<float*, trimix_test::ExecSpace> out("out", n);
  Kokkos::View<T*, trimix_test::ExecSpace> stored("stored", n);
  Kokkos::parallel_for("trimix_test::element_round_trip",
                       Kokkos::RangePolicy<trimix_test::ExecSpace>(0, n),
                       RoundTripKernel<T>{in, out, stored});
  auto out_h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace{}, out);
  Mismatches m;
  for (int i = 0; i < n; ++i) {
    const float want = element_traits<T>::to_float(element_traits<T>::from_float(in_h(i)));
    const bool same = std::isnan(want) ? std::isnan(out_h(i))
                                       : bits_of_float(want) == bits_of_float(out_h(i));
    if (!same) m.add("input " + hex(bits_of_float(in_h(i))) + ": kernel " +
                     hex(bits_of_float(out_h(i))) + " host " + hex(bits_of_float(want)));
  }
  INFO(m.first);
  CHECK(m.count == 0);
}
