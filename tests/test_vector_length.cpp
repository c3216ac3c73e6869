// GPU launch shapes where code can run: plans whose vector_length is 64 (an AMD wavefront) and
// whose teams have several members, against the exact reference (Causal and Triangle).
//
// What a backend makes of plan.vector_length = 64 (Kokkos 3.4.01 and 4.x):
// - Serial: team_size must be 1; the vector length is a hint (vector_length_max() is 1024) and
//   every TeamVectorRange runs as one loop.
// - OpenMP: team_size up to min(threads, 64) real threads that share team scratch and barriers;
//   the vector length is a hint as on Serial, so TeamVectorRange spreads over the team's threads.
// - HIP: vector_length up to the wavefront, 64: a team is team_size x 64 lanes. CUDA: Kokkos clamps
//   it to the warp, 32. (The HIP CI tree compiles this file for Kokkos::HIP; nothing runs there.)
// So on the CPU these cases prove that nothing in trimix (plan, scratch sizes, work split, the
// combine pass) depends on the lane count, and that teams of many members agree with one-member
// teams. The hidden [wave64] case runs 64-member teams, the launch shape of the GPU engine traits
// (team_size 64); tests/CMakeLists.txt runs it as openmp/wave64 with OMP_NUM_THREADS=64.
#include "test_support.hpp"

#include <trimix/attention.hpp>
#include <trimix/reference.hpp>

#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <utility>
#include <vector>

using namespace trimix_test;

namespace {

constexpr int wave = 64;

struct Shape {
  index_t batch, q_heads, kv_heads, seq_q, seq_k, head_dim;
};

/// The largest team the backend under test runs: all threads of a host pool (at most 64, Kokkos'
/// host limit; 1 on Serial); on a GPU, 4 members of 64 lanes (256 work-items).
int team_size_limit() {
  if constexpr (Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename ExecSpace::memory_space>::accessible)
    return std::min(wave, int(ExecSpace().concurrency()));
  else
    return 4;
}

/// Runs trimix::attention through a plan with the given launch shape on poisoned outputs and
/// checks O and LSE element by element against the reference. Returns the plan's split groups.
template <class Mask>
index_t check_launch_shape(const Shape& s, const Mask& mask, int team_size, int vector_length,
                        index_t max_tiles_per_item, std::mt19937_64& rng) {
  const auto q_host = random_view<float>("q", rng, 1.0, s.batch, s.q_heads, s.seq_q, s.head_dim);
  const auto k_host = random_view<float>("k", rng, 1.0, s.batch, s.kv_heads, s.seq_k, s.head_dim);
  const auto v_host = random_view<float>("v", rng, 1.0, s.batch, s.kv_heads, s.seq_k, s.head_dim);
  const auto q = to_exec(q_host), k = to_exec(k_host), v = to_exec(v_host);
  Kokkos::View<float****, Kokkos::LayoutRight, ExecSpace> o("o", s.batch, s.q_heads, s.seq_q, s.head_dim);
  Kokkos::View<float***, Kokkos::LayoutRight, ExecSpace> lse("lse", s.batch, s.q_heads, s.seq_q);
  poison(o);
  poison(lse);

  trimix::AttentionOptions options;
  options.max_tiles_per_item = max_tiles_per_item;
  const ExecSpace exec{};
  auto plan = trimix::plan_attention(exec, q, k, v, o, mask, options);
  plan.team_size = team_size;
  plan.vector_length = vector_length;
  trimix::attention(exec, plan, q, k, v, o, lse);
  exec.fence();

  Kokkos::View<double****, Kokkos::HostSpace> o_ref("o_ref", s.batch, s.q_heads, s.seq_q, s.head_dim);
  Kokkos::View<double***, Kokkos::HostSpace> lse_ref("lse_ref", s.batch, s.q_heads, s.seq_q);
  trimix::reference::attention(q_host, k_host, v_host, o_ref, lse_ref, mask, options);
  CAPTURE(trimix::mask_name(mask), team_size, vector_length, max_tiles_per_item, plan.work.group_count(),
          s.batch, s.q_heads, s.kv_heads, s.seq_q, s.seq_k, s.head_dim);
  CHECK(all_close(o, o_ref, Tolerance<float>::atol, Tolerance<float>::rtol));
  CHECK(all_close(lse, lse_ref, 1e-4, 1e-5));
  return plan.work.group_count();
}

/// Shapes with GQA, lengths that are not tile multiples, Sq < Sk, N = 1 and several head dims.
std::vector<Shape> shapes() {
  return {{1, 4, 2, 70, 70, 64}, {2, 8, 2, 45, 130, 128}, {1, 2, 1, 1, 1, 16},
          {1, 8, 1, 97, 97, 80}, {1, 1, 1, 150, 150, 256}, {1, 4, 4, 33, 33, 96}};
}

/// Every (team_size, vector_length) pair to try: 64 lanes alone, with the largest team, and the
/// largest team with one lane (the shape the others must agree with).
std::vector<std::pair<int, int>> launch_shapes() {
  const int teams = team_size_limit();
  std::vector<std::pair<int, int>> out{{1, wave}};
  if (teams > 1) out.insert(out.end(), {{teams, wave}, {teams, 1}});
  return out;
}

}  // namespace

TEST_CASE("vector_length 64 and multi-member teams match the reference", "[attention][vector_length]") {
  std::mt19937_64 rng(64);
  const auto causal = trimix::Causal{};
  const auto triangle = trimix::Triangle{4, 40, 24};
  for (const auto& [team_size, vector_length] : launch_shapes()) {
    const auto all = shapes();
    for (std::size_t i = 0; i < all.size(); ++i) {
      // Automatic split-KV for one mask, forced splits (one tile per item) for the other.
      const index_t split = index_t(i % 2);
      check_launch_shape(all[i], causal, team_size, vector_length, split, rng);
      check_launch_shape(all[i], triangle, team_size, vector_length, 1 - split, rng);
    }
  }
}

TEST_CASE("the default Triangle over many tiles with vector_length 64", "[attention][vector_length]") {
  // Sink 8, window 512, last rows 128 at 1100 keys: Full, Partial and skipped tiles, split rows.
  std::mt19937_64 rng(65);
  const Shape s{1, 2, 1, 1100, 1100, 64};
  CHECK(check_launch_shape(s, trimix::Triangle{}, team_size_limit(), wave, /*max_tiles_per_item=*/6, rng) > 0);
}

// Hidden: on the host it needs a pool of 64 threads (OMP_NUM_THREADS=64); tests/CMakeLists.txt
// registers it as openmp/wave64.
TEST_CASE("64-member teams, the GPU traits' team shape, match the reference", "[.wave64]") {
  constexpr bool host =
      Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename ExecSpace::memory_space>::accessible;
  if constexpr (host) {
    INFO("teams of at most " << team_size_limit() << " members here; run with OMP_NUM_THREADS=64");
    REQUIRE(team_size_limit() == wave);
  }
  // Host: 64 threads of one lane, then with a 64-lane hint. GPU: 64 x 1 (the GPU engine traits)
  // and 16 x 64 (1024 work-items, the most a HIP block holds).
  const std::pair<int, int> launches[] = {{wave, 1}, {host ? wave : 16, wave}};
  std::mt19937_64 rng(66);
  for (const auto& [team_size, vector_length] : launches) {
    for (const Shape& s : {Shape{1, 4, 2, 70, 70, 64}, Shape{1, 8, 2, 130, 130, 128}}) {
      check_launch_shape(s, trimix::Causal{}, team_size, vector_length, 0, rng);
      check_launch_shape(s, trimix::Triangle{4, 40, 24}, team_size, vector_length, 1, rng);
    }
  }
}
