#pragma once
/// \file engine_host_amx.hpp
/// Host tile engine for bf16 Q, K, V on x86 CPUs with AMX (Intel Sapphire Rapids and newer): both
/// products of a tile on the tile matrix unit (tdpbf16ps: a 16 x 32 bf16 tile times a 32 x 16 one
/// into 16 x 16 fp32, 16K FLOPs per instruction, 32 times vdpbf16ps' 512), the online softmax in
/// AVX-512. Unlike the AVX512-BF16 engine behind the portable kernel, it works on the bf16 inputs
/// directly (no fp32 tiles). Per item, Q rows are copied once. The item's kv-tiles are taken in
/// spans of up to 4 consecutive tiles (256 keys): K is transposed into the tile unit's pair layout
/// ("VNNI": row d/2 holds dims d, d+1 of 16 keys) and V's key pairs interleaved, both shared by
/// every row of the item (GQA heads packed); then per row group (two 16-row blocks, 2 x 2 result
/// tiles, or one block):
///   S = Q K^T (fp32 tiles) -> memory -> softmax (scale, mask, max, exp2, sum; P rounded to bf16
///   as the GPU engines do) -> O rows rescaled where the max moved -> O += P V with O's rows
///   loaded into and stored from fp32 tiles once per span;
/// the tile unit's work for the neighbouring groups is issued between the softmax rows.
/// Work items are those of the shared plan (q-tiles of 48 rows, 64-key tiles, split-KV, combine).
/// What limits it (bench/amx_probe, bench/NOTES.md): the tile loads, which do not overlap with the
/// products (the probe's rate follows loads per product; an estimate, at an assumed ~2 GHz, is
/// ~80 cycles per load); the 2 x 2 result tiles already give the fewest loads per product that 8
/// tile registers allow (double-buffered operand registers gained nothing).
///
/// Chosen at plan time when the CPU has AMX-TILE, AMX-BF16 and AVX512-BF16 and Linux grants the
/// tile state (arch_prctl), for head dims that are multiples of 32 up to 256 and contiguous head
/// dims; elsewhere the portable kernel runs (with the AVX512-BF16 products where they exist).
/// TRIMIX_HOST_AMX=0 turns it off (for measuring); TRIMIX_HOST_AMX=emulate runs the same engine
/// with the tile instructions emulated in scalar code, so that CPUs without AMX (and CI) test its
/// layouts, blocking and softmax; the emulation is for testing only (slow).

#include <trimix/element.hpp>
#include <trimix/engine.hpp>
#include <trimix/engine_host_avx512.hpp>
#include <trimix/kernel.hpp>
#include <trimix/plan.hpp>
#include <trimix/softmax.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>

// x86-64 Linux with GCC >= 11 or Clang >= 12 as the host compiler (their assemblers know AMX;
// not nvcc, hipcc, nvc++ or SYCL device passes).
#if defined(__x86_64__) && defined(__linux__) && !defined(__CUDACC__) && !defined(__HIPCC__) &&         \
    !defined(__INTEL_COMPILER) && !defined(__NVCOMPILER) && !defined(__SYCL_DEVICE_ONLY__) &&           \
    ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define TRIMIX_HAS_HOST_AMX 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#define TRIMIX_HAS_HOST_AMX 0
#endif

namespace trimix::impl {

#if TRIMIX_HAS_HOST_AMX

namespace host_amx {

/// Engine tile shape: q-tiles of 48 rows (three 16-row AMX blocks; also a multiple of the
/// portable engine's 6-row micro-tile, so a plan made for this engine stays valid for the portable
/// kernel), kv-tiles of 64 keys (four 16-key blocks, one 64-bit mask word), up to 8 heads per item.
constexpr index_t q_rows = 48;
constexpr index_t kv_tile = 64;
constexpr index_t max_heads_per_item = 8;
constexpr index_t block = 16;  ///< rows of a tile; keys / dims of an fp32 result tile
constexpr index_t pair_block = 32;  ///< bf16 elements in a 64-byte tile row

enum class Mode { off, hardware, emulated };

/// AMX state permission for this process (Linux >= 5.16: ARCH_REQ_XCOMP_PERM, XTILEDATA).
inline bool request_tile_permission() {
  constexpr long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
  return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
}

/// Which path bf16 host attention takes; decided once per process.
inline Mode mode() {
  static const Mode answer = [] {
    if (switched_off("TRIMIX_HOST_AMX")) return Mode::off;
    const char* env = std::getenv("TRIMIX_HOST_AMX");
    __builtin_cpu_init();
    // The packing and the softmax use AVX-512 (BW for 16-bit shuffles, BF16 for the rounding).
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512bf16"))
      return Mode::off;
    if (env && std::strcmp(env, "emulate") == 0) return Mode::emulated;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return Mode::off;
    const bool amx_bf16 = (d >> 22) & 1u, amx_tile = (d >> 24) & 1u;
    if (!amx_bf16 || !amx_tile || !request_tile_permission()) return Mode::off;
    return Mode::hardware;
  }();
  return answer;
}

inline const char* mode_name() {
  switch (mode()) {
    case Mode::hardware: return "amx";
    case Mode::emulated: return "amx-emulated";
    default: return "off";
  }
}

/// Every tile register as 16 rows x 64 bytes (palette 1): bf16 operands 16 x 32, fp32 results
/// 16 x 16. Registers 0-3 hold results, 4-7 operands.
struct alignas(64) TileConfig {
  std::uint8_t palette = 1, start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t bytes_per_row[16] = {};
  std::uint8_t rows[16] = {};
  TileConfig() {
    for (int t = 0; t < 8; ++t) bytes_per_row[t] = 64, rows[t] = 16;
  }
};
static_assert(sizeof(TileConfig) == 64, "ldtilecfg reads 64 bytes");

/// The tile instructions. Own asm (GCC's macros have no memory clobber on loads, and its
/// ldtilecfg operand covers 8 bytes of the 64), so the compiler orders them with the AVX-512
/// stores that fill the operands.
struct HardwareTiles {
  static void configure() {
    static const TileConfig config;
    asm volatile("ldtilecfg %0" ::"m"(config) : "memory");
  }
  static void release() { asm volatile("tilerelease" ::: "memory"); }
  template <int T>
  static void zero() {
    asm volatile("tilezero %%tmm%c0" ::"i"(T) : "memory");
  }
  template <int T>
  static void load(const void* base, index_t stride_bytes) {
    asm volatile("tileloadd (%0,%1,1), %%tmm%c2" ::"r"(base), "r"(stride_bytes), "i"(T) : "memory");
  }
  template <int T>
  static void store(void* base, index_t stride_bytes) {
    asm volatile("tilestored %%tmm%c0, (%1,%2,1)" ::"i"(T), "r"(base), "r"(stride_bytes) : "memory");
  }
  /// C += A B: C 16 x 16 fp32, A 16 x 32 bf16, B 16 pair-rows x 16 columns x 2 bf16.
  template <int C, int A, int B>
  static void dot() {
    asm volatile("tdpbf16ps %%tmm%c2, %%tmm%c1, %%tmm%c0" ::"i"(C), "i"(A), "i"(B) : "memory");
  }
};

/// The same instructions in scalar code on per-thread registers (testing on CPUs without AMX).
struct EmulatedTiles {
  struct Registers {
    alignas(64) unsigned char tile[8][16][64];
  };
  static Registers& registers() {
    static thread_local Registers r;
    return r;
  }
  static void configure() {}
  static void release() {}
  template <int T>
  static void zero() {
    std::memset(registers().tile[T], 0, sizeof(registers().tile[T]));
  }
  template <int T>
  static void load(const void* base, index_t stride_bytes) {
    for (int r = 0; r < 16; ++r)
      std::memcpy(registers().tile[T][r], static_cast<const unsigned char*>(base) + r * stride_bytes, 64);
  }
  template <int T>
  static void store(void* base, index_t stride_bytes) {
    for (int r = 0; r < 16; ++r)
      std::memcpy(static_cast<unsigned char*>(base) + r * stride_bytes, registers().tile[T][r], 64);
  }
  template <int C, int A, int B>
  static void dot() {
    auto& t = registers().tile;
    auto bf16_at = [&](int reg, int row, int element) {
      std::uint16_t bits;
      std::memcpy(&bits, &t[reg][row][2 * element], 2);
      return float_from_bits(std::uint32_t(bits) << 16);
    };
    for (int m = 0; m < 16; ++m)
      for (int n = 0; n < 16; ++n) {
        float c;
        std::memcpy(&c, &t[C][m][4 * n], 4);
        for (int k = 0; k < 16; ++k)
          c += bf16_at(A, m, 2 * k) * bf16_at(B, k, 2 * n) + bf16_at(A, m, 2 * k + 1) * bf16_at(B, k, 2 * n + 1);
        std::memcpy(&t[C][m][4 * n], &c, 4);
      }
  }
};

#define TRIMIX_AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// GCC 12 reports the intrinsics' own _mm512_undefined_* sources as uninitialized once inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

using host_avx512::exp2_nonpositive;  // the vector one (hides the scalar one of softmax.hpp here)
using host_avx512::transpose_words;

/// Most consecutive kv-tiles of a run the engine takes in one step, a "span": S, the softmax and
/// P V then run over up to 256 keys, so each 16-row slice of O passes through the tile registers
/// once per span rather than once per 64-key tile, and the softmax reduces once per span.
constexpr index_t max_span_tiles = 4;
constexpr index_t max_span_keys = max_span_tiles * kv_tile;

/// K's kv-tile as the right operand of S = Q K^T: kp[d/2][key][2] = K[key][d, d+1], i.e. the
/// transpose of K viewed as 32-bit words, pair-rows `kp_words` words apart. Keys at or past
/// `keys` are zeros. `k` points at the tile's first key, `k_stride` elements between keys;
/// dim % 32 == 0.
TRIMIX_AMX_TARGET inline void pack_k(const bf16* k, index_t k_stride, index_t keys, index_t dim, std::uint32_t* kp,
                                     index_t kp_words) {
  alignas(64) static thread_local std::uint32_t padded[block * 128];  // up to 16 keys x 256 dims
  const index_t words = dim / 2;
  for (index_t kb = 0; kb < kv_tile; kb += block) {
    const std::uint32_t* rows = reinterpret_cast<const std::uint32_t*>(k + kb * k_stride);
    index_t row_stride = k_stride / 2;
    if (kb + block > keys) {  // a partial block: copy the keys there are, zeros after
      for (index_t j = 0; j < block; ++j) {
        if (kb + j < keys) std::memcpy(padded + j * words, k + (kb + j) * k_stride, std::size_t(dim) * 2);
        else std::memset(padded + j * words, 0, std::size_t(dim) * 2);
      }
      rows = padded;
      row_stride = words;
    }
    for (index_t w = 0; w < words; w += block) transpose_words(rows + w, row_stride, kp + kb + w * kp_words, kp_words);
  }
}

/// V's kv-tile as the right operand of O += P V: vp[key/2][d][2] = V[key, key+1][d]. Keys at or
/// past `keys` are zeros. dim % 32 == 0.
TRIMIX_AMX_TARGET inline void pack_v(const bf16* v, index_t v_stride, index_t keys, index_t dim, std::uint16_t* vp) {
  alignas(64) static constexpr std::uint16_t low[32] = {0, 32, 1, 33, 2,  34, 3,  35, 4,  36, 5,
                                                        37, 6, 38, 7, 39, 8,  40, 9,  41, 10, 42,
                                                        11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
  const __m512i first = _mm512_load_si512(static_cast<const void*>(low));
  const __m512i second = _mm512_add_epi16(first, _mm512_set1_epi16(16));
  for (index_t j = 0; j < kv_tile; j += 2) {
    std::uint16_t* out = vp + j * dim;
    const bf16* a = v + j * v_stride;
    const bf16* b = a + v_stride;
    const bool has_a = j < keys, has_b = j + 1 < keys;
    for (index_t d = 0; d < dim; d += 32) {
      const __m512i x = has_a ? _mm512_loadu_si512(static_cast<const void*>(a + d)) : _mm512_setzero_si512();
      const __m512i y = has_b ? _mm512_loadu_si512(static_cast<const void*>(b + d)) : _mm512_setzero_si512();
      _mm512_storeu_si512(static_cast<void*>(out + 2 * d), _mm512_permutex2var_epi16(x, first, y));
      _mm512_storeu_si512(static_cast<void*>(out + 2 * d + 32), _mm512_permutex2var_epi16(x, second, y));
    }
  }
}

/// One row's online-softmax step over a span of `tiles` 64-key tiles: raw scores s (unscaled),
/// visible keys per tile (bit j: key j of the tile), state (m, l) in base 2. Writes P rounded to
/// bf16 and returns the factor by which the row's output must be rescaled. Two passes over s: the
/// maximum of the visible raw scores (scale > 0 commutes with max), then p = 2^(scale s - m).
TRIMIX_AMX_TARGET inline float softmax_row(const float* s, const std::uint64_t* visible, index_t tiles,
                                           float score_scale, float& m, float& l, std::uint16_t* p) {
  const __m512 minus_inf = _mm512_set1_ps(minus_infinity);
  __m512 most = minus_inf;
  for (index_t t = 0; t < tiles; ++t)
    for (int c = 0; c < 4; ++c)
      most = _mm512_mask_max_ps(most, __mmask16(visible[t] >> (16 * c)), most, _mm512_loadu_ps(s + t * kv_tile + 16 * c));
  const float tile_max = _mm512_reduce_max_ps(most) * score_scale;
  const float m_new = m < tile_max ? tile_max : m;
  const __m512 scale = _mm512_set1_ps(score_scale);
  const __m512 shift = _mm512_set1_ps(m_new == minus_infinity ? 0.0f : m_new);
  __m512 sum = _mm512_setzero_ps();
  for (index_t t = 0; t < tiles; ++t)
    for (int c = 0; c < 4; c += 2) {
      const float* x = s + t * kv_tile + 16 * c;
      const __m512 a = exp2_nonpositive(_mm512_fmsub_ps(_mm512_loadu_ps(x), scale, shift), __mmask16(visible[t] >> (16 * c)));
      const __m512 b = exp2_nonpositive(_mm512_fmsub_ps(_mm512_loadu_ps(x + 16), scale, shift),
                                        __mmask16(visible[t] >> (16 * c + 16)));
      sum = _mm512_add_ps(sum, _mm512_add_ps(a, b));
      _mm512_storeu_si512(static_cast<void*>(p + t * kv_tile + 16 * c), (__m512i)_mm512_cvtne2ps_pbh(b, a));
    }
  const float alpha = rescale_factor(m, m_new);
  l = l * alpha + _mm512_reduce_add_ps(sum);
  m = m_new;
  return alpha;
}

TRIMIX_AMX_TARGET inline void scale_row(float* o, index_t dim, float alpha) {
  const __m512 a = _mm512_set1_ps(alpha);
  for (index_t d = 0; d < dim; d += 16) _mm512_storeu_ps(o + d, _mm512_mul_ps(_mm512_loadu_ps(o + d), a));
}

/// o[0, dim) = acc * inv as bf16 (round to nearest even, as trimix::bf16), 32 at a time.
TRIMIX_AMX_TARGET inline void store_bf16_row(const float* acc, float inv, index_t dim, bf16* o) {
  const __m512 scale = _mm512_set1_ps(inv);
  for (index_t d = 0; d < dim; d += 32) {
    const __m512 a = _mm512_mul_ps(_mm512_loadu_ps(acc + d), scale), b = _mm512_mul_ps(_mm512_loadu_ps(acc + d + 16), scale);
    _mm512_storeu_si512(static_cast<void*>(o + d), (__m512i)_mm512_cvtne2ps_pbh(b, a));
  }
}

/// Per-thread working memory of one item, 64-byte aligned, grown on demand.
struct Workspace {
  std::uint16_t *q, *vp, *p;  // bf16: Q rows, packed V, probabilities of two row groups
  std::uint32_t* kp;          // packed K (pairs of bf16)
  float *o, *s, *m, *l;       // s: scores of two row groups (up to 32 rows each)
  static Workspace& of_thread(index_t rows, index_t dim) {
    static thread_local Workspace w;
    static thread_local std::unique_ptr<unsigned char, void (*)(void*)> memory(nullptr, std::free);
    static thread_local std::size_t capacity = 0;
    const std::size_t sizes[] = {std::size_t(rows * dim) * 2,           std::size_t(max_span_keys * dim) * 2,
                                 std::size_t(4 * block * max_span_keys) * 2, std::size_t(max_span_keys * dim) * 2,
                                 std::size_t(rows * dim) * 4,           std::size_t(4 * block * max_span_keys) * 4,
                                 std::size_t(rows) * 4,                 std::size_t(rows) * 4};
    std::size_t total = 0;
    for (std::size_t bytes : sizes) total += (bytes + 63) / 64 * 64;
    if (total > capacity) {
      memory.reset(static_cast<unsigned char*>(std::aligned_alloc(64, total)));
      if (!memory) throw std::bad_alloc();
      capacity = total;
    }
    unsigned char* cursor = memory.get();
    void** parts[] = {reinterpret_cast<void**>(&w.q), reinterpret_cast<void**>(&w.vp),
                      reinterpret_cast<void**>(&w.p), reinterpret_cast<void**>(&w.kp),
                      reinterpret_cast<void**>(&w.o), reinterpret_cast<void**>(&w.s),
                      reinterpret_cast<void**>(&w.m), reinterpret_cast<void**>(&w.l)};
    for (int i = 0; i < 8; ++i) {
      *parts[i] = cursor;
      cursor += (sizes[i] + 63) / 64 * 64;
    }
    return w;
  }
};

/// Consecutive kv-tiles of one run: tiles first .. first + tiles - 1, bit t of `partial` set when
/// tile first + t needs the mask.
struct Span {
  index_t first = 0, tiles = 0;
  std::uint32_t partial = 0;
};

/// The work items of a plan, one per call, on the calling thread.
template <class Tiles, class Mask, class TO>
struct ItemRunner {
  AttentionArgs<bf16, bf16, bf16, TO> args;
  Mask mask;
  TileGeometry geometry;
  index_t heads_per_item, rows, dim;
  const WorkItem* items;
  const ItemRuns* runs;
  float* partial_o;
  float* partial_lse;

  TRIMIX_AMX_TARGET void operator()(index_t n) const {
    const WorkItem item = items[n];
    const Problem& p = args.problem;
    Workspace& w = Workspace::of_thread(rows, dim);
    const index_t first_q_head = item.kv_head * p.group_size() + item.head_block * heads_per_item;
    const index_t first_row = index_t(item.q_tile) * q_rows;
    const index_t valid_rows = geometry.q_rows(item.q_tile);
    for (index_t r = 0; r < rows; ++r) {
      const index_t i = r % q_rows;
      std::uint16_t* q_row = w.q + r * dim;
      if (i < valid_rows)
        std::memcpy(q_row, args.q + p.q(item.batch, first_q_head + r / q_rows, first_row + i, 0), std::size_t(dim) * 2);
      else
        std::memset(q_row, 0, std::size_t(dim) * 2);
      w.m[r] = minus_infinity;
      w.l[r] = 0.0f;
    }
    std::memset(w.o, 0, std::size_t(rows * dim) * sizeof(float));
    Tiles::configure();
    const auto item_mask = bind_head(mask, item.batch, first_q_head, p.q_heads);
    Span span;
    for_each_item_tile(item_mask, geometry, item, runs[n], [&](index_t tile, bool partial) {
      if (span.tiles > 0 && (tile != span.first + span.tiles || span.tiles == max_span_tiles)) {
        visit_span(w, item_mask, item, valid_rows, span);
        span.tiles = 0;
      }
      if (span.tiles == 0) span.first = tile, span.partial = 0;
      if (partial) span.partial |= 1u << span.tiles;
      ++span.tiles;
    });
    if (span.tiles > 0) visit_span(w, item_mask, item, valid_rows, span);
    Tiles::release();
    write_rows(w, item, first_q_head, first_row, valid_rows);
  }

  /// The tile unit's work around one softmax row group, cut into steps that can be issued between
  /// softmax rows: O[pv rows] += P V, then S = Q K^T for the s rows. A group is 16 rows or two
  /// 16-row blocks (32 rows): then each step is a 2 x 2 block of result tiles, so each B tile
  /// (packed K or V, the operands read from L2) serves both blocks. Tile registers 0-3 hold results
  /// across the steps of one result block; nothing else uses them meanwhile.
  struct TileWork {
    index_t pv_r0 = -1, pv_rows = 0, s_r0 = -1, s_rows = 0;  // first rows (-1: none) and rows
    const std::uint16_t* p = nullptr;
    float* s = nullptr;
    index_t tiles = 0, pv_steps = 0, steps = 0, done = 0;
  };

  TileWork tile_work(index_t pv_r0, index_t pv_rows, const std::uint16_t* p, index_t s_r0, index_t s_rows, float* s,
                     index_t tiles) const {
    TileWork work{pv_r0, pv_rows, s_r0, s_rows, p, s, tiles};
    const index_t key_chunks = tiles * kv_tile / pair_block, dim_chunks = dim / pair_block;
    // 16 rows: steps of 64 dims (32 when dim % 64 == 32) x 32 keys and 64 keys x 32 dims;
    // 32 rows: steps of 32 dims x 32 keys and 32 keys x 32 dims.
    if (pv_r0 >= 0) work.pv_steps = pv_rows == block ? (dim + 4 * block - 1) / (4 * block) * key_chunks : dim_chunks * key_chunks;
    work.steps = work.pv_steps;
    if (s_r0 >= 0) work.steps += s_rows == block ? tiles * dim_chunks : 2 * tiles * dim_chunks;
    return work;
  }

  TRIMIX_AMX_TARGET void step(const Workspace& w, TileWork& work) const {
    const index_t i = work.done++;
    constexpr index_t p_row_bytes = max_span_keys * 2, k_row_bytes = max_span_keys * 4, s_row_bytes = max_span_keys * 4;
    const index_t v_row_bytes = dim * 4, o_row_bytes = dim * 4, q_row_bytes = dim * 2;
    const index_t key_chunks = work.tiles * kv_tile / pair_block, dim_chunks = dim / pair_block;
    if (i < work.pv_steps && work.pv_rows == 2 * block) {
      // O[32 rows x 32 dims] += P[32 rows x 32 keys] V[32 keys x 32 dims]
      const index_t c = i % key_chunks, d0 = (i / key_chunks) * pair_block;
      float* o = w.o + work.pv_r0 * dim + d0;
      if (c == 0) {
        Tiles::template load<0>(o, o_row_bytes), Tiles::template load<1>(o + block, o_row_bytes);
        Tiles::template load<2>(o + block * dim, o_row_bytes), Tiles::template load<3>(o + block * dim + block, o_row_bytes);
      }
      const std::uint16_t* v_rows = w.vp + c * pair_block * dim + 2 * d0;
      Tiles::template load<4>(work.p + c * pair_block, p_row_bytes);
      Tiles::template load<6>(v_rows, v_row_bytes);
      Tiles::template dot<0, 4, 6>();
      Tiles::template load<7>(v_rows + 2 * block, v_row_bytes);
      Tiles::template dot<1, 4, 7>();
      Tiles::template load<5>(work.p + block * max_span_keys + c * pair_block, p_row_bytes);
      Tiles::template dot<2, 5, 6>();
      Tiles::template dot<3, 5, 7>();
      if (c == key_chunks - 1) {
        Tiles::template store<0>(o, o_row_bytes), Tiles::template store<1>(o + block, o_row_bytes);
        Tiles::template store<2>(o + block * dim, o_row_bytes), Tiles::template store<3>(o + block * dim + block, o_row_bytes);
      }
    } else if (i < work.pv_steps) {
      // O[16 rows x 64 dims] += P[16 rows x 32 keys] V[32 keys x 64 dims]
      const index_t c = i % key_chunks, d0 = (i / key_chunks) * 4 * block;
      float* o = w.o + work.pv_r0 * dim + d0;
      const bool four = d0 + 4 * block <= dim;  // else two 16-dim tiles (dim % 64 == 32)
      if (c == 0) {
        Tiles::template load<0>(o, o_row_bytes);
        Tiles::template load<1>(o + block, o_row_bytes);
        if (four) Tiles::template load<2>(o + 2 * block, o_row_bytes), Tiles::template load<3>(o + 3 * block, o_row_bytes);
      }
      const std::uint16_t* v_rows = w.vp + c * pair_block * dim + 2 * d0;  // pair-row 16 c, column d0
      Tiles::template load<4>(work.p + c * pair_block, p_row_bytes);
      Tiles::template load<5>(v_rows, v_row_bytes);
      Tiles::template load<6>(v_rows + 2 * block, v_row_bytes);
      Tiles::template dot<0, 4, 5>();
      Tiles::template dot<1, 4, 6>();
      if (four) {
        Tiles::template load<7>(v_rows + 4 * block, v_row_bytes);
        Tiles::template load<5>(v_rows + 6 * block, v_row_bytes);
        Tiles::template dot<2, 4, 7>();
        Tiles::template dot<3, 4, 5>();
      }
      if (c == key_chunks - 1) {
        Tiles::template store<0>(o, o_row_bytes);
        Tiles::template store<1>(o + block, o_row_bytes);
        if (four) Tiles::template store<2>(o + 2 * block, o_row_bytes), Tiles::template store<3>(o + 3 * block, o_row_bytes);
      }
    } else if (work.s_rows == 2 * block) {
      // S[32 rows x 32 keys] = Q[32 rows x dim] K[dim x 32 keys]
      const index_t j = i - work.pv_steps, c = j % dim_chunks, half = j / dim_chunks, d = c * pair_block;
      if (c == 0) Tiles::template zero<0>(), Tiles::template zero<1>(), Tiles::template zero<2>(), Tiles::template zero<3>();
      const std::uint32_t* k_rows = w.kp + (d / 2) * max_span_keys + half * pair_block;
      const std::uint16_t* q = w.q + work.s_r0 * dim + d;
      Tiles::template load<4>(q, q_row_bytes);
      Tiles::template load<6>(k_rows, k_row_bytes);
      Tiles::template dot<0, 4, 6>();
      Tiles::template load<7>(k_rows + block, k_row_bytes);
      Tiles::template dot<1, 4, 7>();
      Tiles::template load<5>(q + block * dim, q_row_bytes);
      Tiles::template dot<2, 5, 6>();
      Tiles::template dot<3, 5, 7>();
      if (c == dim_chunks - 1) {
        float* out = work.s + half * pair_block;
        Tiles::template store<0>(out, s_row_bytes), Tiles::template store<1>(out + block, s_row_bytes);
        Tiles::template store<2>(out + block * max_span_keys, s_row_bytes);
        Tiles::template store<3>(out + block * max_span_keys + block, s_row_bytes);
      }
    } else {
      // S[16 rows x 64 keys] = Q[16 rows x dim] K[dim x 64 keys]
      const index_t j = i - work.pv_steps, c = j % dim_chunks, t = j / dim_chunks, d = c * pair_block;
      if (c == 0) Tiles::template zero<0>(), Tiles::template zero<1>(), Tiles::template zero<2>(), Tiles::template zero<3>();
      const std::uint32_t* k_rows = w.kp + (d / 2) * max_span_keys + t * kv_tile;
      Tiles::template load<4>(w.q + work.s_r0 * dim + d, q_row_bytes);
      Tiles::template load<5>(k_rows, k_row_bytes);
      Tiles::template load<6>(k_rows + block, k_row_bytes);
      Tiles::template load<7>(k_rows + 2 * block, k_row_bytes);
      Tiles::template dot<0, 4, 5>();
      Tiles::template dot<1, 4, 6>();
      Tiles::template dot<2, 4, 7>();
      Tiles::template load<5>(k_rows + 3 * block, k_row_bytes);
      Tiles::template dot<3, 4, 5>();
      if (c == dim_chunks - 1) {
        float* out = work.s + t * kv_tile;
        Tiles::template store<0>(out, s_row_bytes);
        Tiles::template store<1>(out + block, s_row_bytes);
        Tiles::template store<2>(out + 2 * block, s_row_bytes);
        Tiles::template store<3>(out + 3 * block, s_row_bytes);
      }
    }
  }

  TRIMIX_AMX_TARGET void finish(const Workspace& w, TileWork& work) const {
    while (work.done < work.steps) step(w, work);
  }

  /// One span: pack its K and V once for all rows, then per 16-row block k the softmax of its
  /// scores, with the tile unit's work of the neighbours (P V of block k - 1, S of block k + 1)
  /// issued between the softmax rows, so that the tile unit and the vector units can work at once
  /// (a tile instruction holds its reorder-buffer entry until done, so work issued in one piece
  /// overlaps only a few hundred softmax instructions). Measured on the H200 host: within the
  /// run-to-run noise of issuing each block's S, softmax and P V in order (bench/NOTES.md).
  template <class ItemMask>
  TRIMIX_AMX_TARGET void visit_span(const Workspace& w, const ItemMask& item_mask, const WorkItem& item,
                                    index_t valid_rows, const Span& span) const {
    const Problem& p = args.problem;
    std::uint64_t tile_keys[max_span_tiles];
    for (index_t t = 0; t < span.tiles; ++t) {
      const index_t u = span.first + t, first_key = geometry.first_key(u), keys = geometry.kv_keys(u);
      pack_k(args.k + p.k(item.batch, item.kv_head, first_key, 0), p.k.seq, keys, dim, w.kp + t * kv_tile, max_span_keys);
      pack_v(args.v + p.v(item.batch, item.kv_head, first_key, 0), p.v.seq, keys, dim, w.vp + t * kv_tile * dim);
      tile_keys[t] = keys >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << keys) - 1;
    }
    const float score_scale = p.scale * log2e;
    const index_t first_position = geometry.first_position(item.q_tile), tiles = span.tiles;
    // Row groups: 16-row blocks with a row before seq_q (in its packed head), two adjacent ones
    // together (5-10% faster than single blocks on the H200 host, bench/NOTES.md).
    index_t group_r0[max_heads_per_item * q_rows / block], group_rows[max_heads_per_item * q_rows / block], count = 0;
    for (index_t r0 = 0; r0 < rows; r0 += block) {
      if (r0 % q_rows >= valid_rows) continue;
      if (count > 0 && group_rows[count - 1] == block && group_r0[count - 1] + block == r0) {
        group_rows[count - 1] = 2 * block;
        continue;
      }
      group_r0[count] = r0, group_rows[count] = block, ++count;
    }
    float* s_buffers[2] = {w.s, w.s + 2 * block * max_span_keys};
    std::uint16_t* p_buffers[2] = {w.p, w.p + 2 * block * max_span_keys};
    auto softmax_rows = [&](index_t k, TileWork& overlapped) {
      const index_t r0 = group_r0[k], n_rows = group_rows[k], per_row = (overlapped.steps + n_rows - 1) / n_rows;
      for (index_t i = 0; i < n_rows; ++i) {
        const index_t r = r0 + i;
        std::uint64_t visible[max_span_tiles];
        for (index_t t = 0; t < tiles; ++t) {
          visible[t] = tile_keys[t];
          if (!((span.partial >> t) & 1u)) continue;
          const index_t position = first_position + r % q_rows, first_key = geometry.first_key(span.first + t);
          visible[t] &= visible_word(item_mask, position, first_key, kv_tile, geometry.seq_k);
        }
        const float alpha = softmax_row(s_buffers[k & 1] + i * max_span_keys, visible, tiles, score_scale, w.m[r],
                                        w.l[r], p_buffers[k & 1] + i * max_span_keys);
        if (alpha != 1.0f) scale_row(w.o + r * dim, dim, alpha);
        for (index_t n = 0; n < per_row && overlapped.done < overlapped.steps; ++n) step(w, overlapped);
      }
    };
    if (count == 0) return;
    TileWork first = tile_work(-1, 0, nullptr, group_r0[0], group_rows[0], s_buffers[0], tiles);
    finish(w, first);
    for (index_t k = 0; k < count; ++k) {
      const bool before = k > 0, after = k + 1 < count;
      TileWork around = tile_work(before ? group_r0[k - 1] : -1, before ? group_rows[k - 1] : 0, p_buffers[(k - 1) & 1],
                                  after ? group_r0[k + 1] : -1, after ? group_rows[k + 1] : 0, s_buffers[(k + 1) & 1],
                                  tiles);
      softmax_rows(k, around);
      finish(w, around);
    }
    TileWork last = tile_work(group_r0[count - 1], group_rows[count - 1], p_buffers[(count - 1) & 1], -1, 0, nullptr, tiles);
    finish(w, last);
  }

  /// o = acc / l (0 for rows that saw nothing) and lse, or the partial slot of a split item.
  TRIMIX_AMX_TARGET void write_rows(const Workspace& w, const WorkItem& item, index_t first_q_head, index_t first_row,
                                    index_t valid_rows) const {
    const Problem& p = args.problem;
    for (index_t r = 0; r < rows; ++r) {
      const index_t i = r % q_rows;
      if (i >= valid_rows) continue;
      const float l = w.l[r], inv = !(l <= 0.0f) ? 1.0f / l : 0.0f;
      const float* acc = w.o + r * dim;
      const float lse = finish_lse(w.m[r], l);
      if (item.split_slot >= 0) {
        float* out = partial_o + (index_t(item.split_slot) * rows + r) * dim;
        for (index_t d = 0; d < dim; ++d) out[d] = acc[d] * inv;
        partial_lse[index_t(item.split_slot) * rows + r] = lse;
      } else {
        TO* out = args.o + p.o(item.batch, first_q_head + r / q_rows, first_row + i, 0);
        if constexpr (std::is_same_v<TO, bf16>) {
          if (p.o.dim == 1) store_bf16_row(acc, inv, dim, out);
          else for (index_t d = 0; d < dim; ++d) out[d * p.o.dim] = bf16(acc[d] * inv);
        } else {
          for (index_t d = 0; d < dim; ++d) out[d * p.o.dim] = element_traits<TO>::from_float(acc[d] * inv);
        }
        if (args.lse)
          args.lse[item.batch * p.lse_batch + (first_q_head + r / q_rows) * p.lse_head + (first_row + i) * p.lse_seq] = lse;
      }
    }
  }
};

#pragma GCC diagnostic pop
#undef TRIMIX_AMX_TARGET

}  // namespace host_amx

/// bf16 Q, K, V on a host execution space: the AMX engine where the CPU has it.
template <class ExecSpace, class TO>
struct tile_engine<ExecSpace, bf16, bf16, bf16, TO,
                   std::enable_if_t<Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename ExecSpace::memory_space>::accessible>> {
  static constexpr bool available = true;

  static bool handles_shape(const Problem& p) {
    return host_amx::mode() != host_amx::Mode::off && p.head_dim % host_amx::pair_block == 0 && p.head_dim <= 256;
  }

  static TileShape shape(const Problem&) {
    return TileShape{host_amx::q_rows, host_amx::kv_tile, host_amx::max_heads_per_item, 0, 0};
  }

  /// Rows are copied with memcpy and packed with vector loads: Q, K and V need a contiguous head dim.
  static bool handles_views(const Problem& p, const void*, const void*, const void*, const void*) {
    return p.q.dim == 1 && p.k.dim == 1 && p.v.dim == 1;
  }

  template <class Mask>
  static void run(const ExecSpace& exec, const Plan<typename ExecSpace::memory_space>& work, const Mask& mask,
                  const AttentionArgs<bf16, bf16, bf16, TO>& args, float* partial_o, float* partial_lse,
                  std::uint32_t* /*item_counter*/) {
    if (host_amx::mode() == host_amx::Mode::hardware)
      launch<host_amx::HardwareTiles>(exec, work, mask, args, partial_o, partial_lse);
    else
      launch<host_amx::EmulatedTiles>(exec, work, mask, args, partial_o, partial_lse);
  }

 private:
  template <class Tiles, class Mask>
  static void launch(const ExecSpace& exec, const Plan<typename ExecSpace::memory_space>& work, const Mask& mask,
                     const AttentionArgs<bf16, bf16, bf16, TO>& args, float* partial_o, float* partial_lse) {
    const host_amx::ItemRunner<Tiles, Mask, TO> runner{args,
                                                       mask,
                                                       work.geometry,
                                                       work.heads_per_item,
                                                       work.rows_per_item,
                                                       args.problem.head_dim,
                                                       work.items.data(),
                                                       work.runs.data(),
                                                       partial_o,
                                                       partial_lse};
    // Items are ordered longest first: dynamic scheduling, one item per chunk.
    Kokkos::parallel_for("trimix::attention[" + std::string(mask_name(mask)) + "]",
                         Kokkos::RangePolicy<ExecSpace, Kokkos::Schedule<Kokkos::Dynamic>>(exec, 0, work.item_count())
                             .set_chunk_size(1),
                         [=](index_t n) { runner(n); });
  }
};

#endif  // TRIMIX_HAS_HOST_AMX

}  // namespace trimix::impl
