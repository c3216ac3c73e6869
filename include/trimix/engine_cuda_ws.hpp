#pragma once
/// \file engine_cuda_ws.hpp
/// Warp-specialised kernel of the CUDA engine (sm_90a, head dims 64 and 128, position-only masks;
/// at 128 it runs where plans have 64-row items, TRIMIX_CUDA_PAIR=0, engine_cuda_pair.hpp otherwise):
/// FlashAttention-3's shape on the shared plan. One persistent CTA per SM of a producer warpgroup
/// and ws_consumers<Dim> consumer warpgroups (two at head dim 128, three at 64):
///  - warpgroup 0 is the producer: one thread per consumer takes the consumer's items from a
///    global counter (plan order, longest first), each one ahead into shared memory while the
///    item before still issues (WsTakenItem), walks its runs and issues the bulk tensor copies
///    (TMA) of its Q tile and of its K / V tiles into a ring of `ws_stages` buffers, each with a
///    full / empty mbarrier pair; it keeps 56 registers (setmaxnreg), so that
///  - the consumers get the rest (224 at head dim 128, 152 at 64): each runs its own items (64
///    rows) with Q in registers, and overlaps S(i + 1) = Q K^T with the softmax of tile i while
///    P(i - 1) V(i - 1) runs on the tensor cores (wgmma.wait_group 1). The next item's Q and first
///    tiles load while the current one finishes, so an item's prologue does not wait for memory.
/// Band items of SinkWindow policies (Triangle, Streaming) skip their sink tile: the producer loads
/// the sink keys into columns of another of the item's tiles that none of its rows sees
/// (sink_fold), and the consumer ORs their mask bits in there: 9 tile steps instead of 10 for a
/// band item of Triangle(8, 512, 128) (TRIMIX_CUDA_SINK_FOLD=0 turns it off).
/// The tile math (wgmma shapes, swizzled 128-byte layout, mask bits, online softmax, epilogue) is
/// the one of attention_kernel in engine_cuda.hpp, except that the running max moves lazily
/// (ws_rescale_slack). Included by engine_cuda.hpp.

#include <cuda.h>
#include <cudaTypedefs.h>

#include <atomic>

namespace trimix::impl::cuda_engine {

constexpr int ws_consumer_threads = 128;  ///< one warpgroup per consumer, and the producer's
template <int Dim>
constexpr int ws_threads = ws_consumer_threads * (ws_consumers<Dim> + 1);
constexpr int ws_consumer_warps = ws_consumer_threads / 32;  ///< arrivals on a consumer's "empty" barriers
constexpr int ws_stages = 3;
/// Shared memory at head dim Dim (64 or 128: one or two 64-column blocks per tile row).
template <int Dim>
constexpr unsigned ws_q_bytes = 64 * Dim * 2;  ///< one 64-row Q tile
template <int Dim>
constexpr unsigned ws_kv_bytes = 2 * 64 * Dim * 2;  ///< K and V tiles of one stage
template <int Dim>
constexpr unsigned ws_consumer_bytes = ws_q_bytes<Dim> + ws_stages * ws_kv_bytes<Dim>;
template <int Dim>
constexpr int ws_shared_bytes = int(ws_consumers<Dim> * ws_consumer_bytes<Dim>) + 1024;
/// An item the producer took ahead, while the item before it still had tiles to issue: its plan
/// index (item_count or more: none left), work item, runs and sink fold (tile * 2 + carried at the
/// tile's end, -1: none). Kept in shared memory, not in the producer's 56 registers: at the item
/// boundary the producer then issues the next Q and first K / V tile without a round trip to
/// global memory (a clock64 timeline had the first K / V tile of a band item issued ~3000 cycles
/// after its stage was free, behind the counter's atomic, two dependent loads and spilled state).
struct WsTakenItem {
  WorkItem item;
  ItemRuns runs;
  std::int32_t index = 0;
  std::int32_t fold = -1;  // every member initialised: a constexpr constructor, as a __shared__ array needs
};
/// What the producer hands a consumer with each Q tile: the item's plan index (-1: no more), sink
/// fold (as WsTakenItem's), the work item's fields the consumer uses, and its tile steps. 32
/// bytes, which lane 0 reads in two 16-byte loads instead of eight dependent 4-byte load +
/// shuffle pairs (clock64 timeline, the item head: triangle band items 687 -> 636 cycles, causal
/// 405 -> 312; within noise in time).
struct alignas(16) WsHandoff {
  std::int32_t slot = -1, fold = -1, batch = 0, kv_head = 0;
  std::int32_t head_block = 0, q_tile = 0, tile_count = 0, split_slot = -1;
};
/// The kernel's static shared memory: per consumer its mbarriers, stage entries and handoff, and
/// the producer's two taken items, as declared (the launch checks the loaded kernel's, which the
/// aligned dynamic array pads, with the dynamic part against the opt-in limit).
template <int Dim>
constexpr int ws_static_bytes =
    ws_consumers<Dim> * int(sizeof(std::uint64_t) * (2 + 2 * ws_stages) + sizeof(int) * ws_stages +
                            sizeof(WsHandoff) + 2 * sizeof(WsTakenItem));
/// How far (log2 units) a tile's row max may exceed the running max before the running max moves
/// and the accumulators are rescaled (FlashAttention-4's conditional rescale). Exact: o = acc / l
/// and lse = max + log2 l take the same reference max whichever it is; probabilities stay below
/// 2^8 = 256, in range for bf16 / fp16 P and fp32 sums. With eager rescaling the accumulators'
/// multiplies were 6% of triangle's samples (ncu; a warp multiplies when any of its 16 rows' max
/// rose, which in a band item of 9 tiles is most steps); lazily, triangle -5%. Its price is
/// rounding: a row's largest probability is no longer exactly 1 before P's 16-bit rounding
/// (relative L2 to FlexAttention's triangle 1.8e-3 -> 2.8e-3, bench/NOTES.md).
constexpr float ws_rescale_slack = 8.0f;
/// Registers per thread (setmaxnreg) of the producer and of each consumer: the 64K of the SM.
constexpr int ws_producer_registers = 56;
template <int Dim>
constexpr int ws_consumer_registers = (65536 / ws_consumer_threads - ws_producer_registers) / ws_consumers<Dim> / 8 * 8;

template <class Elem, class Mask>
struct WsParams {
  CUtensorMap q_map, k_map, v_map;
  Params<Elem, Mask> p;
  std::uint32_t* counter;  ///< [0]: next item to hand out, [1]: producers done; zero between launches
  /// Sink fold (SinkWindow policies, see sink_fold): the sink keys rounded up to whole 8-row
  /// swizzle atoms, 0 where the kernel does not fold; boxes of fold_rows keys and of the
  /// 64 - fold_rows keys of a tile beside them.
  int fold_rows = 0;
  /// ws_rescale_slack, or 0 (TRIMIX_CUDA_LAZY_RESCALE=0: every rise of a row max rescales).
  float rescale_slack = ws_rescale_slack;
  CUtensorMap k_sink_map, v_sink_map, k_body_map, v_body_map;
  /// The pair kernel's (engine_cuda_pair.hpp): where consumer 1's Q box starts after consumer 0's
  /// (positions, heads), and whether the consumers take turns at the tensor cores.
  int q_row_step = 0, q_head_step = 0;
  bool ping_pong = true;
#ifdef TRIMIX_CUDA_PAIR_BOUNDS
  int pair_bound = 0;  ///< PairBound (engine_cuda_pair.hpp), measuring builds only
  int pair_sleep_ns = 0;  ///< idle time a consumer adds at each item's end (pair_sleep_ns()), measuring builds only
#endif
  /// The pair kernel's o leaves through shared memory by bulk tensor stores, each warp its 16 rows
  /// (o_map's boxes: 16 positions of one head, at o_warp_row positions and o_warp_head heads from
  /// the item's first, for warp 4 c + w); false: 16-byte stores from registers
  /// (TRIMIX_CUDA_TMA_STORE=0, for measuring).
  bool o_by_tma = false;
  int o_warp_row[8] = {}, o_warp_head[8] = {};
  CUtensorMap o_map;
};

__device__ __forceinline__ void mbar_init(unsigned bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(unsigned bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(unsigned bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
  asm volatile(
      "{\n.reg .pred done;\nWS_WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WS_WAIT;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
/// One box of a 4-d tensor map into shared memory, completing on mbarrier `bar`.
__device__ __forceinline__ void tma_load(unsigned dst, const CUtensorMap* map, unsigned bar, int c0, int c1, int c2,
                                         int c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5, "
      "%6}], [%2];\n" ::"r"(dst),
      "l"(reinterpret_cast<std::uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
      : "memory");
}

/// One box of a 4-d tensor map from shared memory to global memory (a bulk group of this thread;
/// the caller's generic-proxy writes must be fenced with fence_async_proxy first).
__device__ __forceinline__ void tma_store(const CUtensorMap* map, unsigned src, int c0, int c1, int c2, int c3) {
  asm volatile("cp.async.bulk.tensor.4d.global.shared::cta.bulk_group [%0, {%2, %3, %4, %5}], [%1];\n" ::"l"(
                   reinterpret_cast<std::uint64_t>(map)),
               "r"(src), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
               : "memory");
}
__device__ __forceinline__ void bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
/// This thread's bulk stores have read their shared memory (it may be written again).
__device__ __forceinline__ void bulk_wait_read() { asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory"); }
/// This thread's bulk stores are complete.
__device__ __forceinline__ void bulk_wait() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }

/// A 4 x 4 transpose of 32-bit words inside a quad: lane t's word j goes to lane j's word t. In
/// the accumulator layout lane t holds columns 2t, 2t + 1 of four 8-column tiles; afterwards it
/// holds all 8 columns of tile t, one 16-byte store. Two butterflies (lane bit 0, then bit 1): a
/// word whose index differs from the lane in that bit trades places with the partner's.
__device__ __forceinline__ void quad_transpose(unsigned (&x)[4], int lane) {
  const bool odd = lane & 1, high = lane & 2;
#pragma unroll
  for (int pair = 0; pair < 2; ++pair) {
    const unsigned got = __shfl_xor_sync(0xffffffffu, odd ? x[2 * pair] : x[2 * pair + 1], 1);
    if (odd) x[2 * pair] = got;
    else x[2 * pair + 1] = got;
  }
#pragma unroll
  for (int q = 0; q < 2; ++q) {
    const unsigned got = __shfl_xor_sync(0xffffffffu, high ? x[q] : x[q + 2], 2);
    if (high) x[q] = got;
    else x[q + 2] = got;
  }
}

// Pieces of the consumers' and producers' work that the warp-specialised and the pair kernel
// (engine_cuda_pair.hpp) share. Force-inlined: each kernel keeps its own register allocation.

/// Band policies (Streaming, Triangle) carry a band item's sink keys in another of its tiles.
template <class Mask>
constexpr bool ws_folds_sink = has_sink_window<Mask>::value && has_visible_bits<Mask>::value;

/// The producer takes the next item in plan order (longest first; whichever consumer or CTA asks
/// next) into `slot`, with its runs and sink fold.
template <class Elem, class Mask>
__device__ __forceinline__ void ws_take_item(const WsParams<Elem, Mask>& wp, WsTakenItem& slot) {
  const Params<Elem, Mask>& p = wp.p;
  const TileGeometry& g = p.geometry;
  const index_t idx = index_t(atomicAdd(wp.counter, 1u));
  slot.index = idx < p.item_count ? std::int32_t(idx) : std::int32_t(p.item_count);
  if (idx >= p.item_count) return;
  const WorkItem it = p.items[idx];
  slot.item = it;
  slot.runs = p.runs[idx];
  SinkFold fold;
  if constexpr (ws_folds_sink<Mask>) {
    if (wp.fold_rows > 0) {
      fold = sink_fold(p.mask.sink_window(), g.first_position(it.q_tile), g.last_position(it.q_tile), kv_tile,
                       g.seq_k, wp.fold_rows);
      if (fold.tile >= 0 && !runs_hold_sink_fold(slot.runs, fold.tile)) fold.tile = -1;
    }
  }
  slot.fold = fold.tile < 0 ? -1 : std::int32_t(fold.tile * 2 + (fold.column != 0 ? 1 : 0));
}

/// The handoff, read by lane 0 in two 16-byte loads (volatile: kept inside the branch; an mbarrier
/// arrive releases only the arriving thread's reads, and lane 0 arrives for the warp) and
/// shuffled to the warp.
__device__ __forceinline__ void ws_read_handoff(const WsHandoff& from, int lane, int (&hand)[8]) {
#pragma unroll
  for (int i = 0; i < 8; ++i) hand[i] = 0;
  if (lane == 0) {
    const unsigned at = smem_address(&from);
    asm volatile("ld.volatile.shared.v4.s32 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(hand[0]), "=r"(hand[1]), "=r"(hand[2]), "=r"(hand[3])
                 : "r"(at));
    asm volatile("ld.volatile.shared.v4.s32 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(hand[4]), "=r"(hand[5]), "=r"(hand[6]), "=r"(hand[7])
                 : "r"(at + 16));
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) hand[i] = __shfl_sync(0xffffffffu, hand[i], 0);
}

/// The work item's fields a consumer uses, from the handoff (tile_begin / tile_end: the kernel's
/// step count in hand[6]).
__device__ __forceinline__ WorkItem ws_handoff_item(const int (&hand)[8]) {
  WorkItem item;
  item.batch = hand[2];
  item.kv_head = hand[3];
  item.head_block = hand[4];
  item.q_tile = hand[5];
  item.split_slot = hand[7];
  return item;
}

/// Q of this warp's 16 rows of a 64-row tile in shared memory as A fragments of every k16 step.
/// The TMA wrote the tile and all lanes read it: __syncwarp orders those reads before the lane 0
/// arrive that releases the buffer.
template <int Dim, class Elem>
__device__ __forceinline__ void ws_load_q(const Elem* sq, int warp, int lane, unsigned (&qf)[Dim / 16][4]) {
  const int mat = lane / 8, r = lane % 8;
  const int row = warp * 16 + r + (mat % 2) * 8;
#pragma unroll
  for (int kk = 0; kk < Dim / 16; ++kk) ldmatrix_x4(smem_address(sq + tile_offset(row, kk * 2 + mat / 2)), qf[kk]);
  __syncwarp();
}

/// The tile that carries the item's sink keys (-1: none) and their mask bits there, in the quad's
/// shift, from the handoff's fold (tile * 2 + carried at the tile's end; -1: none).
template <class Mask>
__device__ __forceinline__ void ws_sink_fold_bits(const Mask& mask, int fold, int fold_rows, int lane, index_t& fold_tile,
                                                  std::uint64_t& fold_bits) {
  fold_tile = -1;
  fold_bits = 0;
  if constexpr (ws_folds_sink<Mask>) {
    if (fold >= 0) {
      fold_tile = fold >> 1;
      const int column = (fold & 1) ? kv_tile - fold_rows : 0;
      fold_bits = (((std::uint64_t(1) << mask.sink_window().sink) - 1) << column) >> ((lane % 4) * 2);
    }
  }
}

/// The mask bits of this thread's two rows in a 64-key tile (row_bits policies; all-ones
/// otherwise, and for whole tiles): the policy's bits in partial tiles (with the sink keys where
/// the tile carries them), the keys before seq_k in the last tile.
template <class Mask>
__device__ __forceinline__ void ws_tile_bits(const Mask& mask, const TileGeometry& g, const index_t (&row_position)[2],
                                             index_t tile, bool partial, index_t keys, index_t fold_tile,
                                             std::uint64_t fold_bits, int lane, std::uint64_t (&seen_bits)[2]) {
  seen_bits[0] = seen_bits[1] = ~std::uint64_t(0);
  if constexpr (has_visible_bits<Mask>::value) {
    if (partial) {
      quad_visible_bits(mask, row_position, g.first_key(tile), g.seq_k, lane, seen_bits);
      if constexpr (ws_folds_sink<Mask>) {
        if (tile == fold_tile) seen_bits[0] |= fold_bits, seen_bits[1] |= fold_bits;
      }
    } else if (keys < kv_tile) {
      const std::uint64_t key_bits = keys >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << keys) - 1;
      seen_bits[0] = seen_bits[1] = key_bits >> ((lane % 4) * 2);
    }
  }
}

/// Masked scores (base 2 after `scale`) -> probabilities in place; the running max and sum of
/// this thread's two rows move on; alpha: each row's factor for the accumulators. The scale
/// (positive: the launches check) goes into the exponent's multiply-add, max(scale s) = scale
/// max(s). Lazy rescale: the running max moves only when the tile's exceeds it by more than
/// `slack` (ws_rescale_slack); else the probabilities stay below 2^slack against the old max, and
/// alpha is exactly 1 (the warp then skips the accumulators' multiplies).
template <int NT>
__device__ __forceinline__ void ws_online_softmax(float (&s)[NT][4], float scale, float slack, float (&row_max)[2],
                                                  float (&row_sum)[2], float (&alpha)[2]) {
  constexpr float minus_inf = minus_infinity;
  // Both rows at once, four chains a row for the max and for the sum, and the two rows' shuffles
  // in flight together: the reductions are dependent chains the warp waits on (ncu's top stall
  // is `wait`, fixed-latency dependencies). max is exact in any order.
  float mx[2][4];
#pragma unroll
  for (int h = 0; h < 2; ++h) mx[h][0] = mx[h][1] = mx[h][2] = mx[h][3] = minus_inf;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) mx[e / 2][(nt % 2) * 2 + e % 2] = fmaxf(mx[e / 2][(nt % 2) * 2 + e % 2], s[nt][e]);
  float m[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) m[h] = fmaxf(fmaxf(mx[h][0], mx[h][1]), fmaxf(mx[h][2], mx[h][3]));
#pragma unroll
  for (int h = 0; h < 2; ++h) m[h] = fmaxf(m[h], __shfl_xor_sync(0xffffffffu, m[h], 1));
#pragma unroll
  for (int h = 0; h < 2; ++h) m[h] = fmaxf(m[h], __shfl_xor_sync(0xffffffffu, m[h], 2));
  float shift[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const float m_tile = m[h] * scale;
    const float m_new = m_tile > row_max[h] + slack ? m_tile : row_max[h];
    shift[h] = m_new == minus_inf ? 0.0f : m_new;
    alpha[h] = m_new == row_max[h] ? 1.0f : fast_exp2(row_max[h] - m_new);
    row_max[h] = m_new;
  }
  float sum[2][4] = {};
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[nt][e] = fast_exp2(fmaf(s[nt][e], scale, -shift[e / 2]));
      sum[e / 2][(nt % 2) * 2 + e % 2] += s[nt][e];
    }
#pragma unroll
  for (int h = 0; h < 2; ++h)
    row_sum[h] = row_sum[h] * alpha[h] + ((sum[h][0] + sum[h][1]) + (sum[h][2] + sum[h][3]));
}

/// Probabilities -> the A fragments of P V (16-bit pairs), one per k16 step.
template <int Kind, int NT>
__device__ __forceinline__ void ws_pack_p(const float (&s)[NT][4], unsigned (&a)[NT / 2][4]) {
#pragma unroll
  for (int kk = 0; kk < NT / 2; ++kk) {
    a[kk][0] = pack<Kind>(s[2 * kk][0], s[2 * kk][1]);
    a[kk][1] = pack<Kind>(s[2 * kk][2], s[2 * kk][3]);
    a[kk][2] = pack<Kind>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
    a[kk][3] = pack<Kind>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
  }
}

/// Each row's 1 / l and lse once its sums are final: the quad's shuffles, a reciprocal (MUFU.RCP:
/// no IEEE division's slow path) and a log; issued under the last P V (timeline: epilogue 2115 ->
/// 1649 cycles, last P V 403 -> 522; within noise in time).
__device__ __forceinline__ void ws_finish_rows(const float (&row_sum)[2], const float (&row_max)[2],
                                               float (&row_inv)[2], float (&row_lse)[2]) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float l = row_sum[h];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    // !(l <= 0): a NaN sum (NaN in Q or K) gives NaN o and lse, not a row that saw nothing.
    row_inv[h] = !(l <= 0.0f) ? __fdividef(1.0f, l) : 0.0f;
    row_lse[h] = !(l <= 0.0f) ? (row_max[h] + __log2f(l)) * ln2 : minus_infinity;
  }
}

/// o = acc / l and lse of this thread's two rows (item rows first_row_of_thread and + 8, at
/// row_offset / row_head in the item), or the partial slot of a split item (item_rows per slot).
/// The same lines as the end of attention_kernel (shared with it as one inline function they
/// changed that kernel's register allocation: spill stores 12 -> 28 B at head dim 128, ptxas),
/// except that o leaves in 16-byte stores (quad_transpose; the engine takes o only with 16-byte
/// rows, handles_views): 4-byte stores wrote half sectors. o_staged: o left by the caller's bulk
/// stores (the pair kernel), lse only.
template <int Kind, int Dim, class Elem, class Mask>
__device__ __forceinline__ void ws_store_rows(const Params<Elem, Mask>& p, const WorkItem& item, index_t first_q_head,
                                              int item_rows, int first_row_of_thread, const int (&row_offset)[2],
                                              const int (&row_head)[2], const float (&acc)[Dim / 8][4],
                                              const float (&row_inv)[2], const float (&row_lse)[2], int lane,
                                              bool o_staged = false) {
  constexpr int d_tiles = Dim / 8;
  const Problem& pr = p.problem;
  const TileGeometry& g = p.geometry;
  const index_t first_row = index_t(item.q_tile) * g.q_tile;
  const index_t valid_rows = g.q_rows(item.q_tile);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = first_row_of_thread + h * 8;
    const index_t i = row_offset[h];
    const bool row_valid = i < valid_rows;  // the same for the four lanes of a quad
    const float inv = row_inv[h], lse = row_lse[h];
    const index_t head = first_q_head + row_head[h];
    if (item.split_slot >= 0) {
      if (!row_valid) continue;
      float* out = p.partial_o + (index_t(item.split_slot) * item_rows + r) * Dim;
#pragma unroll
      for (int dt = 0; dt < d_tiles; ++dt) {
        const int col = dt * 8 + (lane % 4) * 2;
        *reinterpret_cast<float2*>(out + col) = make_float2(acc[dt][2 * h] * inv, acc[dt][2 * h + 1] * inv);
      }
      if (lane % 4 == 0) p.partial_lse[index_t(item.split_slot) * item_rows + r] = lse;
      continue;
    }
    // Every lane of the warp shuffles; the quads of rows past the end store nothing.
    if (!o_staged) {
      Elem* out = p.o + pr.o(item.batch, head, first_row + i, 0);
#pragma unroll
      for (int b = 0; b < d_tiles / 4; ++b) {
        unsigned x[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) x[j] = pack<Kind>(acc[4 * b + j][2 * h] * inv, acc[4 * b + j][2 * h + 1] * inv);
        quad_transpose(x, lane);
        if (row_valid) *reinterpret_cast<uint4*>(out + (4 * b + lane % 4) * 8) = make_uint4(x[0], x[1], x[2], x[3]);
      }
    }
    if (row_valid && p.lse && lane % 4 == 0)
      p.lse[item.batch * pr.lse_batch + head * pr.lse_head + (first_row + i) * pr.lse_seq] = lse;
  }
}

template <int Dim, int Kind, class Elem, class Mask>
__global__ void __launch_bounds__(ws_threads<Dim>, 1) ws_attention_kernel(const __grid_constant__ WsParams<Elem, Mask> wp) {
#if TRIMIX_CUDA_WGMMA
  static_assert(Dim == 64 || Dim == 128, "the warp-specialised kernel takes head dims 64 and 128");
  constexpr int consumers = ws_consumers<Dim>;
  static_assert(consumers <= ws_consumer_threads / 32, "one producer warp per consumer");
  static_assert(ws_consumer_registers<Dim> % 8 == 0 &&
                    ws_consumer_threads * (ws_producer_registers + consumers * ws_consumer_registers<Dim>) <= 65536,
                "setmaxnreg: the producer's and the consumers' registers fit the SM's 64K");
  constexpr int halves = Dim / 64;  // 64-column blocks of a tile row, one bulk copy each
  constexpr unsigned q_bytes = ws_q_bytes<Dim>, kv_bytes = ws_kv_bytes<Dim>, consumer_bytes = ws_consumer_bytes<Dim>;
  constexpr int n_tiles = kv_tile / 8;
  constexpr int d_tiles = Dim / 8;
  constexpr float minus_inf = minus_infinity;
  const Params<Elem, Mask>& p = wp.p;
  const Problem& pr = p.problem;
  const TileGeometry& g = p.geometry;
  const index_t q_rows = g.q_tile;

  extern __shared__ __align__(1024) unsigned char shared_raw[];
  unsigned char* tiles = shared_raw + ((1024u - (smem_address(shared_raw) & 1023u)) & 1023u);
  // Per consumer: [0] Q full, [1] Q empty, [2 + s] stage s full, [2 + ws_stages + s] stage s empty.
  __shared__ alignas(8) std::uint64_t bars[consumers][2 + 2 * ws_stages];
  // The entry (tile * 2 + partial) of the tile in each stage, written by the producer before the
  // stage's copies: the consumers never walk the runs themselves (a call inside their tile loop
  // spilled every live register).
  __shared__ int stage_entry[consumers][ws_stages];
  // The item whose Q is in flight, as the producer read it (a consumer's own read of the work
  // item from global memory was a dependent load at the head of every item, ncu).
  __shared__ WsHandoff handoff[consumers];
  // The producer's current and next item (WsTakenItem), alternating.
  __shared__ WsTakenItem taken[consumers][2];
  static_assert(sizeof(bars) + sizeof(stage_entry) + sizeof(handoff) + sizeof(taken) == ws_static_bytes<Dim>,
                "ws_static_bytes counts these arrays");
  auto bar = [&](int c, int i) { return smem_address(&bars[c][i]); };
  if (threadIdx.x == 0) {
    for (int c = 0; c < consumers; ++c) {
      mbar_init(bar(c, 0), 1);
      mbar_init(bar(c, 1), ws_consumer_warps);
      for (int s = 0; s < ws_stages; ++s) {
        mbar_init(bar(c, 2 + s), 1);
        mbar_init(bar(c, 2 + ws_stages + s), ws_consumer_warps);
      }
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  const index_t group_size = pr.group_size();  // once: a 64-bit division
  auto first_q_head_of = [&](const WorkItem& it) {
    return it.kv_head * group_size + it.head_block * p.heads_per_item;
  };
  const int wg = threadIdx.x / 128;

  if (wg == 0) {
    // Producer: thread 0 of warp c feeds consumer c.
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(ws_producer_registers) : "memory");
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (warp >= consumers || lane != 0) return;
    const int c = warp;
    const unsigned q_dst = smem_address(tiles + c * consumer_bytes);
    auto take = [&](WsTakenItem& slot) { ws_take_item(wp, slot); };
    take(taken[c][0]);
    unsigned n = 0;  // tiles issued so far: stage n % ws_stages, its use n / ws_stages
    for (index_t k = 0;; ++k) {
      if (k > 0) mbar_wait(bar(c, 1), unsigned(k - 1) & 1u);  // the consumer holds the last Q in registers
      const WsTakenItem& cur = taken[c][k & 1];
      const index_t idx = cur.index;
      if (idx >= p.item_count) {
        handoff[c].slot = -1;
        mbar_arrive(bar(c, 0));
        // The last producer to run out leaves both counters zero for the next launch.
        __threadfence();
        if (atomicAdd(wp.counter + 1, 1u) == gridDim.x * consumers - 1) {
          atomicExch(wp.counter, 0u);
          atomicExch(wp.counter + 1, 0u);
        }
        break;
      }
      const WorkItem it = cur.item;
      const int fold = cur.fold;
      const index_t fold_tile = fold < 0 ? -1 : fold >> 1;
      {
        WsHandoff& to = handoff[c];
        to.slot = int(idx);
        to.fold = fold;
        to.batch = it.batch;
        to.kv_head = it.kv_head;
        to.head_block = it.head_block;
        to.q_tile = it.q_tile;
        to.tile_count = it.tile_end - it.tile_begin - (fold_tile >= 0 ? 1 : 0);
        to.split_slot = it.split_slot;
      }
      mbar_expect_tx(bar(c, 0), q_bytes);
      const int first_q_head = int(first_q_head_of(it)), first_row = int(index_t(it.q_tile) * q_rows);
      for (int h = 0; h < halves; ++h)
        tma_load(q_dst + h * half_tile_bytes, &wp.q_map, bar(c, 0), h * 64, first_row, first_q_head, int(it.batch));
      // The next item is taken once this one's first ws_stages tiles are issued: the ring is full
      // then, and the producer would wait for a stage anyway.
      int issued = 0;
      // The item's tiles from its runs (the launch requires them: Plan::runs_complete), read from
      // shared memory.
      const int run_count = cur.runs.count;
      for (int r = 0; r < run_count; ++r) {
        const bool partial = ((cur.runs.partial >> r) & 1u) != 0;
        const index_t run_end = cur.runs.end[r];
        for (index_t tile = cur.runs.begin[r]; tile < run_end; ++tile) {
          if (tile == 0 && fold_tile >= 0) continue;  // its keys ride in fold_tile
          const unsigned s = n % ws_stages, use = n / ws_stages;
          if (use > 0) mbar_wait(bar(c, 2 + ws_stages + s), (use - 1) & 1u);
          const bool carries_sink = tile == fold_tile;
          stage_entry[c][s] = int(tile) * 2 + int(partial || carries_sink);
          mbar_expect_tx(bar(c, 2 + s), kv_bytes);
          const unsigned k_dst = q_dst + q_bytes + s * kv_bytes, v_dst = k_dst + kv_bytes / 2;
          const int key = int(g.first_key(tile));
          const int kv_head = int(it.kv_head), batch = int(it.batch);
          if (carries_sink) {
            // Keys [0, fold_rows) into rows [column, column + fold_rows) of the stage, the tile's own
            // keys of the other rows around them: whole 8-row atoms of the 128-byte swizzle, so both
            // boxes land in the layout of one 64-row box.
            const int sink_row = (fold & 1) ? kv_tile - wp.fold_rows : 0, body_row = sink_row == 0 ? wp.fold_rows : 0;
            const unsigned sink_at = unsigned(sink_row) * 128u, body_at = unsigned(body_row) * 128u;
            for (int h = 0; h < halves; ++h) {
              const unsigned half = h * half_tile_bytes;
              tma_load(k_dst + half + sink_at, &wp.k_sink_map, bar(c, 2 + s), h * 64, 0, kv_head, batch);
              tma_load(k_dst + half + body_at, &wp.k_body_map, bar(c, 2 + s), h * 64, key + body_row, kv_head, batch);
              tma_load(v_dst + half + sink_at, &wp.v_sink_map, bar(c, 2 + s), h * 64, 0, kv_head, batch);
              tma_load(v_dst + half + body_at, &wp.v_body_map, bar(c, 2 + s), h * 64, key + body_row, kv_head, batch);
            }
          } else {
            for (int h = 0; h < halves; ++h) {
              tma_load(k_dst + h * half_tile_bytes, &wp.k_map, bar(c, 2 + s), h * 64, key, kv_head, batch);
              tma_load(v_dst + h * half_tile_bytes, &wp.v_map, bar(c, 2 + s), h * 64, key, kv_head, batch);
            }
          }
          ++n;
          if (++issued == ws_stages) take(taken[c][(k + 1) & 1]);
        }
      }
      if (issued < ws_stages) take(taken[c][(k + 1) & 1]);
    }
    return;
  }

  // Consumer c: warpgroup c + 1.
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(ws_consumer_registers<Dim>) : "memory");
  const int c = wg - 1;
  const int tid = threadIdx.x - 128 * wg, warp = tid / 32, lane = tid % 32;
  const Elem* sq = reinterpret_cast<const Elem*>(tiles + c * consumer_bytes);
  const unsigned kv_base = smem_address(tiles + c * consumer_bytes + q_bytes);
  const std::uint64_t k_desc = wgmma::descriptor(kv_base, 16, 1024);
  const std::uint64_t v_desc = wgmma::descriptor(kv_base + kv_bytes / 2, half_tile_bytes, 1024);
  constexpr std::uint64_t stage_step = kv_bytes >> 4;  // descriptor units
  auto k_step = [](int kk) { return std::uint64_t(((kk >> 2) * half_tile_bytes + (kk & 3) * 32) >> 4); };
  const int row_in_warp = lane / 4;  // this thread's rows: row_in_warp and row_in_warp + 8
  // Where those two rows sit in every item (position in the q-tile, head among the item's heads),
  // once per kernel: 64-bit divisions by the runtime q_rows were ~6 per item.
  int row_offset[2], row_head[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = warp * 16 + row_in_warp + h * 8, rows = int(q_rows);
    row_offset[h] = r % rows;
    row_head[h] = r / rows;
  }
  constexpr bool runtime_mask = is_head_dependent<Mask>::value;
  static_assert(!runtime_mask, "the warp-specialised kernel takes position-only masks");
  constexpr bool row_bits = has_visible_bits<Mask>::value;

  // A word the producer handed over (item slot, stage entry), read by lane 0 and shuffled to the
  // warp: an mbarrier arrive releases only the arriving thread's reads, and lane 0 arrives for the
  // warp (racecheck flagged the producer's next write when all lanes read such a word). volatile:
  // a plain load might be made unconditional.
  auto from_lane0 = [&](const int& word) {
    int value = 0;
    if (lane == 0) value = *static_cast<const volatile int*>(&word);
    return __shfl_sync(0xffffffffu, value, 0);
  };
  unsigned n = 0;  // tiles consumed so far
  for (index_t k = 0;; ++k) {
    mbar_wait(bar(c, 0), unsigned(k) & 1u);
    int hand[8];
    ws_read_handoff(handoff[c], lane, hand);
    const int slot = hand[0];
    if (slot < 0) break;
    const WorkItem item = ws_handoff_item(hand);
    const int tile_count = hand[6];
    const index_t first_q_head = first_q_head_of(item);
    index_t fold_tile;
    std::uint64_t fold_bits;
    ws_sink_fold_bits(p.mask, hand[1], wp.fold_rows, lane, fold_tile, fold_bits);

    unsigned qf[Dim / 16][4];
    ws_load_q<Dim>(sq, warp, lane, qf);
    if (lane == 0) mbar_arrive(bar(c, 1));  // one arrive per warp

    float acc[d_tiles][4];
#pragma unroll
    for (int dt = 0; dt < d_tiles; ++dt) acc[dt][0] = acc[dt][1] = acc[dt][2] = acc[dt][3] = 0.0f;
    float row_max[2] = {minus_inf, minus_inf}, row_sum[2] = {0.0f, 0.0f};
    index_t row_position[2];
#pragma unroll
    for (int h = 0; h < 2; ++h)
      row_position[h] = g.first_position(item.q_tile) + row_offset[h];

    // The landed stage of the next tile, its tile index and class.
    auto next_stage = [&](unsigned& stage, index_t& tile, bool& partial) {
      stage = n % ws_stages;
      mbar_wait(bar(c, 2 + stage), (n / ws_stages) & 1u);
      ++n;
      const int entry = from_lane0(stage_entry[c][stage]);  // lane 0 alone releases the stage
      tile = entry >> 1;
      partial = (entry & 1) != 0;
    };

    // S = Q K^T of the tile in stage s, issued (not waited for).
    auto issue_scores = [&](float (&s)[n_tiles][4], unsigned stage) {
      wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < Dim / 16; ++kk)
        wgmma::mma_rs_n64_k<Kind>(s, qf[kk], k_desc + stage * stage_step + k_step(kk), kk > 0);
      wgmma::commit();
    };
    // O += P V of the tile in stage s, issued (not waited for).
    auto issue_pv = [&](const unsigned (&a)[kv_tile / 16][4], unsigned stage) {
      wgmma::fence_operands(acc);
      wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < kv_tile / 16; ++kk) {
        const std::uint64_t b = v_desc + stage * stage_step + ((kk * 16 * 128) >> 4);
        if constexpr (Dim == 128) wgmma::mma_rs_n128<Kind>(acc, a[kk], b, 1);
        else wgmma::mma_rs_n64<Kind>(acc, a[kk], b, 1);
      }
      wgmma::commit();
    };
    auto mask_bits = [&](std::uint64_t (&seen_bits)[2], index_t tile, bool partial, index_t keys) {
      ws_tile_bits(p.mask, g, row_position, tile, partial, keys, fold_tile, fold_bits, lane, seen_bits);
    };
    // Scores of a landed S -> masked (-inf) -> probabilities in place (ws_online_softmax); alpha:
    // each row's factor for the accumulators.
    auto softmax = [&](float (&s)[n_tiles][4], const std::uint64_t (&seen_bits)[2], index_t tile, bool partial,
                       index_t keys, float (&alpha)[2]) {
      const index_t j0 = g.first_key(tile);
      if (partial || keys < kv_tile) {
#pragma unroll
        for (int nt = 0; nt < n_tiles; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            bool seen;
            if constexpr (row_bits) {
              seen = (seen_bits[e / 2] >> (nt * 8 + e % 2)) & 1u;
            } else {
              const int col = nt * 8 + (lane % 4) * 2 + (e % 2);
              seen = col < keys && (!partial || trimix::visible(p.mask, row_position[e / 2], j0 + col, g.seq_k));
            }
            if (!seen) s[nt][e] = minus_inf;
          }
      }
      ws_online_softmax(s, p.scale_log2, wp.rescale_slack, row_max, row_sum, alpha);
    };
    auto pack_p = [&](const float (&s)[n_tiles][4], unsigned (&a)[kv_tile / 16][4]) { ws_pack_p<Kind>(s, a); };
    auto release = [&](unsigned stage) {
      __syncwarp();
      if (lane == 0) mbar_arrive(bar(c, 2 + ws_stages + stage));
    };

    float row_inv[2], row_lse[2];
    auto finish_rows = [&] { ws_finish_rows(row_sum, row_max, row_inv, row_lse); };
    if (tile_count > 0) {
      // First tile: S, softmax, P kept for the next step.
      index_t tile;
      bool partial;
      unsigned prev_stage;
      next_stage(prev_stage, tile, partial);
      float s[n_tiles][4];
      issue_scores(s, prev_stage);
      index_t keys = g.kv_keys(tile);
      std::uint64_t seen_bits[2];
      mask_bits(seen_bits, tile, partial, keys);
      wgmma::wait_all();
      wgmma::fence_operands(s);
      float alpha[2];
      softmax(s, seen_bits, tile, partial, keys, alpha);
      unsigned a[kv_tile / 16][4];
      pack_p(s, a);
      // Steady state: S of this tile and P V of the previous one on the tensor cores together.
      for (int i = 1; i < tile_count; ++i) {
        unsigned stage;
        next_stage(stage, tile, partial);
        issue_scores(s, stage);
        issue_pv(a, prev_stage);
        keys = g.kv_keys(tile);
        mask_bits(seen_bits, tile, partial, keys);
        asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
        wgmma::fence_operands(s);
        softmax(s, seen_bits, tile, partial, keys, alpha);
        // ptxas schedules this wait and the release above the softmax, which then runs after P V
        // rather than under it (SASS of d99094a and 7159532). Forcing the order (the wait in both
        // arms of the rescale branch, branch exp/pv-wait-below-softmax) measured no faster; likely
        // the other consumer's wgmmas keep the tensor pipe busy meanwhile (bench/NOTES.md,
        // eighteenth session).
        wgmma::wait_all();
        wgmma::fence_operands(acc);
        release(prev_stage);
        rescale_accumulators(acc, alpha);
        pack_p(s, a);
        prev_stage = stage;
      }
      issue_pv(a, prev_stage);
      finish_rows();  // under the last P V: the sums are final
      wgmma::wait_all();
      wgmma::fence_operands(acc);
      release(prev_stage);
    } else {
      finish_rows();
    }

    // o = acc / l and lse, or the partial slot of a split item.
    ws_store_rows<Kind, Dim>(p, item, first_q_head, block_rows, warp * 16 + row_in_warp, row_offset, row_head, acc,
                             row_inv, row_lse, lane);
  }
#endif
}

/// cuTensorMapEncodeTiled from the driver, through the runtime (no link to libcuda); nullptr where
/// the driver does not give it.
inline PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 encoder = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess)
      return PFN_cuTensorMapEncodeTiled_v12000(nullptr);
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  return encoder;
}

/// A 4-d tensor map (dim, seq, head, batch) of a 16-bit [B, H, S, D] or [B, S, H, D] array, boxes
/// of 64 head-dim columns x box_rows positions x box_heads heads, 128-byte swizzle (the layout of
/// tile_offset). False where the driver refuses it (the caller then takes attention_kernel).
inline bool encode_tensor_map(CUtensorMap& map, int kind, const void* base, const Strides4& s, index_t batch,
                              index_t heads, index_t seq, index_t dim, unsigned box_rows, unsigned box_heads) {
  const auto encode = tensor_map_encoder();
  if (!encode) return false;
  const cuuint64_t dims[4] = {cuuint64_t(dim), cuuint64_t(seq), cuuint64_t(heads), cuuint64_t(batch)};
  const cuuint64_t strides[3] = {cuuint64_t(s.seq) * 2, cuuint64_t(s.head) * 2, cuuint64_t(s.batch) * 2};
  const cuuint32_t box[4] = {64u, box_rows, box_heads, 1u};
  const cuuint32_t element_strides[4] = {1u, 1u, 1u, 1u};
  return encode(&map, kind == 1 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 4,
                const_cast<void*>(base), dims, strides, box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

/// Launches of the warp-specialised kernel in this process: tests check that it, and not the
/// fallback to attention_kernel, ran where it should.
inline std::atomic<long>& ws_launches() {
  static std::atomic<long> count{0};
  return count;
}

/// At most this many CTAs for the warp-specialised kernel, 0 for one per SM: tests set it to make
/// each consumer run many items in a row (small problems otherwise give most consumers one).
inline int& ws_grid_limit() {
  static int limit = 0;
  return limit;
}

/// Whether the warp-specialised kernel is allowed (TRIMIX_CUDA_WS=0 turns it off, for measuring).
inline bool ws_enabled() {
  static const bool answer = !switched_off("TRIMIX_CUDA_WS");
  return answer;
}

/// Whether the kernel rescales lazily (ws_rescale_slack; TRIMIX_CUDA_LAZY_RESCALE=0 turns it off,
/// for measuring).
inline bool lazy_rescale_enabled() {
  static const bool answer = !switched_off("TRIMIX_CUDA_LAZY_RESCALE");
  return answer;
}

/// Whether the kernel may carry band items' sink keys in another tile (TRIMIX_CUDA_SINK_FOLD=0
/// turns it off, for measuring).
inline bool sink_fold_enabled() {
  static const bool answer = !switched_off("TRIMIX_CUDA_SINK_FOLD");
  return answer;
}

}  // namespace trimix::impl::cuda_engine
