// The AMX host engine's operand layouts (engine_host_amx.hpp): K as the word transpose that
// tdpbf16ps takes as its right operand, V's key pairs interleaved, zeros past the tile's keys.
// Needs AVX-512 BW and BF16 (the packing's instructions), not AMX.
#include "test_support.hpp"

#include <trimix/engine.hpp>

#include <catch2/catch_test_macros.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#if TRIMIX_HAS_HOST_AMX

namespace {

using trimix::index_t;
namespace amx = trimix::impl::host_amx;

bool has_packing_instructions() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512bf16");
}

std::vector<trimix::bf16> random_rows(std::mt19937_64& rng, index_t rows, index_t stride) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<trimix::bf16> out(std::size_t(rows * stride));
  for (auto& x : out) x = trimix::bf16(normal(rng));
  return out;
}

std::uint16_t bits(trimix::bf16 x) {
  std::uint16_t b;
  std::memcpy(&b, &x, 2);
  return b;
}

}  // namespace

TEST_CASE("host AMX packing: K as 32-bit word transpose, V as interleaved key pairs", "[engine][amx]") {
  if (!has_packing_instructions()) SKIP("no AVX512-BW / AVX512-BF16 on this CPU");
  std::mt19937_64 rng(99);
  const index_t tile = amx::kv_tile;
  for (const index_t dim : {32, 64, 96, 128, 256}) {
    for (const index_t keys : {tile, index_t(37), index_t(1), index_t(16)}) {
      CAPTURE(dim, keys);
      const index_t stride = 3 * dim + 32;  // rows of a (batch, seq, heads, dim) view: not dim apart
      // Only `keys` rows exist: the packing must not read past them (a sanitizer build would see).
      const auto k = random_rows(rng, keys, stride), v = random_rows(rng, keys, stride);
      std::vector<std::uint16_t> kp(std::size_t(tile * dim), 0xFFFF), vp(std::size_t(tile * dim), 0xFFFF);
      amx::pack_k(k.data(), stride, keys, dim, reinterpret_cast<std::uint32_t*>(kp.data()), tile);
      amx::pack_v(v.data(), stride, keys, dim, vp.data());
      std::size_t k_wrong = 0, v_wrong = 0;
      for (index_t key = 0; key < tile; ++key)
        for (index_t d = 0; d < dim; ++d) {
          const std::uint16_t k_expected = key < keys ? bits(k[std::size_t(key * stride + d)]) : 0;
          const std::uint16_t v_expected = key < keys ? bits(v[std::size_t(key * stride + d)]) : 0;
          // kp[d / 2][key][d % 2]; vp[key / 2][d][key % 2]
          k_wrong += kp[std::size_t(((d / 2) * tile + key) * 2 + d % 2)] != k_expected;
          v_wrong += vp[std::size_t(((key / 2) * dim + d) * 2 + key % 2)] != v_expected;
        }
      CHECK(k_wrong == 0);
      CHECK(v_wrong == 0);
    }
  }
}

#endif  // TRIMIX_HAS_HOST_AMX
