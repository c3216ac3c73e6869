#pragma once
/// \file combine.hpp
/// The split-KV merge: rows whose kv-tiles were spread over several work items hold one
/// normalised partial output and LSE per split; the exact result is their LSE-weighted mean:
///   M = max_s lse_s,  w_s = exp(lse_s - M),  o = sum_s w_s o_s / sum_s w_s,  lse = M + log sum_s w_s.
/// Splits that saw no key have lse_s = -inf and weigh 0; a row whose splits all saw nothing gets
/// o = 0 and lse = -inf.

#include <trimix/kernel.hpp>

#include <cmath>

namespace trimix::impl {

/// Launch shape of the combine: on GPU-like spaces a team takes `rows_per_team` rows of a group,
/// a thread one row with its head dims over the vector lanes (coalesced reads of the partial
/// outputs); on CPUs a team takes a whole group. One team per group with one thread per row, head
/// dims serial, took 0.43 ms to merge 32 groups of 32 splits on the H200 (bench/NOTES.md).
template <class ExecSpace, class = void>
struct combine_launch {
  static constexpr index_t rows_per_team = 0;  // 0: the whole group
  static constexpr int vector_length = 1;
};
template <class ExecSpace>
struct combine_launch<ExecSpace, std::enable_if_t<!Kokkos::SpaceAccessibility<
                                     Kokkos::HostSpace, typename ExecSpace::memory_space>::accessible>> {
  static constexpr index_t rows_per_team = 4;
  static constexpr int vector_length = 32;
};

template <class ExecSpace, class TQ, class TK, class TV, class TO>
struct CombineKernel {
  using Team = typename Kokkos::TeamPolicy<ExecSpace>::member_type;
  using Memory = typename ExecSpace::memory_space;
  using Launch = combine_launch<ExecSpace>;

  AttentionArgs<TQ, TK, TV, TO> args;
  TileGeometry geometry;
  index_t heads_per_item, rows, dim;
  Kokkos::View<const SplitGroup*, Memory> groups;
  const float* partial_o;
  const float* partial_lse;

  TRIMIX_FUNCTION index_t rows_per_team() const { return Launch::rows_per_team > 0 ? Launch::rows_per_team : rows; }
  TRIMIX_FUNCTION index_t teams_per_group() const { return (rows + rows_per_team() - 1) / rows_per_team(); }
  Kokkos::TeamPolicy<ExecSpace> policy(const ExecSpace& exec, index_t group_count) const {
    const int league = int(group_count * teams_per_group());
    if constexpr (Launch::rows_per_team > 0)
      return Kokkos::TeamPolicy<ExecSpace>(exec, league, int(Launch::rows_per_team), Launch::vector_length);
    else
      return Kokkos::TeamPolicy<ExecSpace>(exec, league, Kokkos::AUTO);
  }

  TRIMIX_FUNCTION void operator()(const Team& team) const {
    const index_t per_group = teams_per_group();
    const index_t row_begin = team.league_rank() % per_group * rows_per_team();
    const index_t row_end = row_begin + rows_per_team() < rows ? row_begin + rows_per_team() : rows;
    const SplitGroup g = groups(team.league_rank() / per_group);
    const Problem& p = args.problem;
    const index_t q_rows = geometry.q_tile;
    const index_t first_q_head = g.kv_head * p.group_size() + g.head_block * heads_per_item;
    const index_t first_row = index_t(g.q_tile) * q_rows;
    const index_t valid_rows = geometry.q_rows(g.q_tile);
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, row_begin, row_end), [&](index_t r) {
      const index_t i = r % q_rows;
      if (i >= valid_rows) return;
      float max_lse = minus_infinity;
      for (index_t s = 0; s < g.splits; ++s) {
        const float x = partial_lse[(g.first_slot + s) * rows + r];
        max_lse = max_lse < x ? x : max_lse;
      }
      float total = 0.0f;  // NaN where a split's lse is (NaN in Q or K): the row's o and lse stay NaN
      for (index_t s = 0; s < g.splits; ++s)
        total += weight(partial_lse[(g.first_slot + s) * rows + r], max_lse);
      const index_t head = first_q_head + r / q_rows;
      Kokkos::parallel_for(Kokkos::ThreadVectorRange(team, dim), [&](index_t d) {
        float acc = 0.0f;
        for (index_t s = 0; s < g.splits; ++s)
          acc += weight(partial_lse[(g.first_slot + s) * rows + r], max_lse) *
                 partial_o[((g.first_slot + s) * rows + r) * dim + d];
        args.o[p.o(g.batch, head, first_row + i, d)] =
            element_traits<TO>::from_float(!(total <= 0.0f) ? acc / total : 0.0f);
      });
      if (args.lse) {
        Kokkos::single(Kokkos::PerThread(team), [&]() {
          args.lse[g.batch * p.lse_batch + head * p.lse_head + (first_row + i) * p.lse_seq] =
              !(total <= 0.0f) ? max_lse + std::log(total) : minus_infinity;
        });
      }
    });
  }

  /// exp(lse - max_lse), 0 for splits that saw nothing (and for all when max_lse is -inf).
  TRIMIX_FUNCTION static float weight(float lse, float max_lse) {
    return lse == minus_infinity ? 0.0f : exp2_nonpositive((lse - max_lse) * log2e);
  }
};

}  // namespace trimix::impl
