// plan_bench: time of trimix::make_plan on the default execution space, per mask.
//
//   plan_bench [--seq 65536] [--q-heads 32] [--kv-heads 8] [--density 0.5] [--q-rows 64]
//              [--kv-tile 64] [--repeat 5] [--seed 7]
//
// Masks: causal and Triangle(8, 512, 128) (the same for every head: runs known on the host), and
// Causal & a per-query-head block-sparse map with blocks of kv-tile x q-rows kept with
// probability `density` below the diagonal, the diagonal always (what the dynamic estimators
// hand to a layer on every call: its plan is made per call). The tile shape defaults to the CUDA
// engine's for per-head masks (64 query rows of one head, 64 keys). Prints the median time,
// the items and a hash of the items and split groups (for checking that a change keeps the plans).

#include <trimix/trimix.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

using trimix::index_t;

struct Args {
  index_t seq = 65536, q_heads = 32, kv_heads = 8, q_rows = 64, kv_tile = 64;
  double density = 0.5;
  int repeat = 5;
  unsigned seed = 7;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "plan_bench: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--seq") a.seq = std::atoll(value());
    else if (arg == "--q-heads") a.q_heads = std::atoll(value());
    else if (arg == "--kv-heads") a.kv_heads = std::atoll(value());
    else if (arg == "--q-rows") a.q_rows = std::atoll(value());
    else if (arg == "--kv-tile") a.kv_tile = std::atoll(value());
    else if (arg == "--density") a.density = std::atof(value());
    else if (arg == "--repeat") a.repeat = std::atoi(value());
    else if (arg == "--seed") a.seed = unsigned(std::atoi(value()));
    else {
      std::fprintf(stderr, "plan_bench: unknown argument %s (see the file comment)\n", arg.c_str());
      std::exit(2);
    }
  }
  if (a.seq < 1 || a.q_heads < 1 || a.kv_heads < 1 || a.q_heads % a.kv_heads != 0 || a.q_rows < 1 ||
      a.kv_tile < 1 || a.repeat < 1 || a.density < 0.0 || a.density > 1.0) {
    std::fprintf(stderr, "plan_bench: sizes must be positive, q-heads a multiple of kv-heads, density in [0, 1]\n");
    std::exit(2);
  }
  return a;
}

/// FNV-1a over the plan's items and split groups (copied to the host).
template <class Plan>
std::uint64_t plan_hash(const Plan& plan) {
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&](std::int64_t x) {
    for (int b = 0; b < 8; ++b) h = (h ^ std::uint64_t((x >> (8 * b)) & 0xff)) * 1099511628211ull;
  };
  const auto items = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), plan.items);
  for (std::size_t i = 0; i < items.extent(0); ++i) {
    const auto& w = items(i);
    const std::int64_t fields[] = {w.batch, w.kv_head, w.head_block, w.q_tile, w.tile_begin, w.tile_end, w.split_slot};
    for (std::int64_t x : fields) mix(x);
  }
  const auto groups = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), plan.groups);
  for (std::size_t i = 0; i < groups.extent(0); ++i) {
    const auto& s = groups(i);
    const std::int64_t fields[] = {s.batch, s.kv_head, s.head_block, s.q_tile, s.first_slot, s.splits};
    for (std::int64_t x : fields) mix(x);
  }
  return h;
}

template <class Mask>
void time_plan(const char* name, const Args& a, const trimix::impl::Problem& problem, const Mask& mask,
               index_t heads_per_item) {
  using Exec = Kokkos::DefaultExecutionSpace;
  const Exec exec;
  const trimix::TileShape shape{a.q_rows / heads_per_item, a.kv_tile, heads_per_item, 2048};
  std::vector<double> ms;
  trimix::Plan<Exec::memory_space> plan;
  for (int r = 0; r < a.repeat + 1; ++r) {  // the first call warms up
    exec.fence();
    const auto t0 = std::chrono::steady_clock::now();
    plan = trimix::make_plan(exec, problem, mask, shape, trimix::AttentionOptions{});
    exec.fence();
    const auto t1 = std::chrono::steady_clock::now();
    if (r > 0) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("%-14s seq %7lld  %8.3f ms (median of %d, min %.3f)  items %8lld  groups %6lld  hash %016llx\n",
              name, static_cast<long long>(a.seq), ms[ms.size() / 2], a.repeat, ms.front(),
              static_cast<long long>(plan.item_count()), static_cast<long long>(plan.group_count()),
              static_cast<unsigned long long>(plan_hash(plan)));
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  Kokkos::ScopeGuard guard(argc, argv);
  using Memory = Kokkos::DefaultExecutionSpace::memory_space;
  trimix::impl::Problem problem;
  problem.batch = 1;
  problem.q_heads = a.q_heads;
  problem.kv_heads = a.kv_heads;
  problem.seq_q = problem.seq_k = a.seq;
  problem.head_dim = 128;
  const index_t group = a.q_heads / a.kv_heads;
  // Heads packed per item for the uniform masks: 4 where the group allows, the CUDA engine's
  // packing for the default GQA group of 4 (it packs up to 8 heads in larger groups).
  const index_t packed = group % 4 == 0 && a.q_rows % 4 == 0 ? 4 : 1;

  time_plan("causal", a, problem, trimix::Causal{}, packed);
  time_plan("triangle", a, problem, trimix::Triangle{8, 512, 128}, packed);

  // Per-query-head map: block (qb, kb) kept with probability `density` below the diagonal.
  const index_t qb = (a.seq + a.q_rows - 1) / a.q_rows, kb = (a.seq + a.kv_tile - 1) / a.kv_tile;
  Kokkos::View<std::int32_t****, Kokkos::LayoutRight, Kokkos::HostSpace> tiles(
      "tiles", 1, std::size_t(a.q_heads), std::size_t(qb), std::size_t(kb));
  std::mt19937_64 rng(a.seed);
  std::bernoulli_distribution keep(a.density);
  for (index_t h = 0; h < a.q_heads; ++h)
    for (index_t q = 0; q < qb; ++q)
      for (index_t k = 0; k < kb; ++k) {
        const bool below = (k + 1) * a.kv_tile <= q * a.q_rows + 1;
        const bool diagonal = !below && k * a.kv_tile <= (q + 1) * a.q_rows - 1;
        tiles(0, h, q, k) = diagonal ? 2 : (below && keep(rng)) ? 2 : 0;
      }
  auto device_tiles = Kokkos::create_mirror_view_and_copy(Memory(), tiles);
  const auto map = trimix::block_sparse_from_tile_map(Kokkos::DefaultExecutionSpace(), device_tiles, a.seq, a.seq,
                                                      a.q_rows, a.kv_tile);
  time_plan("causal&sparse", a, problem, trimix::Causal{} & map.policy(), 1);
  return 0;
}
