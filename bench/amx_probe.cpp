// What the AMX tile unit of this CPU sustains in the patterns the AMX attention engine uses
// (engine_host_amx.hpp): the ceiling its numbers are read against, and where its time may go.
//
//   amx_probe [--threads N] [--seconds S]
//
// Each case runs `tdpbf16ps` on four independent fp32 result tiles (the engine's S and P V steps)
// and prints GFLOP/s on one thread and on N threads (default: every hardware thread), each thread
// with its own buffers:
//   dots only        operands loaded once: the tile unit's own rate
//   L1 operands      per step one A tile and four B tiles loaded from a 5 KB buffer (the S step)
//   L2 operands      the same from a 640 KB buffer, a new part per step (packed K/V re-read per block)
//   vector-stored A  the A tile (P) written by AVX-512 stores right before its tile load
//   stored results   the four results stored and read back by vector loads every 4 steps (S to softmax)
//   2x2 L1           two A and two B tiles per four dots, each read by two (the paired row groups)
//   2 results, 2 sets two results; each step loads one A and two B tiles into the register set the
//                    step before last used (A in 2/3, B in 4-5/6-7), so no load waits for a dot
//                    that was just issued to read its register
// Needs AMX (Sapphire Rapids or newer, Linux 5.16+); prints why not otherwise.

#include <trimix/engine.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#if TRIMIX_HAS_HOST_AMX

namespace {

using trimix::index_t;
using Tiles = trimix::impl::host_amx::HardwareTiles;

enum class Case { dots, l1, l2, vector_a, stored_results, two_by_two, double_buffered };

// GCC 12 reports the intrinsics' own _mm512_undefined_* sources as uninitialized once inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

__attribute__((target("avx512f,avx512bw"))) double run_case(Case which, double seconds) {
  constexpr index_t l2_bytes = 640 * 1024;
  std::vector<std::uint16_t> big(std::size_t(l2_bytes / 2));
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = std::uint16_t(0x3F80 + (i % 7));  // ~1.0 bf16
  alignas(64) static thread_local float results[4][16 * 16];
  const std::uint16_t* base = big.data();
  Tiles::configure();
  std::memset(results, 0, sizeof results);
  Tiles::load<4>(base, 64), Tiles::load<5>(base, 64), Tiles::load<6>(base, 64), Tiles::load<7>(base, 64);
  Tiles::zero<0>(), Tiles::zero<1>(), Tiles::zero<2>(), Tiles::zero<3>();
  const auto start = std::chrono::steady_clock::now();
  std::int64_t steps = 0;
  float sink = 0.0f;
  while (true) {
    for (int rep = 0; rep < 256; ++rep, ++steps) {
      const std::uint16_t* part = base;
      switch (which) {
        case Case::dots: break;
        case Case::l1: part = base + (steps % 5) * 512; break;
        case Case::l2: part = base + (steps % (l2_bytes / 5120)) * 2560; break;
        case Case::vector_a: {
          std::uint16_t* a = big.data() + (steps % 2) * 512;
          const __m512i v = _mm512_set1_epi16(short(0x3F80 + (steps & 3)));
          for (int r = 0; r < 16; ++r) _mm512_storeu_si512(static_cast<void*>(a + 32 * r), v);
          part = a;
          break;
        }
        case Case::stored_results: part = base + (steps % 5) * 512; break;
        case Case::two_by_two:
        case Case::double_buffered: break;  // below
      }
      if (which == Case::two_by_two) {
        part = base + (steps % 5) * 512;
        Tiles::load<4>(part, 64), Tiles::load<6>(part + 1024, 64);
        Tiles::dot<0, 4, 6>();
        Tiles::load<7>(part + 1536, 64);
        Tiles::dot<1, 4, 7>();
        Tiles::load<5>(part + 512, 64);
        Tiles::dot<2, 5, 6>(), Tiles::dot<3, 5, 7>();
        continue;
      }
      if (which == Case::double_buffered) {  // two results (0, 1): half the products per step
        part = base + (steps % 5) * 512;
        if (steps % 2 == 0) {
          Tiles::load<2>(part, 64), Tiles::load<4>(part + 512, 64), Tiles::load<5>(part + 1024, 64);
          Tiles::dot<0, 2, 4>(), Tiles::dot<1, 2, 5>();
        } else {
          Tiles::load<3>(part, 64), Tiles::load<6>(part + 512, 64), Tiles::load<7>(part + 1024, 64);
          Tiles::dot<0, 3, 6>(), Tiles::dot<1, 3, 7>();
        }
        continue;
      }
      if (which != Case::dots) {
        Tiles::load<4>(part, 64);
        Tiles::load<5>(part + 512, 64), Tiles::load<6>(part + 1024, 64), Tiles::load<7>(part + 1536, 64);
      }
      Tiles::dot<0, 4, 5>(), Tiles::dot<1, 4, 6>(), Tiles::dot<2, 4, 7>();
      if (which != Case::dots) Tiles::load<5>(part + 2048, 64);
      Tiles::dot<3, 4, 5>();
      if (which == Case::stored_results && steps % 4 == 3) {
        Tiles::store<0>(results[0], 64), Tiles::store<1>(results[1], 64);
        Tiles::store<2>(results[2], 64), Tiles::store<3>(results[3], 64);
        __m512 acc = _mm512_setzero_ps();
        for (int t = 0; t < 4; ++t)
          for (int r = 0; r < 16; ++r) acc = _mm512_max_ps(acc, _mm512_load_ps(results[t] + 16 * r));
        sink += _mm512_reduce_max_ps(acc);
      }
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed >= seconds) {
      Tiles::store<0>(results[0], 64);
      Tiles::release();
      if (sink < -1.0f || results[0][0] < -1.0f) std::printf(" ");  // keep the work observable
      const double dots_per_step = which == Case::double_buffered ? 2 : 4;
      return double(steps) * dots_per_step * (16.0 * 16 * 32 * 2) / elapsed * 1e-9;
    }
  }
}

#pragma GCC diagnostic pop

}  // namespace

int main(int argc, char** argv) {
  int threads = int(std::thread::hardware_concurrency());
  double seconds = 0.5;
  for (int a = 1; a + 1 < argc; a += 2) {
    const std::string arg = argv[a];
    if (arg == "--threads") threads = std::atoi(argv[a + 1]);
    else if (arg == "--seconds") seconds = std::atof(argv[a + 1]);
  }
  if (trimix::impl::host_amx::mode() != trimix::impl::host_amx::Mode::hardware) {
    std::printf("amx_probe: no AMX here (CPU without AMX-TILE/AMX-BF16, Linux refused the tile state, or TRIMIX_HOST_AMX=0)\n");
    return 0;
  }
  const std::pair<Case, const char*> cases[] = {{Case::dots, "dots only"},
                                                {Case::l1, "L1 operands"},
                                                {Case::l2, "L2 operands"},
                                                {Case::vector_a, "vector-stored A"},
                                                {Case::stored_results, "stored results"},
                                                {Case::two_by_two, "2x2 L1"},
                                                {Case::double_buffered, "2 results, 2 sets"}};
  std::printf("%-16s %14s %22s\n", "case", "GFLOP/s 1 thr", "GFLOP/s per thread of N");
  for (const auto& [which, name] : cases) {
    const double one = run_case(which, seconds);
    std::vector<double> each(std::size_t(threads), 0.0);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { each[std::size_t(t)] = run_case(which, seconds); });
    for (auto& th : pool) th.join();
    double total = 0.0;
    for (double g : each) total += g;
    std::printf("%-16s %14.0f %14.0f (N = %d)\n", name, one, total / threads, threads);
  }
  return 0;
}

#else
int main() {
  std::printf("amx_probe: built without the AMX engine (not x86-64 Linux GCC/Clang)\n");
  return 0;
}
#endif
