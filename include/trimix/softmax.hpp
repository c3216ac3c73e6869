#pragma once
/// \file softmax.hpp
/// The arithmetic of the online softmax, shared by every tile engine and the combine pass.
///
/// Scores are kept in base 2: q is pre-scaled by scale * log2(e), so exp(scale * q.k - m) becomes
/// exp2(s - m) and one multiply per score disappears. A row's state is (m, l, acc): running max,
/// running sum of exp2(s - m) and unnormalised output. Edge cases, where they arise:
///   - a row that has seen only masked keys keeps m = -inf, l = 0, acc = 0; it must not compute
///     exp2(-inf - -inf) = NaN, so the rescale factor of such a row is defined as 1 (nothing to
///     rescale) and its probabilities as 0;
///   - finishing a row with l = 0 gives o = 0 and lse = -inf (never 0/0);
///   - LSE leaves in natural log: lse = (m + log2 l) * ln 2.

#include <trimix/config.hpp>
#include <trimix/element.hpp>

#include <cmath>
#include <cstdint>
#include <limits>

namespace trimix::impl {

constexpr float log2e = 1.4426950408889634f;
constexpr float ln2 = 0.6931471805599453f;
constexpr float minus_infinity = -std::numeric_limits<float>::infinity();

/// 2^x for x <= 0 in fp32, relative error about 1e-7, and 0 for x < -126 (including -inf).
/// Select-free so that GCC vectorises the softmax loop (a float compare-and-select in it made GCC
/// keep a branch, "control flow in loop"): for x <= 0, +0 included, the unsigned bit patterns are
/// ordered like -x, so the clamp and the final cut are unsigned integer min / compare.
TRIMIX_FORCEINLINE float exp2_nonpositive(float x) {
  constexpr std::uint32_t limit = 0xC2FC0000u;  // bits of -126.0f
  const std::uint32_t x_bits = bits_of(x);
  const float clamped = float_from_bits(x_bits < limit ? x_bits : limit);  // max(x, -126)
  const std::int32_t truncated = std::int32_t(clamped);                     // toward zero
  const std::int32_t whole = truncated - std::int32_t(float(truncated) > clamped);  // floor
  const float f = clamped - float(whole);                                   // in [0, 1)
  // Least-squares fit of 2^f on [0, 1) in relative error (degree 6): 1.9e-9 in exact
  // arithmetic, 1.0e-7 evaluated in fp32.
  float poly = 2.169060899e-4f;
  poly = poly * f + 1.244308194e-3f;
  poly = poly * f + 9.678472765e-3f;
  poly = poly * f + 5.548352376e-2f;
  poly = poly * f + 2.402298003e-1f;
  poly = poly * f + 6.931470037e-1f;
  poly = poly * f + 1.0f;
  // 2^whole * poly by adding whole to the exponent field (unsigned: no signed-shift UB).
  const std::uint32_t scaled = bits_of(poly) + std::uint32_t(whole) * (std::uint32_t(1) << 23);
  const std::uint32_t keep = 0u - std::uint32_t(x_bits <= limit);  // all ones unless x < -126
  return float_from_bits(scaled & keep);
}

/// Factor that rescales a row's sum and output when its running max moves from m_old to m_new.
TRIMIX_FORCEINLINE float rescale_factor(float m_old, float m_new) {
  return m_new == minus_infinity ? 1.0f : exp2_nonpositive(m_old - m_new);
}

/// Natural-log LSE of a finished row (base-2 state), -inf for a row that saw nothing, NaN for a
/// row whose sum is NaN (NaN in Q or K: `!(l <= 0)`, not `l > 0`, so that it propagates).
TRIMIX_FORCEINLINE float finish_lse(float m, float l) {
  return !(l <= 0.0f) ? (m + std::log2(l)) * ln2 : minus_infinity;
}

}  // namespace trimix::impl
