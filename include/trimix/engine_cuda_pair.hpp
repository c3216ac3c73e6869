#pragma once
/// \file engine_cuda_pair.hpp
/// Pair kernel of the CUDA engine (sm_90a, head dim 128, position-only masks): FlashAttention-3's
/// shape on the shared plan. One persistent CTA per SM runs one 128-row item at a time with both
/// consumer warpgroups on it (consumer c owns rows [64c, 64c + 64)), so that they share every K / V
/// stage: half the L2 traffic of engine_cuda_ws.hpp's kernel per row, and room in shared memory for
/// steps of 128 keys (two 64-key plan tiles a stage), which pay a step's fixed costs (barriers,
/// max / sum chains, the accumulators' rescale) once per 128 keys instead of per 64.
///  - warpgroup 0 is the producer: one thread takes items from the global counter (plan order,
///    longest first), each one ahead while the item before still issues (WsTakenItem), and issues
///    the bulk tensor copies (TMA) of the item's Q (32 KB) and of its tiles, two plan tiles per
///    stage of `pair_stages` (64 KB each: K and V of 128 keys); an item of an odd tile count
///    starts with a stage whose second half is not loaded, whose S the consumers compute at half
///    width (m64n64k16) and whose P V takes 4 k-steps;
///  - the consumers (setmaxnreg 232) keep Q in registers, compute S = Q K^T of 128 keys with
///    m64n128k16 wgmmas, overlap S(i + 1) with P(i) V(i) as in engine_cuda_ws.hpp, and take turns
///    at the tensor cores (FA3's ping-pong: named barriers order their wgmma issues, so one's
///    softmax runs under the other's products; TRIMIX_CUDA_PING_PONG=0 turns the turns off: within
///    noise of each other at 3165080, bench/NOTES.md);
///  - a consumer takes the next item's Q into registers at the end of an item, then stages the
///    item's o in its Q half (stmatrix) for bulk tensor stores (each warp its 16 rows), instead of
///    16-byte stores from registers (TRIMIX_CUDA_TMA_STORE=0 gives those back, for measuring).
/// Band items of SinkWindow policies carry their sink keys in another tile (sink_fold), as in the
/// warp-specialised kernel. Included by engine_cuda.hpp after engine_cuda_ws.hpp.

namespace trimix::impl::cuda_engine {

/// Where a pair kernel item's cycles go: with TRIMIX_CUDA_PAIR_TIMELINE defined, clock64 stamps of
/// every item (the producer's and each consumer's phases, per CTA and item in order) go to a device
/// array that pair_timeline_dump writes out (attention_bench does for one call after its timed ones
/// with TRIMIX_TIMELINE_DIR set; bench/pair_timeline_summary.py reads it). Without it, the stamps
/// compile to nothing. Measuring builds of one translation unit only (a __device__ array); CTAs past
/// `ctas` and items past `items` are not stamped. Record [cta][item][role][word], role 0 the
/// producer, 1 + c consumer c (its thread 0). Producer words: 0 item start, 1 Q buffer free, 2 first
/// stage issued, 3 last stage issued, 4 cycles waiting for free stages, 5 item index, 6 tiles.
/// Consumer words: 0 item start, 1 first stage landed, 2 first stage done (S, softmax, P), 3 step
/// loop done, 11 last P V issued and rows finished, 12 next Q taken, 4 last P V done, 5 o stores
/// issued, 6 stages, 7-10 the loop's cycles waiting for a stage, the turn, S and P V, 13 split slot,
/// 14 and 15 the global timer (ns, comparable across SMs) at words 0 and 5: cycles over nanoseconds
/// give the SM clock the item ran at; 16-20 the rest of the loop besides those waits: its cycles
/// computing mask bits (inside the turn since 85e095c), issuing S and P V (the turn held, the mask
/// bits not counted), masking + softmax, rescaling, and releasing + packing P (each step's clock64
/// reads included).
struct PairTimeline {
  static constexpr int ctas = 160, items = 320, words = 24;
#ifdef TRIMIX_CUDA_PAIR_TIMELINE
  static __device__ long long now() { return clock64(); }
  static __device__ long long now_ns() {
    long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
  }
  static __device__ void stamp(int role, index_t k, int word, long long value);
#else
  static __device__ long long now() { return 0; }
  static __device__ long long now_ns() { return 0; }
  static __device__ void stamp(int, index_t, int, long long) {}
#endif
};
#ifdef TRIMIX_CUDA_PAIR_TIMELINE
__device__ long long pair_timeline[PairTimeline::ctas][PairTimeline::items][3][PairTimeline::words];
__device__ inline void PairTimeline::stamp(int role, index_t k, int word, long long value) {
  if (blockIdx.x < ctas && k < items) pair_timeline[blockIdx.x][k][role][word] = value;
}
/// Zeroes the stamps (each slot keeps whichever launch wrote it last: clear, then run one call).
inline void pair_timeline_clear() {
  void* stamps = nullptr;
  if (cudaDeviceSynchronize() != cudaSuccess || cudaGetSymbolAddress(&stamps, pair_timeline) != cudaSuccess ||
      cudaMemset(stamps, 0, sizeof(long long) * PairTimeline::ctas * PairTimeline::items * 3 * PairTimeline::words) !=
          cudaSuccess || cudaDeviceSynchronize() != cudaSuccess)
    throw std::runtime_error("trimix: pair_timeline_clear: cannot clear the stamps");
}
/// Writes the stamps to `path` (raw int64, [cta][item][role][word]).
inline void pair_timeline_dump(const std::string& path) {
  static long long host[PairTimeline::ctas][PairTimeline::items][3][PairTimeline::words];
  void* stamps = nullptr;
  if (cudaDeviceSynchronize() != cudaSuccess || cudaGetSymbolAddress(&stamps, pair_timeline) != cudaSuccess ||
      cudaMemcpy(host, stamps, sizeof(host), cudaMemcpyDeviceToHost) != cudaSuccess)
    throw std::runtime_error("trimix: pair_timeline_dump: cannot read the stamps");
  FILE* f = std::fopen(path.c_str(), "wb");
  const bool written = f && std::fwrite(host, sizeof(host), 1, f) == 1;
  if (f) std::fclose(f);
  if (!written) throw std::runtime_error("trimix: pair_timeline_dump: cannot write " + path);
}
#endif

constexpr int pair_stages = 3;
constexpr int pair_rows = 2 * block_rows;        ///< rows of an item: 64 per consumer
constexpr int pair_threads = 3 * 128;             ///< producer and two consumer warpgroups
constexpr unsigned pair_q_bytes = pair_rows * 128 * 2;   ///< Q of both consumers, 16 KB each
constexpr unsigned pair_k_bytes = 2 * kv_tile * 128 * 2;  ///< K of 128 keys
constexpr unsigned pair_kv_bytes = 2 * pair_k_bytes;       ///< K and V of one stage
constexpr int pair_shared_bytes = int(pair_q_bytes + pair_stages * pair_kv_bytes) + 1024;
/// Registers per thread (setmaxnreg): 40 for the producer thread's warpgroup, 232 per consumer
/// (acc 64 + S 64 + P 32 + Q 32 live across a step). setmaxnreg moves registers between the
/// warpgroups of the CTA, it cannot add any: the sum stays within the launch's 168 a thread (64K
/// over 384 threads, in units of 8), so the producer cannot have 48 (ptxas, Triangle: spill stores 68
/// -> 28 bytes) without the consumers dropping to 224.
constexpr int pair_producer_registers = 40, pair_consumer_registers = 232;
constexpr int pair_launch_registers = 65536 / pair_threads / 8 * 8;
static_assert(pair_producer_registers + 2 * pair_consumer_registers <= 3 * pair_launch_registers, "setmaxnreg budget");
/// Named barriers of the ping-pong turns (0 is __syncthreads'), one per consumer; then one per
/// consumer for its own 128 threads (take_q).
constexpr int pair_turn_barrier = 8, pair_consumer_barrier = 10;
/// The kernel's static shared memory, as declared (the launch checks the loaded kernel's, which
/// the aligned dynamic array pads, with the dynamic part).
constexpr int pair_static_bytes = int(sizeof(std::uint64_t) * (2 + 2 * pair_stages) + sizeof(int) * 2 * pair_stages +
                                      sizeof(WsHandoff) + 2 * sizeof(WsTakenItem));

/// Whether the pair kernel may run (TRIMIX_CUDA_PAIR=0 turns it off: plans then have 64-row items
/// and engine_cuda_ws.hpp's kernel runs, for measuring).
inline bool pair_enabled() {
  static const bool answer = !switched_off("TRIMIX_CUDA_PAIR");
  return answer;
}

/// Whether the pair kernel's o leaves through shared memory by bulk tensor stores
/// (TRIMIX_CUDA_TMA_STORE=0: 16-byte stores from registers, for measuring).
inline bool tma_store_enabled() {
  static const bool answer = !switched_off("TRIMIX_CUDA_TMA_STORE");
  return answer;
}

#ifdef TRIMIX_CUDA_PAIR_BOUNDS
/// Bounds for measuring builds only (wrong outputs, timing only): with TRIMIX_CUDA_PAIR_BOUNDS
/// defined, TRIMIX_CUDA_PAIR_BOUND names what the kernel leaves out, several joined by '+'
/// (filledkv+nomask), so that one binary times them all against `none` (bench/ab_gpu.sh --env).
/// All but noboundary are the producer's: the consumers' code is the same in those.
enum PairBound : int {
  bound_none = 0,
  bound_no_kv = 1,        ///< no K / V copies: the stages' barriers complete with no bytes
  bound_same_kv = 2,      ///< every tile copied from key 0: the same bytes into shared memory, L2-hot
  bound_little_kv = 4,    ///< one 8 KB box a stage (instead of 64 KB, 32 KB for a lone tile): latency, few bytes
  bound_no_mask = 8,      ///< every tile marked whole: no mask code in the consumers
  bound_filled_kv = 16,   ///< each ring stage copied on its first use only: real operands, no bytes after
  bound_no_boundary = 32, ///< consumers: no mask bits or softmax in an item's first stage, no o stores (the three below)
  bound_no_lone = 64,     ///< an odd tile count's lone tile left out: whole stages only (fewer computed pairs)
  bound_no_first_mask = 128,     ///< noboundary's parts alone: no mask bits (nor masking) in an item's first stage,
  bound_no_first_softmax = 256,  ///< no softmax there (alpha 1, P from the raw scores),
  bound_no_o_stores = 512,       ///< no o stores
  bound_reuse_kv = 1024,   ///< an item after the CTA's first takes its first pair_stages whole stages from the ring
                           ///< as it stands (no bytes, real operands): the most that keeping the last item's
                           ///< stages resident could save (items of one head in a row, key order alternating)
  bound_pair_reuse_kv = 2048,  ///< the same for odd plan items only: reuse inside item pairs (2j, 2j + 1)
  bound_band_kv = 4096,    ///< no bytes for any stage of an item of <= 10 tiles after the CTA's first (band items)
  bound_first_kv = 8192,   ///< no bytes for the first stage of an item after the CTA's first
};
inline int pair_bound() {
  static const int answer = [] {
    const char* v = std::getenv("TRIMIX_CUDA_PAIR_BOUND");
    const std::string names = v ? v : "none";
    const std::pair<const char*, int> known[] = {{"none", bound_none},         {"nokv", bound_no_kv},
                                                 {"samekv", bound_same_kv},    {"littlekv", bound_little_kv},
                                                 {"nomask", bound_no_mask},    {"filledkv", bound_filled_kv},
                                                 {"noboundary", bound_no_boundary}, {"nolone", bound_no_lone},
                                                 {"nofirstmask", bound_no_first_mask},
                                                 {"nofirstsoftmax", bound_no_first_softmax},
                                                 {"noostores", bound_no_o_stores},
                                                 {"reusekv", bound_reuse_kv},
                                                 {"pairreusekv", bound_pair_reuse_kv},
                                                 {"bandkv", bound_band_kv},
                                                 {"firstkv", bound_first_kv}};
    int bits = 0;
    for (std::size_t at = 0; at <= names.size();) {
      const std::size_t end = std::min(names.find('+', at), names.size());
      const std::string name = names.substr(at, end - at);
      int bit = -1;
      for (const auto& k : known)
        if (name == k.first) bit = k.second;
      if (bit < 0)
        throw std::invalid_argument("trimix: TRIMIX_CUDA_PAIR_BOUND takes none, nokv, samekv, littlekv, nomask, "
                                    "filledkv, noboundary, nolone, nofirstmask, nofirstsoftmax, noostores, reusekv, pairreusekv, "
                                    "bandkv or firstkv, "
                                    "joined by '+', not " + names);
      bits |= bit;
      at = end + 1;
    }
    const int kv_bounds = bits & (bound_no_kv | bound_same_kv | bound_little_kv | bound_filled_kv | bound_reuse_kv |
                                  bound_pair_reuse_kv | bound_band_kv | bound_first_kv);
    if ((kv_bounds & (kv_bounds - 1)) != 0)
      throw std::invalid_argument("trimix: TRIMIX_CUDA_PAIR_BOUND takes at most one of nokv, samekv, littlekv, "
                                  "filledkv, reusekv, pairreusekv, bandkv, firstkv, not " + names);
    return bits;
  }();
  return answer;
}
/// Idle cycles without work, for measuring builds: with TRIMIX_CUDA_PAIR_SLEEP_NS=T each consumer
/// sleeps ~T ns (__nanosleep) after an item's o stores, so that cycles grow while the energy of the
/// work stays the same: at the power cap, how much of a cycle reaches the time.
inline int pair_sleep_ns() {
  static const int answer = [] {
    const char* v = std::getenv("TRIMIX_CUDA_PAIR_SLEEP_NS");
    const int ns = v ? std::atoi(v) : 0;
    if (ns < 0 || ns > 1000000) throw std::invalid_argument("trimix: TRIMIX_CUDA_PAIR_SLEEP_NS takes 0 to 1000000");
    return ns;
  }();
  return answer;
}
#endif

/// Whether the pair kernel's consumers take turns (TRIMIX_CUDA_PING_PONG=0 turns it off, for
/// measuring).
inline bool ping_pong_enabled() {
  static const bool answer = !switched_off("TRIMIX_CUDA_PING_PONG");
  return answer;
}

template <int Kind, class Elem, class Mask>
__global__ void __launch_bounds__(pair_threads, 1) pair_attention_kernel(const __grid_constant__ WsParams<Elem, Mask> wp) {
#if TRIMIX_CUDA_WGMMA
  constexpr int Dim = 128, halves = 2;
  constexpr int n_tiles = 2 * kv_tile / 8;  // 8-column tiles of S: 128 keys
  constexpr int d_tiles = Dim / 8;
  constexpr float minus_inf = minus_infinity;
  const Params<Elem, Mask>& p = wp.p;
  const Problem& pr = p.problem;
  const TileGeometry& g = p.geometry;
  const index_t q_rows = g.q_tile;

  extern __shared__ __align__(1024) unsigned char shared_raw[];
  unsigned char* tiles = shared_raw + ((1024u - (smem_address(shared_raw) & 1023u)) & 1023u);
  // [0] Q full, [1] Q empty, [2 + s] stage s full, [2 + pair_stages + s] stage s empty.
  __shared__ alignas(8) std::uint64_t bars[2 + 2 * pair_stages];
  // The entries (tile * 2 + partial, -1: none) of the two plan tiles in each stage.
  __shared__ alignas(8) int stage_entry[pair_stages][2];
  __shared__ WsHandoff handoff;
  __shared__ WsTakenItem taken[2];
  static_assert(sizeof(bars) + sizeof(stage_entry) + sizeof(handoff) + sizeof(taken) == pair_static_bytes,
                "pair_static_bytes counts these arrays");
  auto bar = [&](int i) { return smem_address(&bars[i]); };
  // Shared memory: Q of consumer c at c * 16 KB ([2 column halves][64 rows][128 bytes]); stage s
  // at pair_q_bytes + s * pair_kv_bytes: K as [2 column halves][128 keys][128 bytes], then V alike,
  // so that one m64n128k16 reads 128 keys of K and a k16 step of P V 16 keys of V.
  const unsigned kv_base = smem_address(tiles + pair_q_bytes);
  {
    // A stage's second half, where an item of an odd tile count leaves it unloaded (its first
    // stage), is read by no wgmma (S at half width, P V of 4 k-steps); zeros first all the same,
    // so that none ever could read shared memory that nothing wrote.
    const uint4 zero = make_uint4(0u, 0u, 0u, 0u);
    for (unsigned at = threadIdx.x * 16u; at < pair_stages * pair_kv_bytes; at += pair_threads * 16u)
      *reinterpret_cast<uint4*>(tiles + pair_q_bytes + at) = zero;
    fence_async_proxy();
  }
  if (threadIdx.x == 0) {
    mbar_init(bar(0), 1);
    mbar_init(bar(1), 2 * ws_consumer_warps);
    for (int s = 0; s < pair_stages; ++s) {
      mbar_init(bar(2 + s), 1);
      mbar_init(bar(2 + pair_stages + s), 2 * ws_consumer_warps);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  const index_t group_size = pr.group_size();
  auto first_q_head_of = [&](const WorkItem& it) {
    return it.kv_head * group_size + it.head_block * p.heads_per_item;
  };
  const int wg = threadIdx.x / 128;

  if (wg == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(pair_producer_registers) : "memory");
    if (threadIdx.x != 0) return;
    const unsigned q_dst = smem_address(tiles);
    auto take = [&](WsTakenItem& slot) { ws_take_item(wp, slot); };
    take(taken[0]);
    unsigned n = 0;  // stages issued so far: stage n % pair_stages, its use n / pair_stages
    long long empty_wait = 0;  // PairTimeline: cycles of the item waiting for free stages
    // The loop's types set the code ptxas (CUDA 13) gives this thread's 40 registers, and that
    // code shows in the time (bench/NOTES.md, thirty-fifth session, H200 / H100): with 64-bit tiles the
    // sink-folding masks' copies took their operands from ordinary registers, moved into uniform
    // ones before every copy (R2UR 215, spill stores / loads 15 / 18), 32-bit tiles keep them
    // uniform (R2UR 57, 3 / 4): triangle and streaming 3-4% faster. The other masks' code goes the
    // other way (32-bit: R2UR 53 -> 153, causal 2% slower), so they keep 64-bit tiles. After a
    // change here, compare the kernels with scripts/gpu/sass_diff.py.
    using tile_index = std::conditional_t<ws_folds_sink<Mask>, int, index_t>;
    const int short_tile = g.seq_k % kv_tile != 0 ? int(g.seq_k / kv_tile) : -1;  // the last tile, short of 64 keys
    for (unsigned k = 0;; ++k) {
      PairTimeline::stamp(0, k, 0, PairTimeline::now());
      if (k > 0) mbar_wait(bar(1), unsigned(k - 1) & 1u);  // both consumers hold the last Q in registers
      PairTimeline::stamp(0, k, 1, PairTimeline::now());
      empty_wait = 0;
      const WsTakenItem& cur = taken[k & 1];
      const index_t idx = cur.index;
      if (idx >= p.item_count) {
        handoff.slot = -1;
        mbar_arrive(bar(0));
        __threadfence();
        if (atomicAdd(wp.counter + 1, 1u) == gridDim.x - 1) {
          atomicExch(wp.counter, 0u);
          atomicExch(wp.counter + 1, 0u);
        }
        break;
      }
      const WorkItem it = cur.item;
      const int fold = ws_folds_sink<Mask> ? cur.fold : -1;  // a constant -1 takes the fold copies out of other masks' code
      const int fold_tile = fold < 0 ? -1 : fold >> 1;
      const int tiles_visited = it.tile_end - it.tile_begin - (fold_tile >= 0 ? 1 : 0);
      handoff.slot = int(idx);
      handoff.fold = fold;
      handoff.batch = it.batch;
      handoff.kv_head = it.kv_head;
      handoff.head_block = it.head_block;
      handoff.q_tile = it.q_tile;
#ifdef TRIMIX_CUDA_PAIR_BOUNDS
      const bool drop_lone = (wp.pair_bound & bound_no_lone) && (tiles_visited & 1) != 0;
#else
      constexpr bool drop_lone = false;
#endif
      handoff.tile_count = drop_lone ? tiles_visited / 2 : (tiles_visited + 1) / 2;  // stages
      handoff.split_slot = it.split_slot;
      mbar_expect_tx(bar(0), pair_q_bytes);
      const int first_q_head = int(first_q_head_of(it)), first_row = int(index_t(it.q_tile) * q_rows);
      for (int c = 0; c < 2; ++c)
        for (int h = 0; h < halves; ++h)
          tma_load(q_dst + c * ws_q_bytes<Dim> + h * half_tile_bytes, &wp.q_map, bar(0), h * 64,
                   first_row + c * wp.q_row_step, first_q_head + c * wp.q_head_step, int(it.batch));
      const int kv_head = int(it.kv_head), batch = int(it.batch);
      // One plan tile into half `sub` of stage s.
      auto load_tile = [&](unsigned s, int sub, tile_index tile) {
        const unsigned k_dst = kv_base + s * pair_kv_bytes + sub * half_tile_bytes, v_dst = k_dst + pair_k_bytes;
#ifdef TRIMIX_CUDA_PAIR_BOUNDS
        const int key = (wp.pair_bound & bound_same_kv) ? 0 : tile * kv_tile;
#else
        const int key = tile * kv_tile;
#endif
        if (tile == fold_tile) {
          // The sink keys into rows [column, column + fold_rows) of the 64-key block, the tile's own
          // keys around them (whole 8-row swizzle atoms, see engine_cuda_ws.hpp).
          const int sink_row = (fold & 1) ? kv_tile - wp.fold_rows : 0, body_row = sink_row == 0 ? wp.fold_rows : 0;
          const unsigned sink_at = unsigned(sink_row) * 128u, body_at = unsigned(body_row) * 128u;
          for (int h = 0; h < halves; ++h) {
            const unsigned half = h * 2 * half_tile_bytes;
            tma_load(k_dst + half + sink_at, &wp.k_sink_map, bar(2 + s), h * 64, 0, kv_head, batch);
            tma_load(k_dst + half + body_at, &wp.k_body_map, bar(2 + s), h * 64, key + body_row, kv_head, batch);
            tma_load(v_dst + half + sink_at, &wp.v_sink_map, bar(2 + s), h * 64, 0, kv_head, batch);
            tma_load(v_dst + half + body_at, &wp.v_body_map, bar(2 + s), h * 64, key + body_row, kv_head, batch);
          }
        } else {
          for (int h = 0; h < halves; ++h) {
            tma_load(k_dst + h * 2 * half_tile_bytes, &wp.k_map, bar(2 + s), h * 64, key, kv_head, batch);
            tma_load(v_dst + h * 2 * half_tile_bytes, &wp.v_map, bar(2 + s), h * 64, key, kv_head, batch);
          }
        }
      };
      int issued = 0;  // the next item is taken once this one's first pair_stages stages are issued
#ifdef TRIMIX_CUDA_PAIR_BOUNDS
      int reused = 0;  // reusekv / pairreusekv: whole stages of this item that came without bytes
      const bool reuse = k > 0 && ((wp.pair_bound & bound_reuse_kv) || ((wp.pair_bound & bound_pair_reuse_kv) && (idx & 1)));
      const bool band_free = k > 0 && (wp.pair_bound & bound_band_kv) && tiles_visited <= 10;
      const bool first_free = k > 0 && (wp.pair_bound & bound_first_kv);
#endif
      // The tile held for the next stage's second half (-1: none). An odd tile count puts its
      // lone tile in the item's first stage (-2: the next tile goes alone), whose S the consumers
      // then compute at half width (m64n64k16), with half the softmax and half the P V.
      tile_index held = drop_lone ? -3 : (tiles_visited & 1) != 0 ? -2 : -1;  // -3: bound nolone, skip it
      int held_entry = -1;
      // Stage of plan tiles `first` (entry e0) and `second` (-1: none).
      auto issue_stage = [&](tile_index first, int e0, tile_index second, int e1) {
        const unsigned s = n % pair_stages, use = n / pair_stages;
        const long long waited_from = PairTimeline::now();
        if (use > 0) mbar_wait(bar(2 + pair_stages + s), (use - 1) & 1u);
        empty_wait += PairTimeline::now() - waited_from;
        stage_entry[s][0] = e0;
        stage_entry[s][1] = e1;
#ifdef TRIMIX_CUDA_PAIR_BOUNDS
        const bool kept = reuse && second >= 0 && reused < pair_stages;  // reusekv: one of the first whole stages
        reused += kept ? 1 : 0;
        if ((wp.pair_bound & bound_no_kv) || ((wp.pair_bound & bound_filled_kv) && use > 0) || kept || band_free ||
            (first_free && issued == 0)) {
          mbar_expect_tx(bar(2 + s), 0u);
        } else if (wp.pair_bound & bound_little_kv) {
          mbar_expect_tx(bar(2 + s), half_tile_bytes);
          tma_load(kv_base + s * pair_kv_bytes, &wp.k_map, bar(2 + s), 0, first * kv_tile, kv_head, batch);
        } else
#endif
        {
#ifdef TRIMIX_CUDA_PAIR_BOUNDS
          // filledkv: a lone stage's first use fills its second half too, so that no operand stays 0.
          if ((wp.pair_bound & bound_filled_kv) && second < 0) second = first;
#endif
          mbar_expect_tx(bar(2 + s), second >= 0 ? pair_kv_bytes : pair_kv_bytes / 2);
          load_tile(s, 0, first);
          if (second >= 0) load_tile(s, 1, second);
        }
        ++n;
        if (issued == 0) PairTimeline::stamp(0, k, 2, PairTimeline::now());
        if (++issued == pair_stages) take(taken[(k + 1) & 1]);
      };
      const int run_count = cur.runs.count;
      for (int r = 0; r < run_count; ++r) {
        const bool partial = ((cur.runs.partial >> r) & 1u) != 0;
        const tile_index run_end = cur.runs.end[r];
        for (tile_index tile = cur.runs.begin[r]; tile < run_end; ++tile) {
          if (tile == 0 && fold_tile >= 0) continue;  // its keys ride in fold_tile
          // Bit 0: the consumers mask this tile (a partial tile, the sink's carrier, or the last
          // tile short of 64 keys); a clear bit lets them skip every mask computation.
          int entry = tile * 2 + int(partial || tile == fold_tile || tile == short_tile);
#ifdef TRIMIX_CUDA_PAIR_BOUNDS
          if (wp.pair_bound & bound_no_mask) entry &= ~1;
#endif
          if (drop_lone && held == -3) {  // drop_lone first: plain builds compile no test (causal R2UR 53 -> 214)
            held = -1;
          } else if (held == -1) {
            held = tile, held_entry = entry;
          } else {
            const bool lone = held == -2;
            issue_stage(lone ? tile : held, lone ? entry : held_entry, lone ? -1 : tile, lone ? -1 : entry);
            held = -1;
          }
        }
      }
      PairTimeline::stamp(0, k, 3, PairTimeline::now());
      PairTimeline::stamp(0, k, 4, empty_wait);
      PairTimeline::stamp(0, k, 5, idx);
      PairTimeline::stamp(0, k, 6, tiles_visited);
      if (issued < pair_stages) take(taken[(k + 1) & 1]);
    }
    return;
  }

  // Consumer c: warpgroup c + 1, rows [64c, 64c + 64) of every item.
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(pair_consumer_registers) : "memory");
  const int c = wg - 1;
  const int tid = threadIdx.x - 128 * wg, warp = tid / 32, lane = tid % 32;
  const Elem* sq = reinterpret_cast<const Elem*>(tiles + c * ws_q_bytes<Dim>);
  const std::uint64_t k_desc = wgmma::descriptor(kv_base, 16, 1024);
  const std::uint64_t v_desc = wgmma::descriptor(kv_base + pair_k_bytes, 2 * half_tile_bytes, 1024);
  constexpr std::uint64_t stage_step = pair_kv_bytes >> 4;  // descriptor units
  // A k16 step of S: 32 bytes inside a 128-byte row, the next column half every 4 steps; of P V:
  // 16 keys of 128 bytes.
  auto k_step = [](int kk) { return std::uint64_t(((kk >> 2) * 2 * half_tile_bytes + (kk & 3) * 32) >> 4); };
  auto v_step = [](int kk) { return std::uint64_t((kk * 16 * 128) >> 4); };
  const int row_in_warp = lane / 4;
  int row_offset[2], row_head[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = c * block_rows + warp * 16 + row_in_warp + h * 8, rows = int(q_rows);
    row_offset[h] = r % rows;
    row_head[h] = r / rows;
  }
  static_assert(!is_head_dependent<Mask>::value, "the pair kernel takes position-only masks");
  constexpr bool row_bits = has_visible_bits<Mask>::value;
  // Turns at the tensor cores: a consumer waits for its turn before issuing wgmmas and passes the
  // turn on after; consumer 1 passes the first one. Both run the same items and stages, so their
  // turns alternate until the end (the last pass is never taken).
  const bool turns = wp.ping_pong;
  auto wait_turn = [&] {
    if (turns) asm volatile("bar.sync %0, 256;\n" ::"r"(pair_turn_barrier + c) : "memory");
  };
  auto pass_turn = [&] {
    if (turns) asm volatile("bar.arrive %0, 256;\n" ::"r"(pair_turn_barrier + 1 - c) : "memory");
  };
  if (c == 1) pass_turn();

  // Q and o: a consumer takes the next item's Q into registers at the end of an item (take_q),
  // then stages the item's o in its Q half (Q's layout) for bulk tensor stores, so that o leaves
  // without 16-byte stores from registers (clock64 timeline: band items' epilogue 3030 -> 1785
  // cycles, bench/NOTES.md). Each warp reads Q from, writes o to and stores from its own 16 rows
  // of the half, so the warps need no barrier among them: lane 0 issues the warp's two stores. The
  // Q half is freed for the producer's next Q under the next item's first S (free_q): once a
  // warp's stores have read its rows, its lane 0 arrives for the warp's reads of Q and of the
  // handoff (an mbarrier arrive releases the arriving thread's own accesses: compute-sanitizer's
  // racecheck flags a handoff read that only a barrier orders before another thread's arrive).
  const unsigned sq_address = smem_address(sq);
  int hand[8];
  unsigned qf[Dim / 16][4];
  auto take_q = [&](index_t k) {
    mbar_wait(bar(0), unsigned(k) & 1u);
    ws_read_handoff(handoff, lane, hand);
    if (hand[0] >= 0) ws_load_q<Dim>(sq, warp, lane, qf);  // then __syncwarp: the warp's rows may be written
    // Not needed for the rows (each warp's own); without it ptxas moves code across the item
    // boundary and spills (consumer spill stores 0 -> 20 bytes for Causal, 84 -> 96 for Triangle).
    asm volatile("bar.sync %0, 128;\n" ::"r"(pair_consumer_barrier + c) : "memory");
  };
  bool o_in_flight = false;  // the warp's bulk stores may still read its rows of the Q half (uniform)
  auto free_q = [&] {
    if (lane == 0) {
      if (o_in_flight) bulk_wait_read();
      mbar_arrive(bar(1));
    }
    o_in_flight = false;
  };
  // Lane `lane`'s row address for stmatrix_x4 (matrix lane / 8: rows + 8 for odd, tile + 1 for
  // the upper two), as ws_load_q reads Q.
  const int o_row = warp * 16 + lane % 8 + ((lane / 8) % 2) * 8, o_chunk = lane / 16;

#ifdef TRIMIX_CUDA_PAIR_BOUNDS
  const bool no_first_mask = (wp.pair_bound & (bound_no_boundary | bound_no_first_mask)) != 0;
  const bool no_first_softmax = (wp.pair_bound & (bound_no_boundary | bound_no_first_softmax)) != 0;
  const bool no_o_stores = (wp.pair_bound & (bound_no_boundary | bound_no_o_stores)) != 0;
#else
  constexpr bool no_first_mask = false, no_first_softmax = false, no_o_stores = false;
#endif
  take_q(0);
  unsigned n = 0;  // stages consumed so far
  const bool stamps = tid == 0;  // PairTimeline: thread 0 of each consumer
  for (index_t k = 0;; ++k) {
    const int slot = hand[0];
    if (slot < 0) break;
    if (stamps) {
      PairTimeline::stamp(1 + c, k, 0, PairTimeline::now());
      PairTimeline::stamp(1 + c, k, 14, PairTimeline::now_ns());
    }
    // PairTimeline: the step loop's cycles waiting for a stage, the turn, S and P V
    long long stage_wait = 0, turn_wait = 0, s_wait = 0, pv_wait = 0;
    // PairTimeline: the rest of the step (words 16-20)
    long long mask_time = 0, issue_time = 0, softmax_time = 0, rescale_time = 0, pack_time = 0;
    const WorkItem item = ws_handoff_item(hand);
    const int step_count = hand[6];
    const index_t first_q_head = first_q_head_of(item);
    index_t fold_tile;
    std::uint64_t fold_bits;
    ws_sink_fold_bits(p.mask, hand[1], wp.fold_rows, lane, fold_tile, fold_bits);

    float acc[d_tiles][4];
#pragma unroll
    for (int dt = 0; dt < d_tiles; ++dt) acc[dt][0] = acc[dt][1] = acc[dt][2] = acc[dt][3] = 0.0f;
    float row_max[2] = {minus_inf, minus_inf}, row_sum[2] = {0.0f, 0.0f};
    index_t row_position[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) row_position[h] = g.first_position(item.q_tile) + row_offset[h];

    // The landed stage of the next step and its two plan tiles' entries (-1: none).
    auto next_stage = [&](unsigned& stage, int (&entry)[2]) {
      stage = n % pair_stages;
      mbar_wait(bar(2 + stage), (n / pair_stages) & 1u);
      ++n;
      int e0 = 0, e1 = 0;
      if (lane == 0)
        asm volatile("ld.volatile.shared.v2.s32 {%0, %1}, [%2];\n"
                     : "=r"(e0), "=r"(e1)
                     : "r"(smem_address(&stage_entry[stage][0])));
      entry[0] = __shfl_sync(0xffffffffu, e0, 0);
      entry[1] = __shfl_sync(0xffffffffu, e1, 0);
    };
    // S of the stage's 128 keys (s: 16 column tiles), or of its first 64 alone (8: a lone tile).
    auto issue_scores = [&](auto& s, unsigned stage) {
      constexpr int nt = int(std::extent_v<std::remove_reference_t<decltype(s)>>);
      wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < Dim / 16; ++kk) {
        if constexpr (nt == n_tiles)
          wgmma::mma_rs_n128_k<Kind>(s, qf[kk], k_desc + stage * stage_step + k_step(kk), kk > 0);
        else
          wgmma::mma_rs_n64_k<Kind>(s, qf[kk], k_desc + stage * stage_step + k_step(kk), kk > 0);
      }
      wgmma::commit();
    };
    // P V of the stage's first `key_steps` k16 steps (all 8, or 4 where its second half is empty).
    auto issue_pv = [&](const unsigned (&a)[2 * kv_tile / 16][4], unsigned stage, auto key_steps) {
      wgmma::fence_operands(acc);
      wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < decltype(key_steps)::value; ++kk)
        wgmma::mma_rs_n128<Kind>(acc, a[kk], v_desc + stage * stage_step + v_step(kk), 1);
      wgmma::commit();
    };
    constexpr std::integral_constant<int, 2 * kv_tile / 16> whole_stage{};
    constexpr std::integral_constant<int, kv_tile / 16> half_stage{};
    // Mask bits of this thread's two rows in each half of the stage (none in an empty half), and
    // which halves need masking at all (bit sub).
    auto mask_bits = [&](std::uint64_t (&seen_bits)[2][2], const int (&entry)[2]) {
      int halves_masked = 0;
#pragma unroll
      for (int sub = 0; sub < 2; ++sub) {
        if (entry[sub] < 0) {
          seen_bits[sub][0] = seen_bits[sub][1] = 0;
          halves_masked |= 1 << sub;
          continue;
        }
        if ((entry[sub] & 1) == 0) {  // a whole tile of 64 visible keys
          seen_bits[sub][0] = seen_bits[sub][1] = ~std::uint64_t(0);
          continue;
        }
        halves_masked |= 1 << sub;
        // The policy's bits (0 past seq_k), also for a short tile that the plan left whole.
        const index_t tile = entry[sub] >> 1;
        ws_tile_bits(p.mask, g, row_position, tile, true, g.kv_keys(tile), fold_tile, fold_bits, lane, seen_bits[sub]);
      }
      return halves_masked;
    };
    // Over the stage's two halves (s: 16 column tiles) or its first alone (8: a lone first tile).
    auto softmax = [&](auto& s, const std::uint64_t (&seen_bits)[2][2], const int (&entry)[2], int masked,
                       float (&alpha)[2]) {
      constexpr int subs = int(std::extent_v<std::remove_reference_t<decltype(s)>>) / 8;
#pragma unroll
      for (int sub = 0; sub < subs; ++sub) {
        if (((masked >> sub) & 1) == 0) continue;  // only the halves that need it
#pragma unroll
        for (int nt = sub * 8; nt < sub * 8 + 8; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            bool seen;
            if constexpr (row_bits) {
              seen = (seen_bits[sub][e / 2] >> ((nt % 8) * 8 + e % 2)) & 1u;
            } else {
              const int col = (nt % 8) * 8 + (lane % 4) * 2 + (e % 2);
              const index_t tile = entry[sub] >> 1;
              seen = entry[sub] >= 0 && col < g.kv_keys(tile) &&
                     ((entry[sub] & 1) == 0 || trimix::visible(p.mask, row_position[e / 2], g.first_key(tile) + col, g.seq_k));
            }
            if (!seen) s[nt][e] = minus_inf;
          }
      }
      ws_online_softmax(s, p.scale_log2, wp.rescale_slack, row_max, row_sum, alpha);
    };
    auto pack_p = [&](const float (&s)[n_tiles][4], unsigned (&a)[2 * kv_tile / 16][4]) { ws_pack_p<Kind>(s, a); };
    auto release = [&](unsigned stage) {
      __syncwarp();
      if (lane == 0) mbar_arrive(bar(2 + pair_stages + stage));
    };
    float row_inv[2], row_lse[2];
    auto finish_rows = [&] { ws_finish_rows(row_sum, row_max, row_inv, row_lse); };
    if (step_count > 0) {
      unsigned prev_stage;
      int entry[2];
      next_stage(prev_stage, entry);
      if (stamps) PairTimeline::stamp(1 + c, k, 1, PairTimeline::now());
      float s[n_tiles][4];
      std::uint64_t seen_bits[2][2];
      int masked;
      float alpha[2];
      unsigned a[2 * kv_tile / 16][4];
      // The first stage: S, masking, softmax and P of `sf`, all 16 column tiles of S or the first
      // 8 alone (a lone first tile: odd tile counts, which the producer puts first). One branch
      // around all of it: a branch between a wgmma and its wait makes ptxas serialize the wgmmas.
      auto first_stage = [&](auto& sf) {
        constexpr int nt = int(std::extent_v<std::remove_reference_t<decltype(sf)>>);
#ifdef TRIMIX_CUDA_PAIR_BOUNDS
        masked = no_first_mask ? 0 : mask_bits(seen_bits, entry);
#else
        masked = mask_bits(seen_bits, entry);
#endif
        wait_turn();
        issue_scores(sf, prev_stage);
        pass_turn();
        free_q();
        wgmma::wait_all();
        wgmma::fence_operands(sf);
#ifdef TRIMIX_CUDA_PAIR_BOUNDS
        if (no_first_softmax)
          alpha[0] = alpha[1] = 1.0f;
        else
#endif
          softmax(sf, seen_bits, entry, masked, alpha);
        ws_pack_p<Kind>(sf, reinterpret_cast<unsigned (&)[nt / 2][4]>(a));
      };
      // Whether the stage before is a lone first tile's: the loop's first step then issues its P V
      // with only the 4 k-steps that carry P (4 of the 80 wgmmas, 5% of the tensor work, that a
      // consumer issues for a 9-tile band item). A branch in the step, not a peeled first step:
      // the step's code twice sent every wgmma descriptor through ordinary registers (R2UR 57 ->
      // 159, bench/NOTES.md).
      bool lone_before = entry[1] < 0;
      if (lone_before) {
        // S of the lone tile in the accumulators' registers (free until the first P V; the
        // zeros go back below): with S's own, ptxas serialized the wgmmas of some masks' kernels.
        first_stage(reinterpret_cast<float (&)[n_tiles / 2][4]>(acc));
#pragma unroll
        for (int dt = 0; dt < d_tiles; ++dt) acc[dt][0] = acc[dt][1] = acc[dt][2] = acc[dt][3] = 0.0f;
      } else {
        first_stage(s);
      }
      if (stamps) PairTimeline::stamp(1 + c, k, 2, PairTimeline::now());
      for (int i = 1; i < step_count; ++i) {
        unsigned stage;
        long long t = PairTimeline::now();
        next_stage(stage, entry);
        stage_wait += PairTimeline::now() - t;
        t = PairTimeline::now();
        wait_turn();
        turn_wait += PairTimeline::now() - t;
        const long long issued_from = PairTimeline::now();
        issue_scores(s, stage);
        // The stage's mask bits after its S issue (they depend only on its entries), off the
        // chain from the stage wait to the softmax. The turn grows by them, yet the time falls:
        // causal -2.6 to -3.4%, triangle -1.0 to -1.2% (bench/NOTES.md, fortieth session).
        t = PairTimeline::now();
        masked = mask_bits(seen_bits, entry);
        const long long bits_time = PairTimeline::now() - t;  // inside the turn: not counted as issue
        mask_time += bits_time;
        // P V of the stage before, the turn passed on, then the wait for S, in each arm of the
        // branch: so ptxas sees the same pending group (P V) where they join. With one wait below
        // a branch around the second 4 k-steps it closed the groups with an empty wgmma and the S
        // wait also waited for half of P V (SASS).
        auto pv_then_wait_for_s = [&](auto key_steps) {
          issue_pv(a, prev_stage, key_steps);
          pass_turn();
          t = PairTimeline::now();
          issue_time += t - issued_from - bits_time;
          asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
        };
        if (lone_before)
          pv_then_wait_for_s(half_stage);
        else
          pv_then_wait_for_s(whole_stage);
        lone_before = false;
        s_wait += PairTimeline::now() - t;
        wgmma::fence_operands(s);
        t = PairTimeline::now();
        softmax(s, seen_bits, entry, masked, alpha);
        softmax_time += PairTimeline::now() - t;
        // The P V wait in both arms of the rescale's branch: ptxas hoists a lone wait above the
        // softmax (SASS), so that the softmax never ran under P V.
        t = PairTimeline::now();
        if (warp_rescales(alpha)) {
          wgmma::wait_all();
          wgmma::fence_operands(acc);
          pv_wait += PairTimeline::now() - t;
          t = PairTimeline::now();
          scale_accumulators(acc, alpha);
          rescale_time += PairTimeline::now() - t;
        } else {
          wgmma::wait_all();
          wgmma::fence_operands(acc);
          pv_wait += PairTimeline::now() - t;
        }
        t = PairTimeline::now();
        release(prev_stage);
        pack_p(s, a);
        prev_stage = stage;
        pack_time += PairTimeline::now() - t;
      }
      if (stamps) PairTimeline::stamp(1 + c, k, 3, PairTimeline::now());
      wait_turn();
      // A stage whose second half is empty (a lone tile: the item's only stage here) has P 0
      // there: its 4 k-steps are skipped. Outside the loop, and waited for at once below.
      if (entry[1] < 0) issue_pv(a, prev_stage, half_stage);
      else issue_pv(a, prev_stage, whole_stage);
      pass_turn();
      finish_rows();
      if (stamps) PairTimeline::stamp(1 + c, k, 11, PairTimeline::now());
      take_q(k + 1);  // under the last P V (Q's registers are free since the last S)
      if (stamps) PairTimeline::stamp(1 + c, k, 12, PairTimeline::now());
      wgmma::wait_all();
      wgmma::fence_operands(acc);
      release(prev_stage);
      if (stamps) PairTimeline::stamp(1 + c, k, 4, PairTimeline::now());
    } else {
      free_q();
      finish_rows();
      take_q(k + 1);
    }

    // o = acc / l through the Q half and each warp's two bulk stores (rows past the end are
    // clipped by the tensor map), or from registers; lse; or the partial slot of a split item.
    const bool staged = !no_o_stores && wp.o_by_tma && item.split_slot < 0;
    if (staged) {
#pragma unroll
      for (int j = 0; j < d_tiles / 2; ++j) {
        const unsigned x[4] = {pack<Kind>(acc[2 * j][0] * row_inv[0], acc[2 * j][1] * row_inv[0]),
                               pack<Kind>(acc[2 * j][2] * row_inv[1], acc[2 * j][3] * row_inv[1]),
                               pack<Kind>(acc[2 * j + 1][0] * row_inv[0], acc[2 * j + 1][1] * row_inv[0]),
                               pack<Kind>(acc[2 * j + 1][2] * row_inv[1], acc[2 * j + 1][3] * row_inv[1])};
        stmatrix_x4(sq_address + 2u * unsigned(tile_offset(o_row, 2 * j + o_chunk)), x);
      }
      fence_async_proxy();
      __syncwarp();  // the warp's o is in its rows
      if (lane == 0) {
        const int first_row = int(index_t(item.q_tile) * q_rows) + wp.o_warp_row[4 * c + warp];
        const int head = int(first_q_head) + wp.o_warp_head[4 * c + warp];
        for (int h = 0; h < halves; ++h)
          tma_store(&wp.o_map, sq_address + h * half_tile_bytes + warp * 16 * 128, h * 64, first_row, head,
                    int(item.batch));
        bulk_commit();
      }
      o_in_flight = true;
    }
    if (!no_o_stores && (!staged || p.lse))
      ws_store_rows<Kind, Dim>(p, item, first_q_head, pair_rows, c * block_rows + warp * 16 + row_in_warp,
                               row_offset, row_head, acc, row_inv, row_lse, lane, staged);
#ifdef TRIMIX_CUDA_PAIR_BOUNDS
    if (wp.pair_sleep_ns > 0) __nanosleep(unsigned(wp.pair_sleep_ns));
#endif
    if (stamps) {
      PairTimeline::stamp(1 + c, k, 5, PairTimeline::now());
      PairTimeline::stamp(1 + c, k, 15, PairTimeline::now_ns());
      PairTimeline::stamp(1 + c, k, 6, step_count);
      PairTimeline::stamp(1 + c, k, 7, stage_wait);
      PairTimeline::stamp(1 + c, k, 8, turn_wait);
      PairTimeline::stamp(1 + c, k, 9, s_wait);
      PairTimeline::stamp(1 + c, k, 10, pv_wait);
      PairTimeline::stamp(1 + c, k, 13, item.split_slot);
      PairTimeline::stamp(1 + c, k, 16, mask_time);
      PairTimeline::stamp(1 + c, k, 17, issue_time);
      PairTimeline::stamp(1 + c, k, 18, softmax_time);
      PairTimeline::stamp(1 + c, k, 19, rescale_time);
      PairTimeline::stamp(1 + c, k, 20, pack_time);
    }
  }
  if (lane == 0 && o_in_flight) bulk_wait();  // before the CTA's shared memory goes
#endif
}

/// Set by tests: the pair kernel declines, so that attention_kernel runs the 128-row items of a
/// plan made for it (its fallback, in halves).
inline bool& pair_declines() {
  static bool declines = false;
  return declines;
}

/// Launches of the pair kernel in this process (tests check that it ran where it should).
inline std::atomic<long>& pair_launches() {
  static std::atomic<long> count{0};
  return count;
}

}  // namespace trimix::impl::cuda_engine
