#pragma once
/// \file kernel.hpp
/// The blocked online-softmax attention algorithm (FlashAttention-2 style), one Kokkos team per
/// work item of the plan, for any mask policy. The tile math comes from the engine (the K / V tile
/// copy, both products and the row softmax, with portable defaults in engine_portable.hpp); this
/// file owns the order of the work: loading Q, walking the policy's kv-tile runs, scaling and
/// masking partial tiles, and writing results.

#include <trimix/element.hpp>
#include <trimix/engine_host_bf16.hpp>
#include <trimix/engine_portable.hpp>
#include <trimix/mask.hpp>
#include <trimix/plan.hpp>
#include <trimix/problem.hpp>
#include <trimix/softmax.hpp>

#include <type_traits>

namespace trimix::impl {

/// Raw pointers and strides of one call; everything a kernel reads besides the plan.
template <class TQ, class TK, class TV, class TO>
struct AttentionArgs {
  const TQ* q = nullptr;
  const TK* k = nullptr;
  const TV* v = nullptr;
  TO* o = nullptr;
  float* lse = nullptr;  ///< nullptr when the caller wants no LSE
  Problem problem;
};

/// fp32 tiles of one team, carved from its scratch memory.
struct TeamTiles {
  float *q, *o, *kt, *v, *s, *m, *l, *alpha;

  TRIMIX_FUNCTION static index_t floats(index_t rows, index_t dim, index_t kv_tile) {
    return 2 * rows * dim + 2 * kv_tile * dim + rows * kv_tile + 3 * rows;
  }
  TRIMIX_FUNCTION static TeamTiles carve(float* base, index_t rows, index_t dim, index_t kv_tile) {
    TeamTiles t;
    t.q = base;
    t.o = t.q + rows * dim;
    t.kt = t.o + rows * dim;
    t.v = t.kt + kv_tile * dim;
    t.s = t.v + kv_tile * dim;
    t.m = t.s + rows * kv_tile;
    t.l = t.m + rows;
    t.alpha = t.l + rows;
    return t;
  }
};

/// The kv-tiles of one work item in run order: the q-tile's runs, from the item's first visited
/// tile (ordinal tile_begin) to its last (tile_end - 1). Cost O(runs) for the whole walk.
template <class Cursor>
class TileWalker {
 public:
  TRIMIX_FUNCTION TileWalker(const Cursor& cursor, index_t tile_begin, index_t tile_end)
      : m_cursor(cursor), m_skip(tile_begin), m_remaining(tile_end - tile_begin) {}
  /// Next tile: its index and whether the mask must be evaluated inside it.
  TRIMIX_FUNCTION bool next(index_t& tile, bool& partial) {
    if (m_remaining <= 0) return false;
    while (m_tile >= m_run.end) {
      if (!m_cursor.next(m_run)) return false;
      const index_t length = m_run.end - m_run.begin;
      if (m_skip >= length) {  // the whole run lies before the item's range
        m_skip -= length;
        m_tile = m_run.end;
        continue;
      }
      m_tile = m_run.begin + m_skip;
      m_skip = 0;
    }
    tile = m_tile++;
    partial = m_run.cls == TileClass::partial;
    --m_remaining;
    return true;
  }

 private:
  Cursor m_cursor;
  KvRun m_run;
  index_t m_tile = 0, m_skip, m_remaining;
};

template <class Mask>
TRIMIX_FUNCTION auto walk_tiles(const Mask& mask, const TileGeometry& g, const WorkItem& item) {
  return TileWalker<decltype(kv_runs(mask, g, index_t(0)))>(kv_runs(mask, g, index_t(item.q_tile)),
                                                            item.tile_begin, item.tile_end);
}

/// Calls visit(tile, partial) for each kv-tile of a work item in run order, under the mask bound to
/// the item's heads: from the plan's runs when it has them (count >= 0), else from the policy's
/// cursor. Shared by the host engines (the CUDA engine expands runs with all its threads).
template <class ItemMask, class Visit>
TRIMIX_FUNCTION void for_each_item_tile(const ItemMask& item_mask, const TileGeometry& g, const WorkItem& item,
                                        const ItemRuns& item_runs, Visit&& visit) {
  if (item_runs.count >= 0) {
    for (int r = 0; r < item_runs.count; ++r)
      for (index_t tile = item_runs.begin[r]; tile < item_runs.end[r]; ++tile)
        visit(tile, ((item_runs.partial >> r) & 1u) != 0);
  } else {
    auto walker = walk_tiles(item_mask, g, item);
    index_t tile;
    bool partial;
    while (walker.next(tile, partial)) visit(tile, partial);
  }
}

/// Which of `count` (<= 64) keys from `first_key` one query position sees, as bits (bit j: key
/// first_key + j): one call for policies with visible_bits, else one visible() per key.
template <class ItemMask>
TRIMIX_FUNCTION std::uint64_t visible_word(const ItemMask& item_mask, index_t position, index_t first_key,
                                           index_t count, index_t seq_k) {
  if constexpr (has_visible_bits<ItemMask>::value) {
    return trimix::visible_bits(item_mask, position, first_key, seq_k);
  } else {
    std::uint64_t bits = 0;
    for (index_t j = 0; j < count; ++j)
      if (trimix::visible(item_mask, position, first_key + j, seq_k)) bits |= std::uint64_t(1) << j;
    return bits;
  }
}

/// One team per work item. Rows of an item are (packed head hh, query row i) with
/// r = hh * q_rows + i; every packed head shares the kv-head, so one K/V tile serves them all.
template <class ExecSpace, class Mask, class TQ, class TK, class TV, class TO>
struct AttentionKernel {
  using Team = typename Kokkos::TeamPolicy<ExecSpace>::member_type;
  using Traits = portable_engine_traits<ExecSpace>;
  static_assert(Traits::q_rows % Traits::row_block == 0,
                "portable_engine_traits: q_rows must be a multiple of row_block");
  static_assert(Traits::kv_tile % Traits::lane_block == 0,
                "portable_engine_traits: kv_tile must be a multiple of lane_block");
  using Engine = typename portable_engine_select<ExecSpace, TQ, TK, TV, Traits::row_block, Traits::lane_block>::type;
  using Memory = typename ExecSpace::memory_space;

  AttentionArgs<TQ, TK, TV, TO> args;
  Mask mask;
  TileGeometry geometry;
  index_t heads_per_item, rows, dim;
  Kokkos::View<const WorkItem*, Memory> items;
  Kokkos::View<const ItemRuns*, Memory> runs;  ///< per item; count -1: walk the policy
  float* partial_o;    ///< [slot][rows][dim], normalised partial outputs of split items
  float* partial_lse;  ///< [slot][rows], their natural-log LSE
  int scratch_level;

  TRIMIX_FUNCTION static index_t scratch_bytes(index_t rows, index_t dim, index_t kv_tile) {
    return TeamTiles::floats(rows, dim, kv_tile) * index_t(sizeof(float));
  }

  TRIMIX_FUNCTION void operator()(const Team& team) const {
    const WorkItem item = items(team.league_rank());
    const index_t kv_tile = geometry.kv_tile, q_rows = geometry.q_tile;
    float* base = static_cast<float*>(team.team_scratch(scratch_level).get_shmem(
        std::size_t(scratch_bytes(rows, dim, kv_tile))));
    const TeamTiles t = TeamTiles::carve(base, rows, dim, kv_tile);
    const Problem& p = args.problem;
    const index_t first_q_head = item.kv_head * p.group_size() + item.head_block * heads_per_item;
    const index_t first_row = index_t(item.q_tile) * q_rows;
    const index_t valid_rows = geometry.q_rows(item.q_tile);
    // Engines that take bf16 operands get Q unscaled (exact) and the kernel scales the scores.
    const bool prescaled = Engine::prescales_q(rows, dim, kv_tile);
    const float q_scale = prescaled ? p.scale * log2e : 1.0f;

    // Q tile (pre-scaled into base 2), zero padding past seq_q; fresh softmax state.
    // Rows over threads, head_dim over vector lanes: no index division per element (a 64-bit
    // division per element cost more than the tile's FMAs on CPUs).
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, rows), [&](index_t r) {
      const index_t i = r % q_rows;
      const bool valid = i < valid_rows;
      const TQ* q_row = args.q + p.q(item.batch, first_q_head + r / q_rows, first_row + (valid ? i : 0), 0);
      Kokkos::parallel_for(Kokkos::ThreadVectorRange(team, dim), [&](index_t d) {
        t.q[r * dim + d] = valid ? element_traits<TQ>::to_float(q_row[d * p.q.dim]) * q_scale : 0.0f;
        t.o[r * dim + d] = 0.0f;
      });
    });
    Kokkos::parallel_for(Kokkos::TeamVectorRange(team, rows), [&](index_t r) {
      t.m[r] = minus_infinity;
      t.l[r] = 0.0f;
    });
    team.team_barrier();

    // Visit the item's kv-tiles in run order, under the mask of the item's heads (they share it:
    // the plan packs only heads with the same mask): from the plan's runs when it has them, else
    // from the policy's cursor.
    const auto item_mask = bind_head(mask, item.batch, first_q_head, p.q_heads);
    for_each_item_tile(item_mask, geometry, item, runs(team.league_rank()),
                       [&](index_t tile, bool partial) { visit_tile(team, t, item_mask, item, tile, partial); });
    write_rows(team, t, item, first_q_head, first_row, valid_rows);
  }

  /// One kv-tile: S = Q K^T, mask (partial tiles only), online softmax, O = O * alpha + P V.
  template <class ItemMask>
  TRIMIX_FUNCTION void visit_tile(const Team& team, const TeamTiles& t, const ItemMask& item_mask,
                                  const WorkItem& item, index_t u, bool partial) const {
    const Problem& p = args.problem;
    const index_t kv_tile = geometry.kv_tile, q_rows = geometry.q_tile;
    // A partial tile ends where its visible keys do (no row sees a key past visible_key_end), as
    // a sequence's last tile does: Triangle's sink tile is 8 keys long, not 64.
    const index_t first_key = geometry.first_key(u);
    const index_t keys = partial ? visible_key_end(item_mask, geometry, index_t(item.q_tile), u) : geometry.kv_keys(u);
    // K transposed (dim-major, for the score micro-kernel), V row-major, fp32; zeros past seq_k.
    Engine::load_kv(team, args.k + p.k(item.batch, item.kv_head, first_key, 0), p.k.seq, p.k.dim,
                    args.v + p.v(item.batch, item.kv_head, first_key, 0), p.v.seq, p.v.dim, keys, dim, kv_tile,
                    t.kt, t.v);
    team.team_barrier();
    const bool prescaled = Engine::prescales_q(rows, dim, kv_tile);
    // Full tiles, where the engine has a fused pass: S and the softmax step at once. Else S, the
    // scale and mask where needed, then the softmax step.
    const bool fused = !partial && prescaled && keys == kv_tile &&
                       Engine::scores_softmax(team, t.q, t.kt, t.s, t.m, t.l, t.alpha, rows, dim, kv_tile);
    if (!fused) {
      Engine::scores(team, t.q, t.kt, t.s, rows, dim, kv_tile);
      team.team_barrier();
      if (partial || !prescaled) {
        const index_t first_position = geometry.first_position(item.q_tile);
        const float score_scale = args.problem.scale * log2e;
        Kokkos::parallel_for(Kokkos::TeamVectorRange(team, rows), [&](index_t r) {
          float* s = t.s + r * kv_tile;
          if (!prescaled) {
            TRIMIX_SIMD
            for (index_t j = 0; j < kv_tile; ++j) s[j] *= score_scale;
          }
          if (partial) {
            const index_t position = first_position + r % q_rows;
            for (index_t j0 = 0; j0 < keys; j0 += 64) {
              const index_t n = keys - j0 < 64 ? keys - j0 : 64;
              const std::uint64_t bits = visible_word(item_mask, position, first_key + j0, n, geometry.seq_k);
              for (index_t j = 0; j < n; ++j)
                if (!((bits >> j) & 1u)) s[j0 + j] = minus_infinity;
            }
          }
        });
        team.team_barrier();
      }
      Engine::softmax_rows(team, t.s, t.m, t.l, t.alpha, rows, keys, kv_tile);
    }
    team.team_barrier();
    Engine::accumulate(team, t.s, t.v, t.alpha, t.o, rows, dim, kv_tile, keys);
    team.team_barrier();
  }

  /// o = acc / l (0 for rows that saw nothing) and lse, or the partial slot of a split item.
  TRIMIX_FUNCTION void write_rows(const Team& team, const TeamTiles& t, const WorkItem& item,
                                  index_t first_q_head, index_t first_row, index_t valid_rows) const {
    const Problem& p = args.problem;
    const index_t q_rows = geometry.q_tile;
    Kokkos::parallel_for(Kokkos::TeamThreadRange(team, rows), [&](index_t r) {
      const index_t i = r % q_rows;
      if (i >= valid_rows) return;
      const float l = t.l[r];
      const float inv = !(l <= 0.0f) ? 1.0f / l : 0.0f;
      if (item.split_slot >= 0) {
        float* out = partial_o + (index_t(item.split_slot) * rows + r) * dim;
        Kokkos::parallel_for(Kokkos::ThreadVectorRange(team, dim),
                             [&](index_t d) { out[d] = t.o[r * dim + d] * inv; });
      } else {
        TO* out = args.o + p.o(item.batch, first_q_head + r / q_rows, first_row + i, 0);
        Kokkos::parallel_for(Kokkos::ThreadVectorRange(team, dim), [&](index_t d) {
          out[d * p.o.dim] = element_traits<TO>::from_float(t.o[r * dim + d] * inv);
        });
      }
    });
    Kokkos::parallel_for(Kokkos::TeamVectorRange(team, rows), [&](index_t r) {
      const index_t i = r % q_rows;
      if (i >= valid_rows) return;
      const float lse = finish_lse(t.m[r], t.l[r]);
      if (item.split_slot >= 0)
        partial_lse[index_t(item.split_slot) * rows + r] = lse;
      else if (args.lse)
        args.lse[item.batch * p.lse_batch + (first_q_head + r / q_rows) * p.lse_head +
                 (first_row + i) * p.lse_seq] = lse;
    });
  }
};

}  // namespace trimix::impl
