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

template <class ExecSpace, class TQ, class TK, class TV, class TO>
struct CombineKernel {
  using Team = typename Kokkos::TeamPolicy<ExecSpace>::member_type;
  using Memory = typename ExecSpace::memory_space;

  AttentionArgs<TQ, TK, TV, TO> args;
  TileGeometry geometry;
  index_t heads_per_item, rows, dim;
  Kokkos::View<const SplitGroup*, Memory> groups;
  const float* partial_o;
  const float* partial_lse;

  TRIMIX_FUNCTION void operator()(const Team& team) const {
    const SplitGroup g = groups(team.league_rank());
    const Problem& p = args.problem;
    const index_t q_rows = geometry.q_tile;
    const index_t first_q_head = g.kv_head * p.group_size() + g.head_block * heads_per_item;
    const index_t first_row = index_t(g.q_tile) * q_rows;
    const index_t valid_rows = geometry.q_rows(g.q_tile);
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, rows), [&](index_t r) {
      const index_t i = r % q_rows;
      if (i >= valid_rows) return;
      float max_lse = minus_infinity;
      for (index_t s = 0; s < g.splits; ++s) {
        const float x = partial_lse[(g.first_slot + s) * rows + r];
        max_lse = max_lse < x ? x : max_lse;
      }
      float total = 0.0f;
      for (index_t s = 0; s < g.splits; ++s)
        total += weight(partial_lse[(g.first_slot + s) * rows + r], max_lse);
      const index_t head = first_q_head + r / q_rows;
      Kokkos::parallel_for(Kokkos::ThreadVectorRange(team, dim), [&](index_t d) {
        float acc = 0.0f;
        for (index_t s = 0; s < g.splits; ++s)
          acc += weight(partial_lse[(g.first_slot + s) * rows + r], max_lse) *
                 partial_o[((g.first_slot + s) * rows + r) * dim + d];
        args.o[p.o(g.batch, head, first_row + i, d)] =
            element_traits<TO>::from_float(total > 0.0f ? acc / total : 0.0f);
      });
      if (args.lse) {
        Kokkos::single(Kokkos::PerThread(team), [&]() {
          args.lse[g.batch * p.lse_batch + head * p.lse_head + (first_row + i) * p.lse_seq] =
              total > 0.0f ? max_lse + std::log(total) : minus_infinity;
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
