#pragma once
/// \file element.hpp
/// Element types and the `element_traits` customisation point (DESIGN.md section 4).
///
/// Kernels load and store elements of type T and compute in float (accumulation is fp32 for every
/// T); the reference accumulates in double. They reach T only through element_traits<T>, so a
/// new element type needs one specialisation and nothing else.
///
/// trimix carries its own 16-bit storage types, `bf16` and `fp16`, because Kokkos 3.4 has no
/// bfloat16 and its host-only builds make `Kokkos::Experimental::half_t` a typedef of float
/// (KOKKOS_HALF_T_IS_FLOAT), which would silently skip 16-bit rounding on the CPU. Their layouts
/// match CUDA's __nv_bfloat16 / __half and HIP's bfloat16 / __half (one 16-bit word, alignment 2),
/// so a tile engine may reinterpret a pointer to them. Conversions are pure integer bit
/// manipulation: identical on every backend, independent of FTZ/DAZ and fast-math flags.

#include <trimix/config.hpp>

#include <cstdint>
#include <type_traits>

namespace trimix {
namespace impl {

// Bit casts usable in device code. std::bit_cast is C++20 and std::memcpy is not device-callable
// on every backend; __builtin_memcpy is (GCC, Clang, nvcc, hipcc) and compiles to a register move.
// (A union read went through memory on GCC and kept the softmax loop from vectorising.)
TRIMIX_FORCEINLINE std::uint32_t bits_of(float x) {
  std::uint32_t u;
  __builtin_memcpy(&u, &x, sizeof u);
  return u;
}
TRIMIX_FORCEINLINE float float_from_bits(std::uint32_t x) {
  float f;
  __builtin_memcpy(&f, &x, sizeof f);
  return f;
}
TRIMIX_FORCEINLINE std::uint64_t bits_of(double x) {
  std::uint64_t u;
  __builtin_memcpy(&u, &x, sizeof u);
  return u;
}

/// float bits -> bfloat16 bits, round to nearest, ties to even. bf16 is the top half of a float,
/// so adding 0x7fff plus the kept LSB rounds in one step; a carry out of the fraction bumps the
/// exponent, and past the largest finite value it lands exactly on inf. NaN: top payload bits
/// kept, quiet bit set (truncation alone could turn a NaN into inf).
TRIMIX_FORCEINLINE std::uint16_t float_bits_to_bf16(std::uint32_t u) {
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x0040u);
  return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/// float bits -> IEEE binary16 bits, round to nearest, ties to even, with binary16 subnormals;
/// |x| >= 65520 gives inf. NaN: top payload bits kept, quiet bit set.
TRIMIX_FORCEINLINE std::uint16_t float_bits_to_fp16(std::uint32_t u) {
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  const std::uint32_t mag = u & 0x7fffffffu;
  if (mag >= 0x7f800000u) {  // inf or NaN
    const std::uint32_t nan = mag > 0x7f800000u ? (0x0200u | ((mag >> 13) & 0x03ffu)) : 0u;
    return static_cast<std::uint16_t>(sign | 0x7c00u | nan);
  }
  // Biased binary16 exponent of the float's leading bit (float bias 127, binary16 bias 15).
  const int exp16 = static_cast<int>(mag >> 23) - 112;
  if (exp16 >= 31) return static_cast<std::uint16_t>(sign | 0x7c00u);
  // 24-bit significand (a float subnormal has no hidden bit; it rounds to zero below anyway).
  const std::uint32_t sig = (mag & 0x007fffffu) | (mag >= 0x00800000u ? 0x00800000u : 0u);
  // Normal results keep 11 of the 24 bits; subnormal results lose one more per exponent step.
  const int shift = exp16 >= 1 ? 13 : 14 - exp16;
  if (shift > 24) return static_cast<std::uint16_t>(sign);  // below half the smallest subnormal
  std::uint32_t kept = sig >> shift;
  const std::uint32_t rest = sig & ((1u << shift) - 1u);
  const std::uint32_t half = 1u << (shift - 1);
  kept += (rest > half || (rest == half && (kept & 1u))) ? 1u : 0u;
  // kept carries the hidden bit, so adding it to (exp16 - 1) << 10 sets the exponent; a carry out
  // of the fraction moves to the next binade, and from the top binade to inf (0x7c00). A
  // subnormal that rounds up to 0x400 is the smallest normal, also correctly encoded.
  const std::uint32_t base = exp16 >= 1 ? static_cast<std::uint32_t>(exp16 - 1) << 10 : 0u;
  return static_cast<std::uint16_t>(sign | (base + kept));
}

/// IEEE binary16 bits -> float bits, exact (NaN payload and its quiet bit kept as they are).
TRIMIX_FORCEINLINE std::uint32_t fp16_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t frac = h & 0x03ffu;
  if (exp == 0x1fu) return sign | 0x7f800000u | (frac << 13);
  if (exp != 0u) return sign | ((exp + 112u) << 23) | (frac << 13);
  if (frac == 0u) return sign;
  // Subnormal frac * 2^-24: normalise so the leading one becomes the float's hidden bit.
  std::uint32_t exp32 = 113u;  // float biased exponent of 2^-14, the binary16 subnormal binade
  while ((frac & 0x0400u) == 0u) {
    frac <<= 1;
    --exp32;
  }
  return sign | (exp32 << 23) | ((frac & 0x03ffu) << 13);
}

/// double -> float bits, rounded to odd: truncate, then set the last bit if anything was cut off
/// (|x| beyond the float range gives the largest finite float, which is odd). Rounding to odd at
/// a precision of at least p + 2 bits and then to nearest-even at p bits equals rounding to
/// nearest-even at p bits directly (Boldo and Melquiond), so double -> float -> bf16/fp16 through
/// this step rounds correctly, where double -> float -> bf16 with two nearest roundings would not.
TRIMIX_FORCEINLINE std::uint32_t double_to_float_bits_round_to_odd(double x) {
  const std::uint64_t u = bits_of(x);
  const std::uint32_t sign = static_cast<std::uint32_t>(u >> 32) & 0x80000000u;
  const std::uint64_t mag = u & 0x7fffffffffffffffull;
  if (mag >= 0x7ff0000000000000ull) {  // inf or NaN
    const std::uint32_t nan =
        mag > 0x7ff0000000000000ull
            ? 0x00400000u | (static_cast<std::uint32_t>(mag >> 29) & 0x003fffffu)
            : 0u;
    return sign | 0x7f800000u | nan;
  }
  // Biased float exponent of the double's leading bit (double bias 1023, float bias 127).
  const int exp32 = static_cast<int>(mag >> 52) - 896;
  if (exp32 >= 255) return sign | 0x7f7fffffu;
  const std::uint64_t sig =
      (mag & 0x000fffffffffffffull) | (mag >= 0x0010000000000000ull ? 0x0010000000000000ull : 0u);
  const int shift = exp32 >= 1 ? 29 : 30 - exp32;
  if (shift > 53) return sign | (sig != 0u ? 1u : 0u);
  const std::uint32_t kept = static_cast<std::uint32_t>(sig >> shift);
  const std::uint32_t sticky = (sig & ((std::uint64_t{1} << shift) - 1u)) != 0u ? 1u : 0u;
  const std::uint32_t base = exp32 >= 1 ? static_cast<std::uint32_t>(exp32 - 1) << 23 : 0u;
  return sign | ((base + kept) | sticky);
}

}  // namespace impl

/// bfloat16 storage (1 sign, 8 exponent, 7 fraction bits): the top half of a float. Arithmetic is
/// done in float after to_float(); conversions from float and double round to nearest-even.
struct bf16 {
  std::uint16_t bits;

  /// Trivial, so Views of bf16 value-initialise to +0 and the type stays trivially copyable.
  bf16() = default;
  TRIMIX_FUNCTION explicit bf16(float x) : bits(impl::float_bits_to_bf16(impl::bits_of(x))) {}
  /// Rounds once, directly from double (no double rounding through float).
  TRIMIX_FUNCTION explicit bf16(double x)
      : bits(impl::float_bits_to_bf16(impl::double_to_float_bits_round_to_odd(x))) {}

  TRIMIX_FUNCTION static constexpr bf16 from_bits(std::uint16_t b) {
    bf16 r{};
    r.bits = b;
    return r;
  }
  /// Exact: every bf16 value is a float.
  TRIMIX_FUNCTION float to_float() const {
    return impl::float_from_bits(static_cast<std::uint32_t>(bits) << 16);
  }
  TRIMIX_FUNCTION explicit operator float() const { return to_float(); }
};

/// IEEE 754 binary16 storage (1 sign, 5 exponent, 10 fraction bits; max finite 65504). Arithmetic
/// is done in float after to_float(); conversions from float and double round to nearest-even,
/// with subnormals, and overflow to inf.
struct fp16 {
  std::uint16_t bits;

  /// Trivial, so Views of fp16 value-initialise to +0 and the type stays trivially copyable.
  fp16() = default;
  TRIMIX_FUNCTION explicit fp16(float x) : bits(impl::float_bits_to_fp16(impl::bits_of(x))) {}
  /// Rounds once, directly from double (no double rounding through float).
  TRIMIX_FUNCTION explicit fp16(double x)
      : bits(impl::float_bits_to_fp16(impl::double_to_float_bits_round_to_odd(x))) {}

  TRIMIX_FUNCTION static constexpr fp16 from_bits(std::uint16_t b) {
    fp16 r{};
    r.bits = b;
    return r;
  }
  /// Exact: every binary16 value is a float.
  TRIMIX_FUNCTION float to_float() const {
    return impl::float_from_bits(impl::fp16_bits_to_float(bits));
  }
  TRIMIX_FUNCTION explicit operator float() const { return to_float(); }
};

static_assert(sizeof(bf16) == 2 && alignof(bf16) == 2, "trimix::bf16 must match __nv_bfloat16");
static_assert(sizeof(fp16) == 2 && alignof(fp16) == 2, "trimix::fp16 must match __half");
static_assert(std::is_trivial_v<bf16> && std::is_standard_layout_v<bf16>,
              "trimix::bf16 must be a trivial standard-layout type");
static_assert(std::is_trivial_v<fp16> && std::is_standard_layout_v<fp16>,
              "trimix::fp16 must be a trivial standard-layout type");

namespace impl {

/// True for Kokkos::Experimental::half_t where it is its own type. Where it is a typedef of float
/// (host-only builds), element_traits<float> already covers it.
template <class T>
inline constexpr bool is_kokkos_half_v =
    std::is_same_v<T, Kokkos::Experimental::half_t> && !std::is_same_v<T, float>;

/// Same for Kokkos::Experimental::bhalf_t. KOKKOS_BHALF_T_IS_FLOAT (true or false) is defined
/// exactly when Kokkos declares bhalf_t (not in 3.4; in every 4.x). Excluding half_t too keeps
/// the two specialisations below from ever matching the same type.
#if defined(KOKKOS_BHALF_T_IS_FLOAT)
template <class T>
inline constexpr bool is_kokkos_bhalf_v = std::is_same_v<T, Kokkos::Experimental::bhalf_t> &&
                                          !std::is_same_v<T, float> &&
                                          !std::is_same_v<T, Kokkos::Experimental::half_t>;
#else
template <class T>
inline constexpr bool is_kokkos_bhalf_v = false;
#endif

/// Traits of Kokkos' own 16-bit types, selected by SFINAE because whether they are distinct from
/// float is only known once Kokkos is configured; empty for every other type. Conversions go
/// through Kokkos' casts (its CUDA from_double rounds through float, so it may be one unit of
/// the last place off at exact ties; trimix::fp16 / bf16 round once).
template <class T, class = void>
struct kokkos_element_traits {};

template <class T>
struct kokkos_element_traits<T, std::enable_if_t<is_kokkos_half_v<T>>> {
  using storage = T;
  static constexpr const char* name = "f16";
  static constexpr double epsilon = 0x1p-11;
  TRIMIX_FORCEINLINE static float to_float(T x) {
    return Kokkos::Experimental::cast_from_half<float>(x);
  }
  TRIMIX_FORCEINLINE static T from_float(float x) { return Kokkos::Experimental::cast_to_half(x); }
  TRIMIX_FORCEINLINE static double to_double(T x) { return static_cast<double>(to_float(x)); }
  TRIMIX_FORCEINLINE static T from_double(double x) {
    return Kokkos::Experimental::cast_to_half(x);
  }
};

#if defined(KOKKOS_BHALF_T_IS_FLOAT)
template <class T>
struct kokkos_element_traits<T, std::enable_if_t<is_kokkos_bhalf_v<T>>> {
  using storage = T;
  static constexpr const char* name = "bf16";
  static constexpr double epsilon = 0x1p-8;
  TRIMIX_FORCEINLINE static float to_float(T x) {
    return Kokkos::Experimental::cast_from_bhalf<float>(x);
  }
  TRIMIX_FORCEINLINE static T from_float(float x) {
    return Kokkos::Experimental::cast_to_bhalf(x);
  }
  TRIMIX_FORCEINLINE static double to_double(T x) { return static_cast<double>(to_float(x)); }
  TRIMIX_FORCEINLINE static T from_double(double x) {
    return Kokkos::Experimental::cast_to_bhalf(x);
  }
};
#endif

}  // namespace impl

/// Customisation point: how kernels read and write an element type T. A specialisation provides
///   using storage = T;                        // what Views hold
///   static constexpr const char* name;        // "f32", "f64", "f16", "bf16"
///   static constexpr double epsilon;          // unit roundoff u = 2^-p (p = significand bits)
///   static float to_float(T);                 // device-callable; exact for 16-bit types
///   static T from_float(float);               // device-callable; round to nearest-even
///   static double to_double(T);               // for the double-accumulating reference
///   static T from_double(double);
/// The primary template is empty except for Kokkos' own half types (see above), so
/// is_element_v<T> is false for every type nobody specialised.
template <class T>
struct element_traits : impl::kokkos_element_traits<T> {};

/// Views of const T (inputs) use the traits of T.
template <class T>
struct element_traits<const T> : element_traits<T> {};

template <>
struct element_traits<float> {
  using storage = float;
  static constexpr const char* name = "f32";
  static constexpr double epsilon = 0x1p-24;
  TRIMIX_FORCEINLINE static float to_float(float x) { return x; }
  TRIMIX_FORCEINLINE static float from_float(float x) { return x; }
  TRIMIX_FORCEINLINE static double to_double(float x) { return static_cast<double>(x); }
  TRIMIX_FORCEINLINE static float from_double(double x) { return static_cast<float>(x); }
};

template <>
struct element_traits<double> {
  using storage = double;
  static constexpr const char* name = "f64";
  static constexpr double epsilon = 0x1p-53;
  // Kernels compute in float for every element type (DESIGN.md section 2).
  TRIMIX_FORCEINLINE static float to_float(double x) { return static_cast<float>(x); }
  TRIMIX_FORCEINLINE static double from_float(float x) { return static_cast<double>(x); }
  TRIMIX_FORCEINLINE static double to_double(double x) { return x; }
  TRIMIX_FORCEINLINE static double from_double(double x) { return x; }
};

template <>
struct element_traits<bf16> {
  using storage = bf16;
  static constexpr const char* name = "bf16";
  static constexpr double epsilon = 0x1p-8;
  TRIMIX_FORCEINLINE static float to_float(bf16 x) { return x.to_float(); }
  TRIMIX_FORCEINLINE static bf16 from_float(float x) { return bf16(x); }
  TRIMIX_FORCEINLINE static double to_double(bf16 x) { return static_cast<double>(x.to_float()); }
  TRIMIX_FORCEINLINE static bf16 from_double(double x) { return bf16(x); }
};

template <>
struct element_traits<fp16> {
  using storage = fp16;
  static constexpr const char* name = "f16";
  static constexpr double epsilon = 0x1p-11;
  TRIMIX_FORCEINLINE static float to_float(fp16 x) { return x.to_float(); }
  TRIMIX_FORCEINLINE static fp16 from_float(float x) { return fp16(x); }
  TRIMIX_FORCEINLINE static double to_double(fp16 x) { return static_cast<double>(x.to_float()); }
  TRIMIX_FORCEINLINE static fp16 from_double(double x) { return fp16(x); }
};

namespace impl {

template <class T, class = void>
struct is_element : std::false_type {};

template <class T>
struct is_element<
    T, std::void_t<typename element_traits<T>::storage, decltype(element_traits<T>::name),
                   decltype(element_traits<T>::epsilon),
                   decltype(element_traits<T>::to_float(std::declval<T>())),
                   decltype(element_traits<T>::from_float(0.0f)),
                   decltype(element_traits<T>::to_double(std::declval<T>())),
                   decltype(element_traits<T>::from_double(0.0))>> : std::true_type {};

}  // namespace impl

/// True when element_traits<T> provides the whole vocabulary above.
template <class T>
inline constexpr bool is_element_v = impl::is_element<T>::value;

/// "f32", "f64", "f16" or "bf16" (for messages, test names and benchmark records).
template <class T>
constexpr const char* element_name() {
  static_assert(is_element_v<T>,
                "trimix::element_name: T is not an element type; specialise "
                "trimix::element_traits<T> (storage, name, epsilon, to_float, from_float, "
                "to_double, from_double)");
  return element_traits<T>::name;
}

}  // namespace trimix
