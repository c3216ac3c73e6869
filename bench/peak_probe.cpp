// fp32 FMA peak of this machine, per core and for all threads: the ceiling the attention benchmark
// is read against.
//
// The probe keeps `accumulators` independent vectors of `lanes` floats and applies one fused
// multiply-add to each per step, so there are enough independent FMAs in flight to cover the FMA
// latency on every pipe. The loops are plain C++ with compile-time bounds (std::fma, so that FMAs
// are emitted whatever -ffp-contract says); built with -O3 -march=native they compile to the widest
// FMA instructions the CPU has. No Kokkos: std::thread only, one thread per requested core.
//
//   peak_probe [--threads N] [--seconds S] [--csv path]
//
// Prints GFLOP/s of one thread and of N threads (default: every hardware thread); with --csv, also
// appends one line "device,threads,gflops_per_core,gflops_total,isa" (header if the file is new).

#include "bench_common.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

/// One vector register of floats: the loops below compile to one FMA instruction per chain and step.
#if defined(__AVX512F__)
constexpr int lanes = 16;
#elif defined(__AVX__)
constexpr int lanes = 8;
#else
constexpr int lanes = 4;
#endif
constexpr std::int64_t steps_per_round = 1 << 16;
constexpr double flops_per_fma = 2.0;

/// One step: one FMA on every lane of every accumulator. The accumulators are written out as
/// separate statements in one loop over lanes (a fold over their indices), so the compiler
/// vectorises the lanes and keeps the chains independent; a loop over accumulators instead
/// invites loop interchange (GCC's -O3 moves the step loop inside, leaving one latency-bound chain).
template <int Chains, std::size_t... A>
inline void fma_step(float (&acc)[Chains][lanes], const float (&mul)[lanes], const float (&add)[lanes],
                     std::index_sequence<A...>) {
  for (int c = 0; c < lanes; ++c) ((acc[A][c] = std::fma(acc[A][c], mul[c], add[c])), ...);
}

/// Runs `rounds` x steps_per_round steps of Chains x lanes FMAs; returns a value that depends on
/// every accumulator so that the compiler cannot drop the work. Chains + 2 vectors must fit the
/// register file, or the chains spill and the probe measures stores (12 chains of 16 floats, i.e.
/// 24 AVX2 registers of 16, read half the peak until 2026-11-29).
template <int Chains>
float fma_kernel(std::int64_t rounds, float seed) {
  float acc[Chains][lanes];
  float mul[lanes], add[lanes];
  for (int c = 0; c < lanes; ++c) {
    mul[c] = 0.999999f - 1e-7f * float(c);  // |mul| < 1: the accumulators converge, no overflow
    add[c] = 1e-6f * float(c + 1);
  }
  for (int a = 0; a < Chains; ++a)
    for (int c = 0; c < lanes; ++c) acc[a][c] = seed + float(a * lanes + c);
  for (std::int64_t r = 0; r < rounds; ++r) {
    for (std::int64_t s = 0; s < steps_per_round; ++s)
      fma_step<Chains>(acc, mul, add, std::make_index_sequence<Chains>{});
    // An opaque barrier per round: keeps the accumulators in registers across the inner loop
    // while stopping the compiler from collapsing rounds algebraically.
    asm volatile("" : : "g"(&acc[0][0]) : "memory");
  }
  float sum = 0.0f;
  for (int a = 0; a < Chains; ++a)
    for (int c = 0; c < lanes; ++c) sum += acc[a][c];
  return sum;
}

/// The chain counts tried: FMA latency (4-5) x FMA pipes (1-2) needs 4-10 independent chains; the
/// best of them is the peak. More than the register file holds would measure spills.
using KernelFn = float (*)(std::int64_t, float);
struct ChainConfig {
  int chains;
  KernelFn kernel;
};
#if defined(__AVX512F__)
constexpr ChainConfig chain_configs[] = {{8, fma_kernel<8>}, {12, fma_kernel<12>}, {16, fma_kernel<16>}, {24, fma_kernel<24>}};
#else
constexpr ChainConfig chain_configs[] = {{6, fma_kernel<6>}, {8, fma_kernel<8>}, {10, fma_kernel<10>}, {12, fma_kernel<12>}};
#endif

double flops_of(int chains, std::int64_t rounds) {
  return double(rounds) * double(steps_per_round) * chains * lanes * flops_per_fma;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Rounds one thread needs for about `seconds` of work.
std::int64_t calibrate(const ChainConfig& config, double seconds) {
  std::int64_t rounds = 1;
  for (;;) {
    const double t0 = now_seconds();
    volatile float sink = config.kernel(rounds, 1.0f);
    (void)sink;
    const double elapsed = now_seconds() - t0;
    if (elapsed > 0.05) return std::max<std::int64_t>(1, std::int64_t(double(rounds) * seconds / elapsed));
    rounds *= 2;
  }
}

/// GFLOP/s of `threads` threads each running `rounds`, best of `repeat` (all threads start together;
/// the time is the slowest thread's).
double measure(const ChainConfig& config, int threads, std::int64_t rounds, int repeat) {
  double best = 0;
  for (int rep = 0; rep < repeat; ++rep) {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<double> elapsed(std::size_t(threads), 0.0);
    std::vector<float> results(std::size_t(threads), 0.0f);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        ready.fetch_add(1);
        while (!go.load()) std::this_thread::yield();
        const double t0 = now_seconds();
        results[std::size_t(t)] = config.kernel(rounds, float(t));
        elapsed[std::size_t(t)] = now_seconds() - t0;
      });
    }
    while (ready.load() < threads) std::this_thread::yield();
    go.store(true);
    for (auto& th : pool) th.join();
    const double slowest = *std::max_element(elapsed.begin(), elapsed.end());
    best = std::max(best, flops_of(config.chains, rounds) * threads / slowest * 1e-9);
    volatile float sink = results[0];
    (void)sink;
  }
  return best;
}

std::string device_name() {
  const std::string cpu = trimix_bench::cpu_model_name();
  return cpu.empty() ? "unknown" : cpu;
}

const char* isa() {
#if defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
  return "avx2+fma";
#elif defined(__ARM_NEON)
  return "neon";
#else
  return "baseline (build with -march=native for the real peak)";
#endif
}

using trimix_bench::csv_field;
using trimix_bench::file_is_empty;

}  // namespace

int main(int argc, char* argv[]) {
  int threads = int(std::max(1u, std::thread::hardware_concurrency()));
  double seconds = 1.0;
  std::string csv;
  for (int a = 1; a < argc; ++a) {
    const std::string arg = argv[a];
    if (arg == "--help" || arg == "-h") {
      std::printf("Usage: %s [--threads N] [--seconds S] [--csv path]\n"
                  "fp32 FMA peak per core and for N threads (default: all hardware threads).\n",
                  argv[0]);
      return 0;
    }
    if (a + 1 >= argc) {
      std::fprintf(stderr, "peak_probe: %s expects a value\n", arg.c_str());
      return 2;
    }
    const std::string value = argv[++a];
    if (arg == "--threads") threads = std::max(1, std::atoi(value.c_str()));
    else if (arg == "--seconds") seconds = std::max(0.05, std::atof(value.c_str()));
    else if (arg == "--csv") csv = value;
    else {
      std::fprintf(stderr, "peak_probe: unknown option %s\n", arg.c_str());
      return 2;
    }
  }

  // The chain count with the best single-thread rate, then all threads with it.
  const int repeat = 3;
  const ChainConfig* best = &chain_configs[0];
  double per_core = 0;
  std::int64_t rounds = 1;
  for (const ChainConfig& config : chain_configs) {
    const std::int64_t r = calibrate(config, seconds / 4);
    const double rate = measure(config, 1, r, repeat);
    std::printf("  %2d chains x %2d floats, 1 thread: %8.1f GFLOP/s\n", config.chains, lanes, rate);
    if (rate > per_core) per_core = rate, best = &config, rounds = r * 4;
  }
  const double total = measure(*best, threads, rounds, repeat);
  const std::string device = device_name();
  std::printf("peak_probe: %s, %s, %d x %d-float FMA chains\n", device.c_str(), isa(), best->chains, lanes);
  std::printf("  fp32 FMA peak, 1 thread  : %8.1f GFLOP/s\n", per_core);
  std::printf("  fp32 FMA peak, %d threads : %8.1f GFLOP/s (%.2fx one thread)\n", threads, total,
              total / per_core);
  if (!csv.empty()) {
    const bool fresh = file_is_empty(csv);
    std::ofstream out(csv, std::ios::app);
    if (!out) {
      std::fprintf(stderr, "peak_probe: cannot write %s\n", csv.c_str());
      return 1;
    }
    if (fresh) out << "device,threads,gflops_per_core,gflops_total,isa\n";
    out << csv_field(device) << ',' << threads << ',' << per_core << ',' << total << ','
        << csv_field(isa()) << '\n';
  }
  return 0;
}
