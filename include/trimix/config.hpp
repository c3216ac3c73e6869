#pragma once
/// \file config.hpp
/// Version, index type, function qualifiers and the argument-checking macro shared by every header.

#include <Kokkos_Core.hpp>

#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

#define TRIMIX_VERSION_MAJOR 0
#define TRIMIX_VERSION_MINOR 1
#define TRIMIX_VERSION_PATCH 0
#define TRIMIX_VERSION_STRING "0.1.0"

namespace trimix::impl {
/// Whether the user turned one of trimix's run-time switches off (TRIMIX_HOST_AVX512,
/// TRIMIX_HOST_FUSED, TRIMIX_HOST_BF16DP, TRIMIX_HOST_AMX, TRIMIX_CUDA_WS): the variable is set to
/// a value starting with '0'. Callers read it once per process.
inline bool switched_off(const char* name) {
  const char* value = std::getenv(name);
  return value && value[0] == '0';
}
}  // namespace trimix::impl

/// Device-callable inline function (host and every Kokkos device backend).
#define TRIMIX_FUNCTION KOKKOS_INLINE_FUNCTION

/// Device-callable, forced inline (hot tile math).
#define TRIMIX_FORCEINLINE KOKKOS_FORCEINLINE_FUNCTION

/// Full unrolling of a small fixed-trip loop over a register array in device code (a rolled loop
/// puts the array in local memory); host compilers decide themselves (GCC warns on the pragma).
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
#define TRIMIX_DEVICE_UNROLL _Pragma("unroll")
#else
#define TRIMIX_DEVICE_UNROLL
#endif

namespace trimix {

/// Positions, key indices and tile indices. 64-bit: N x N products overflow 32 bits at 64K.
using index_t = std::int64_t;

namespace impl {

/// Builds the exception text only on failure: `trimix::<api>: <message>`.
template <class... Parts>
[[noreturn]] inline void throw_invalid_argument(const char* api, const Parts&... parts) {
  std::ostringstream os;
  os << "trimix::" << api << ": ";
  (os << ... << parts);
  throw std::invalid_argument(os.str());
}

}  // namespace impl
}  // namespace trimix

/// True-to-pass argument check: throws std::invalid_argument("trimix::<api>: <message...>") when
/// `cond` is false. The message parts are streamed only on failure.
#define TRIMIX_REQUIRE(api, cond, ...)                                \
  do {                                                                \
    if (!(cond)) ::trimix::impl::throw_invalid_argument(api, __VA_ARGS__); \
  } while (false)
