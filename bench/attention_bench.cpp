// Attention benchmark: time of trimix::attention per sequence length, mask and element type on
// Kokkos' default execution space, with the context needed to compare runs (device, commit,
// backend, threads), one CSV row per case.
//
//   attention_bench [--seq 2048,4096,8192,16384] [--masks causal,triangle,streaming]
//                   [--dtypes f32,bf16] [--threads N] [--csv results.csv] ...   (--help)
//
// For each (dtype, seq) dense causal runs first, and every mask's row carries its speed-up over it.
// Planning is timed apart from the kernel; the clock stops after a fence. A thread sweep is one run
// per thread count (bench/run_cpu.sh): Kokkos is initialised once per process.
//
// CSV columns (appended; header written when the file is new):
//   device,commit,kokkos_backend,threads,dtype,mask,batch,q_heads,kv_heads,head_dim,seq,plan_ms,
//   time_ms,visible_pairs,tflops_visible,speedup_vs_causal,time_vs_causal_ratio,estimate_ms
// Dynamic masks (vslash, pooled90, pooled95): time_ms is estimation + plan + attention of one call
// (the mask changes with the inputs), estimate_ms the estimator's part; visible_pairs their mean.
// visible_pairs is per (batch, query head); tflops_visible counts 4 * head_dim FLOPs per visible
// pair, batch and query head; speedup_vs_causal = causal time / time, time_vs_causal_ratio its
// inverse.

#include "bench_common.hpp"

#include <trimix/trimix.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef TRIMIX_GIT_COMMIT
#define TRIMIX_GIT_COMMIT "unknown"
#endif

namespace {

using trimix::index_t;
using trimix_bench::parse_int;
using trimix_bench::split_list;

// ---- command line -------------------------------------------------------------------------------

struct Options {
  std::vector<index_t> seqs = {2048, 4096, 8192, 16384};
  std::vector<std::string> masks = {"causal", "triangle", "streaming"};
  std::vector<std::string> dtypes = {"f32", "bf16"};
  int threads = 0;  ///< 0: Kokkos' default (OMP_NUM_THREADS on OpenMP)
  index_t batch = 1, q_heads = 32, kv_heads = 8, head_dim = 128;
  index_t sink = 8, window = 512, last_rows = 128;
  int repeat = 3;
  int warmup = 1;
  double budget_s = 10;  ///< per case: no further timed runs once this much time is spent
  std::string csv;
  std::string io_dir;  ///< inputs from q.bin/k.bin/v.bin, outputs to o_<mask>.bin (raw, [B,H,S,D])
  bool structured = false;  ///< Q/K with sinks, verticals and a local band (fill_structured)
  bool zero_kv = false;     ///< K and V all zeros: how much the tensor cores' power depends on data
  bool trace = false;       ///< timeline of one more, untimed call (CallTrace)
  int queued = 1;           ///< calls per timed sample, fenced once (static masks): launch cost hidden
  double warmup_ms = 0, rep_ms = 0;  ///< static masks: at least this long warming up / timing
  std::uint64_t seed = 2025;
};

void print_usage(const char* program) {
  std::printf(
      "Usage: %s [options]\n"
      "Times trimix::attention over sequence lengths, masks and element types.\n\n"
      "  --seq LIST       sequence lengths (queries = keys)       [2048,4096,8192,16384]\n"
      "  --masks LIST     causal,triangle,streaming,full            [causal,triangle,streaming]\n"
      "                   triangle_spelled: Causal & (Sink | Window | LastRows), Triangle's pairs\n"
      "                   dynamic (estimated per call, Causal & block-sparse): vslash (MInference\n"
      "                   vertical-slash), pooled90 / pooled95 (pooled blocks, gamma 0.9 / 0.95)\n"
      "  --dtypes LIST    f32,bf16,f16                              [f32,bf16]\n"
      "  --threads N      threads Kokkos starts with (0: its default, e.g. OMP_NUM_THREADS) [0]\n"
      "  --batch B        [1]     --q-heads H   [32]    --kv-heads H  [8]    --head-dim D [128]\n"
      "  --sink S         [8]     --window W    [512]   --last-rows R [128]  (triangle, streaming)\n"
      "  --warmup N       untimed runs per case                     [1]\n"
      "  --repeat N       timed runs per case: the best of fewer than 5, else the median [3]\n"
      "  --budget-s S     no more timed runs once they add up to S seconds; a single run\n"
      "                   longer than S/2 (warm-up included) is timed alone     [10]\n"
      "  --csv PATH       append one row per case to PATH\n"
      "  --seed S         seed of the random inputs                 [2025]\n"
      "  --inputs KIND    normal (unit normal Q/K/V) or structured (Q/K with sinks, vertical\n"
      "                   keys and a local band, as long-context attention has; for the\n"
      "                   dynamic masks), or zerokv (normal Q, K and V all zeros: the\n"
      "                   clock's dependence on the operands, for measuring) [normal]\n"
      "  --warmup-ms T    static masks: warm up for at least T ms as well   [0]\n"
      "  --rep-ms T       static masks: time runs for at least T ms as well, the median of\n"
      "                   all (a sustained load, as triton's do_bench; a GPU clocks lower\n"
      "                   under it than in a burst of a few calls)       [0]\n"
      "  --queued N       each timed sample is N calls in a row and one fence, divided by N:\n"
      "                   the GPU time per call without the host's launch and fence (what the\n"
      "                   GPU peers' do_bench measures); 1 times each call alone [1]\n"
      "  --trace          one more call after the timed ones prints its\n"
      "                   timeline to stderr (Kokkos kernels, allocations, copies, fences,\n"
      "                   from Kokkos Tools callbacks, which fence every kernel: a diagnosis,\n"
      "                   not a timing)\n"
      "  --io-dir DIR     read Q/K/V from DIR/{q,k,v}.bin instead of drawing them, write each\n"
      "                   mask's output to DIR/o_<mask>.bin (raw elements, [B, H, S, D] order;\n"
      "                   one dtype and one seq; bench/compare_gpu.py uses it)\n\n"
      "Environment: TRIMIX_DEVICE overrides the device name recorded in the CSV.\n",
      program);
}

bool parse_options(int argc, char* argv[], Options& opt) {
  for (int a = 1; a < argc; ++a) {
    std::string arg = argv[a], value;
    if (arg.rfind("--kokkos", 0) == 0) continue;
    if (arg == "--help" || arg == "-h") return false;
    if (arg == "--trace") {  // takes no value
      opt.trace = true;
      continue;
    }
    trimix_bench::take_value(argc, argv, a, arg, value);
    if (arg == "--seq") {
      opt.seqs.clear();
      for (const auto& s : split_list(value)) opt.seqs.push_back(parse_int(arg, s, 1));
    } else if (arg == "--masks") {
      opt.masks = split_list(value);
    } else if (arg == "--dtypes") {
      opt.dtypes = split_list(value);
    } else if (arg == "--threads") opt.threads = int(parse_int(arg, value, 0));
    else if (arg == "--batch") opt.batch = parse_int(arg, value, 1);
    else if (arg == "--q-heads") opt.q_heads = parse_int(arg, value, 1);
    else if (arg == "--kv-heads") opt.kv_heads = parse_int(arg, value, 1);
    else if (arg == "--head-dim") opt.head_dim = parse_int(arg, value, 1);
    else if (arg == "--sink") opt.sink = parse_int(arg, value, 0);
    else if (arg == "--window") opt.window = parse_int(arg, value, 0);
    else if (arg == "--last-rows") opt.last_rows = parse_int(arg, value, 0);
    else if (arg == "--warmup") opt.warmup = int(parse_int(arg, value, 0));
    else if (arg == "--repeat") opt.repeat = int(parse_int(arg, value, 1));
    else if (arg == "--queued") opt.queued = int(parse_int(arg, value, 1));
    else if (arg == "--warmup-ms") opt.warmup_ms = double(parse_int(arg, value, 0));
    else if (arg == "--rep-ms") opt.rep_ms = double(parse_int(arg, value, 0));
    else if (arg == "--budget-s") opt.budget_s = double(parse_int(arg, value, 0));
    else if (arg == "--csv") opt.csv = value;
    else if (arg == "--seed") opt.seed = std::uint64_t(parse_int(arg, value, 0));
    else if (arg == "--io-dir") opt.io_dir = value;
    else if (arg == "--inputs") {
      if (value != "normal" && value != "structured" && value != "zerokv")
        throw std::invalid_argument("--inputs takes normal, structured or zerokv, got " + value);
      opt.structured = value == "structured";
      opt.zero_kv = value == "zerokv";
    }
    else throw std::invalid_argument("unknown option " + arg + " (see --help)");
  }
  for (const auto& m : opt.masks)
    if (m != "causal" && m != "triangle" && m != "triangle_spelled" && m != "streaming" && m != "full" &&
        m != "vslash" && m != "pooled90" && m != "pooled95")
      throw std::invalid_argument("unknown mask '" + m +
                                  "' (causal, triangle, triangle_spelled, streaming, full, vslash, pooled90, "
                                  "pooled95)");
  for (const auto& d : opt.dtypes)
    if (d != "f32" && d != "bf16" && d != "f16")
      throw std::invalid_argument("unknown dtype '" + d + "' (f32, bf16, f16)");
  if (opt.q_heads % opt.kv_heads != 0)
    throw std::invalid_argument("--q-heads must be a multiple of --kv-heads");
  if (!opt.io_dir.empty() && (opt.seqs.size() != 1 || opt.dtypes.size() != 1))
    throw std::invalid_argument("--io-dir takes exactly one --seq and one --dtypes");
  // Dense causal first: every other mask is reported relative to it.
  std::stable_partition(opt.masks.begin(), opt.masks.end(), [](const std::string& m) { return m == "causal"; });
  return true;
}

// ---- context --------------------------------------------------------------------------------------

/// TRIMIX_DEVICE, else the CPU model on host backends, else the backend's name.
std::string device_name() {
  using Memory = Kokkos::DefaultExecutionSpace::memory_space;
  const std::string cpu = trimix_bench::cpu_model_name();
  if (std::getenv("TRIMIX_DEVICE") || Kokkos::SpaceAccessibility<Kokkos::HostSpace, Memory>::accessible)
    if (!cpu.empty()) return cpu;
  return Kokkos::DefaultExecutionSpace::name();
}

using trimix_bench::csv_field;
using trimix_bench::file_is_empty;

// ---- inputs and work ------------------------------------------------------------------------------

/// Counter-based standard normal (splitmix64 + Box-Muller): the same inputs whatever the threads.
inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline double unit_normal(std::uint64_t seed, std::uint64_t index) {
  constexpr double two_pi = 6.283185307179586;
  constexpr double to_unit = 0x1p-53;
  const std::uint64_t a = splitmix64(seed ^ splitmix64(2 * index));
  const std::uint64_t b = splitmix64(seed ^ splitmix64(2 * index + 1));
  const double u1 = (double(a >> 11) + 0.5) * to_unit;
  const double u2 = double(b >> 11) * to_unit;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2);
}

template <class View>
void fill_normal(const View& view, std::uint64_t seed) {
  using T = typename View::non_const_value_type;
  auto host = Kokkos::create_mirror_view(view);
  T* data = host.data();
  Kokkos::parallel_for(
      "attention_bench::fill_normal",
      Kokkos::RangePolicy<Kokkos::DefaultHostExecutionSpace>(0, index_t(host.span())),
      [=](index_t e) { data[e] = trimix::element_traits<T>::from_double(unit_normal(seed, std::uint64_t(e))); });
  Kokkos::fence();
  Kokkos::deep_copy(view, host);
}

/// Q and K with the structure long-context attention shows, for the dynamic masks (on unit-normal
/// inputs every block matters about equally and the estimators keep nearly all of them):
/// - a local band and diagonals: the first half of head_dim holds rotary pairs,
///   q_p = A (cos w_f p, sin w_f p), k_j = A (cos w_f j, sin w_f j), so q.k = A^2 sum_f cos(w_f (p - j))
///   peaks at p = j (and where the frequencies realign);
/// - sinks and vertical lines: keys 0..3 and 32 random keys per head carry a direction u that every
///   query of the head shares (score about 8 after the 1/sqrt(D) scale);
/// - noise in the remaining dims. V stays unit normal.
template <class View>
void fill_structured(const View& q, const View& k, std::uint64_t seed) {
  using T = typename View::non_const_value_type;
  auto qh = Kokkos::create_mirror_view(q);
  auto kh = Kokkos::create_mirror_view(k);
  const index_t batch = index_t(q.extent(0)), q_heads = index_t(q.extent(1)), kv_heads = index_t(k.extent(1));
  const index_t seq_q = index_t(q.extent(2)), seq_k = index_t(k.extent(2)), dim = index_t(q.extent(3));
  const index_t pairs = dim / 4, shared = std::min<index_t>(8, dim / 4);
  const double rotary_amp = std::sqrt(1.0 * std::sqrt(double(dim)) / double(pairs) * 10.0);  // peak ~10
  const double vertical_amp = std::sqrt(8.0 * std::sqrt(double(dim)));                        // score ~8
  auto unit = [seed](std::uint64_t a, std::uint64_t b) { return unit_normal(seed ^ (a * 0x9E3779B97F4A7C15ull), b); };
  auto direction = [&](index_t head, index_t t) {  // u of a kv-head group, |u| about 1
    return unit(std::uint64_t(head) + 1, std::uint64_t(t)) / std::sqrt(double(shared));
  };
  Kokkos::parallel_for(
      "attention_bench::fill_structured_q",
      Kokkos::RangePolicy<Kokkos::DefaultHostExecutionSpace>(0, batch * q_heads * seq_q), [&](index_t e) {
        const index_t h = e / seq_q % q_heads, p = seq_k - seq_q + e % seq_q, g = h / (q_heads / kv_heads);
        T* row = qh.data() + e * dim;
        for (index_t f = 0; f < pairs; ++f) {
          const double w = std::pow(10000.0, -double(f) / double(pairs));
          row[2 * f] = trimix::element_traits<T>::from_double(rotary_amp * std::cos(w * double(p)));
          row[2 * f + 1] = trimix::element_traits<T>::from_double(rotary_amp * std::sin(w * double(p)));
        }
        for (index_t t = 0; t < dim - 2 * pairs; ++t)
          row[2 * pairs + t] = trimix::element_traits<T>::from_double(
              t < shared ? vertical_amp * direction(g, t) : 0.3 * unit(2 * std::uint64_t(e) + 7, std::uint64_t(t)));
      });
  Kokkos::parallel_for(
      "attention_bench::fill_structured_k",
      Kokkos::RangePolicy<Kokkos::DefaultHostExecutionSpace>(0, batch * kv_heads * seq_k), [&](index_t e) {
        const index_t g = e / seq_k % kv_heads, j = e % seq_k;
        // 32 vertical keys per head at pseudo-random positions, and the first 4 (sinks).
        const std::uint64_t hash = (std::uint64_t(j) * 0x9E3779B97F4A7C15ull) ^ (std::uint64_t(g) * 0xBF58476D1CE4E5B9ull) ^ seed;
        const bool vertical = j < 4 || (hash >> 40) % std::uint64_t(std::max<index_t>(1, seq_k / 32)) == 0;
        T* row = kh.data() + e * dim;
        for (index_t f = 0; f < pairs; ++f) {
          const double w = std::pow(10000.0, -double(f) / double(pairs));
          row[2 * f] = trimix::element_traits<T>::from_double(rotary_amp * std::cos(w * double(j)));
          row[2 * f + 1] = trimix::element_traits<T>::from_double(rotary_amp * std::sin(w * double(j)));
        }
        for (index_t t = 0; t < dim - 2 * pairs; ++t)
          row[2 * pairs + t] = trimix::element_traits<T>::from_double(
              t < shared && vertical ? vertical_amp * direction(g, t) : 0.3 * unit(2 * std::uint64_t(e) + 8, std::uint64_t(t)));
      });
  Kokkos::fence();
  Kokkos::deep_copy(q, qh);
  Kokkos::deep_copy(k, kh);
}

/// Raw element files of --io-dir: exactly view.span() elements, [B, H, S, D] order (LayoutRight).
template <class View>
void read_raw(const View& view, const std::string& path) {
  using T = typename View::non_const_value_type;
  auto host = Kokkos::create_mirror_view(view);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(host.data()), std::streamsize(host.span() * sizeof(T)));
  if (!in || in.peek() != std::char_traits<char>::eof())
    throw std::invalid_argument("--io-dir: " + path + " does not hold exactly " +
                                std::to_string(host.span()) + " elements of " + trimix::element_name<T>());
  Kokkos::deep_copy(view, host);
}

template <class View>
void write_raw(const View& view, const std::string& path) {
  using T = typename View::non_const_value_type;
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), view);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(host.data()), std::streamsize(host.span() * sizeof(T)));
  if (!out) throw std::runtime_error("--io-dir: cannot write " + path);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ---- one case ---------------------------------------------------------------------------------------

struct Result {
  std::string dtype, mask;
  index_t seq = 0;
  double plan_ms = 0, time_ms = 0;
  double estimate_ms = 0;  ///< dynamic masks: the estimator's share of time_ms
  index_t pairs = 0;
  double visited_area = 0;  ///< kv-tiles visited x rows per q-tile: plans with other q-tiles compare
  double tflops = 0;
  int runs = 0;
};

/// Timeline of one call from Kokkos Tools callbacks (--trace): kernels with their duration,
/// allocations and frees with their size, deep copies, fences and regions, in ms since start().
/// While a callback is set Kokkos fences around every kernel, so durations are real but the call
/// is slower than untraced: this says where a dynamic call's time goes, the CSV says how long.
/// The CUDA engine's own launch shows as its profiling region.
class CallTrace {
 public:
  /// Prints the trace's heading and sets the callbacks.
  static void start(const std::string& mask_label, index_t seq) {
    namespace T = Kokkos::Tools::Experimental;
    std::fprintf(stderr, "\n    trace of one %s call (seq %lld), after the timed ones:\n", mask_label.c_str(),
                 (long long)seq);
    origin() = std::chrono::steady_clock::now();
    open().clear();
    T::set_begin_parallel_for_callback(&begin_kernel);
    T::set_begin_parallel_reduce_callback(&begin_kernel);
    T::set_begin_parallel_scan_callback(&begin_kernel);
    T::set_end_parallel_for_callback(&end_kernel);
    T::set_end_parallel_reduce_callback(&end_kernel);
    T::set_end_parallel_scan_callback(&end_kernel);
    T::set_allocate_data_callback(&allocated);
    T::set_deallocate_data_callback(&freed);
    T::set_begin_deep_copy_callback(&begin_copy);
    T::set_end_deep_copy_callback(&end_copy);
    T::set_begin_fence_callback(&begin_kernel);
    T::set_end_fence_callback(&end_kernel);
    T::set_push_region_callback(&push);
    T::set_pop_region_callback(&pop);
  }
  static void stop() {
    namespace T = Kokkos::Tools::Experimental;
    T::set_begin_parallel_for_callback(nullptr);
    T::set_begin_parallel_reduce_callback(nullptr);
    T::set_begin_parallel_scan_callback(nullptr);
    T::set_end_parallel_for_callback(nullptr);
    T::set_end_parallel_reduce_callback(nullptr);
    T::set_end_parallel_scan_callback(nullptr);
    T::set_allocate_data_callback(nullptr);
    T::set_deallocate_data_callback(nullptr);
    T::set_begin_deep_copy_callback(nullptr);
    T::set_end_deep_copy_callback(nullptr);
    T::set_begin_fence_callback(nullptr);
    T::set_end_fence_callback(nullptr);
    T::set_push_region_callback(nullptr);
    T::set_pop_region_callback(nullptr);
  }
  static double now_ms() {
    return 1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - origin()).count();
  }

 private:
  using Handle = Kokkos_Profiling_SpaceHandle;  // the C struct, in Kokkos 3.4 and 4.x
  static std::chrono::steady_clock::time_point& origin() {
    static std::chrono::steady_clock::time_point t;
    return t;
  }
  static std::vector<std::pair<std::string, double>>& open() {  // kernel or fence id -> (name, begin)
    static std::vector<std::pair<std::string, double>> o;
    return o;
  }
  static void begin_kernel(const char* name, std::uint32_t, std::uint64_t* id) {
    *id = open().size();
    open().emplace_back(name, now_ms());
  }
  static void end_kernel(std::uint64_t id) {
    if (id >= open().size()) return;
    const double end = now_ms();
    std::fprintf(stderr, "    trace %9.3f ms  %8.3f ms  %s\n", open()[id].second, end - open()[id].second,
                 open()[id].first.c_str());
  }
  static void allocated(Handle space, const char* name, const void*, std::uint64_t bytes) {
    std::fprintf(stderr, "    trace %9.3f ms  alloc %s %s %.3f MB\n", now_ms(), space.name, name, bytes * 1e-6);
  }
  static void freed(Handle space, const char* name, const void*, std::uint64_t bytes) {
    std::fprintf(stderr, "    trace %9.3f ms  free  %s %s %.3f MB\n", now_ms(), space.name, name, bytes * 1e-6);
  }
  static void begin_copy(Handle dst, const char* dst_name, const void*, Handle src, const char*, const void*,
                         std::uint64_t bytes) {
    copy_begin() = now_ms();
    std::fprintf(stderr, "    trace %9.3f ms  copy  %s <- %s %s %.3f MB\n", copy_begin(), dst.name, src.name,
                 dst_name, bytes * 1e-6);
  }
  static void end_copy() { std::fprintf(stderr, "    trace %9.3f ms  copy done (%.3f ms)\n", now_ms(), now_ms() - copy_begin()); }
  static double& copy_begin() {
    static double t = 0;
    return t;
  }
  static void push(const char* name) { std::fprintf(stderr, "    trace %9.3f ms  region %s\n", now_ms(), name); }
  static void pop() { std::fprintf(stderr, "    trace %9.3f ms  region end\n", now_ms()); }
};

template <class Exec, class View4, class Mask>
Result time_case(const Options& opt, const Exec& exec, const View4& q, const View4& k, const View4& v,
                 const View4& o, const std::string& dtype, const std::string& mask_label,
                 const Mask& mask, index_t seq) {
  Result r{dtype, mask_label, seq};
  auto t0 = std::chrono::steady_clock::now();
  const auto plan = trimix::plan_attention(exec, q, k, v, o, mask);
  exec.fence();
  r.plan_ms = 1e3 * seconds_since(t0);
  r.visited_area = double(plan.work.visited_tiles) * double(plan.work.geometry.q_tile);
  r.pairs = trimix::count_visible_pairs(mask, seq, seq);

  // Warm-up runs, then timed runs until --repeat or the budget; with --warmup-ms / --rep-ms also
  // until that much time has passed in each (a GPU under sustained load clocks lower than in a
  // burst of a few calls: the peers' do_bench runs for a set time, and so must we to compare). A
  // run that alone takes more than half the budget is timed even as a warm-up and ends the case:
  // at that length, first-touch effects are noise, and a second run would double the sweep.
  std::vector<double> times;
  double timed_s = 0, warm_s = 0;
  for (int i = 0;; ++i) {
    const bool warming = i < opt.warmup || warm_s * 1e3 < opt.warmup_ms;
    if (!warming && int(times.size()) >= opt.repeat && timed_s * 1e3 >= opt.rep_ms) break;
    t0 = std::chrono::steady_clock::now();
    for (int call = 0; call < opt.queued; ++call) trimix::attention(exec, plan, q, k, v, o);
    exec.fence();  // kernels are asynchronous
    const double seconds = seconds_since(t0) / opt.queued;
    const bool long_run = seconds > opt.budget_s / 2;
    if (warming && !long_run) warm_s += seconds * opt.queued;
    if (!warming || long_run) {
      times.push_back(seconds);
      timed_s += seconds * opt.queued;
      ++r.runs;
    }
    if (long_run || timed_s > opt.budget_s) break;
  }
#ifdef TRIMIX_CUDA_PAIR_TIMELINE
  // One more call's pair-kernel stamps (include/trimix/engine_cuda_pair.hpp, PairTimeline), to
  // TRIMIX_TIMELINE_DIR/<dtype>_<mask>_<seq>.bin for bench/pair_timeline_summary.py.
  if (const char* dir = std::getenv("TRIMIX_TIMELINE_DIR")) {
    trimix::impl::cuda_engine::pair_timeline_clear();
    trimix::attention(exec, plan, q, k, v, o);
    exec.fence();
    trimix::impl::cuda_engine::pair_timeline_dump(std::string(dir) + "/" + dtype + "_" + mask_label + "_" +
                                                  std::to_string(seq) + ".bin");
  }
#endif
  if (opt.trace) {  // one more call, untimed, with its kernels' durations (attention and combine)
    CallTrace::start(mask_label, seq);
    trimix::attention(exec, plan, q, k, v, o);
    exec.fence();
    std::fprintf(stderr, "    trace %9.3f ms  call end\n", CallTrace::now_ms());
    CallTrace::stop();
  }
  // The median, as the GPU peers report theirs (triton's do_bench); the best of few on CPUs.
  std::sort(times.begin(), times.end());
  const double best = times.size() < 5 ? times.front() : times[times.size() / 2];
  r.time_ms = 1e3 * best;
  const double flops = 4.0 * double(opt.head_dim) * double(r.pairs) * double(opt.batch * opt.q_heads);
  r.tflops = flops / best * 1e-12;
  return r;
}

/// Visible pairs of Causal & a block-sparse map, summed over batch and heads: per listed block,
/// the keys of its block at or before each row's position. O(entries * block_q) on the host.
template <class Map>
double causal_block_sparse_pairs(const Map& map) {
  const auto host = trimix::mirror<Kokkos::HostSpace>(map);
  const auto entries = host.entries();
  const auto counts = host.counts();
  const index_t offset = map.seq_k() - map.seq_q();
  double pairs = 0;
  for (index_t b = 0; b < map.batch(); ++b)
    for (index_t h = 0; h < map.heads(); ++h)
      for (index_t qb = 0; qb < map.q_blocks(); ++qb)
        for (index_t e = 0; e < counts(b, h, qb); ++e) {
          const index_t k0 = index_t(entries(b, h, qb, e) >> 1) * map.block_k();
          const index_t k1 = std::min(k0 + map.block_k(), map.seq_k()) - 1;
          const index_t i1 = std::min((qb + 1) * map.block_q(), map.seq_q());
          for (index_t i = qb * map.block_q(); i < i1; ++i) pairs += double(std::max<index_t>(0, std::min(offset + i, k1) - k0 + 1));
        }
  return pairs;
}

/// A dynamic layer per call: estimate the mask from q and k, plan, attend under Causal & mask.
/// time_ms is all three (the mask changes with the inputs); estimate_ms and plan_ms its parts.
/// With --trace, one more call after the timed ones prints its timeline (CallTrace).
template <class Exec, class View4, class Estimate>
Result time_dynamic_case(const Options& opt, const Exec& exec, const View4& q, const View4& k, const View4& v,
                         const View4& o, const std::string& dtype, const std::string& mask_label,
                         const Estimate& estimate, index_t seq) {
  Result r{dtype, mask_label, seq};
  std::vector<double> totals, estimates, plans;
  double timed_s = 0, pairs = 0;
  const int calls = opt.warmup + opt.repeat + (opt.trace ? 1 : 0);
  for (int i = 0; i < calls; ++i) {
    // The traced call runs after the timed ones (its fences would slow them); it ends after the
    // plan's and the map's views are freed.
    const bool traced = opt.trace && i == calls - 1;
    struct TraceScope {
      bool on;
      ~TraceScope() {
        if (!on) return;
        std::fprintf(stderr, "    trace %9.3f ms  call end\n", CallTrace::now_ms());
        CallTrace::stop();
      }
    } trace_scope{traced};
    if (traced) {
      CallTrace::start(mask_label, seq);
    }
    auto t0 = std::chrono::steady_clock::now();
    const auto map = estimate(exec, q, k);
    exec.fence();
    const double est = seconds_since(t0);
    if (traced) std::fprintf(stderr, "    trace %9.3f ms  estimate done\n", CallTrace::now_ms());
    const auto mask = trimix::Causal{} & map.policy();
    const auto plan = trimix::plan_attention(exec, q, k, v, o, mask);
    exec.fence();
    const double planned = seconds_since(t0);
    if (traced) std::fprintf(stderr, "    trace %9.3f ms  plan done\n", CallTrace::now_ms());
    trimix::attention(exec, plan, q, k, v, o);
    exec.fence();
    const double seconds = seconds_since(t0);
    if (traced) {
      std::fprintf(stderr, "    trace %9.3f ms  attention done\n", CallTrace::now_ms());
      continue;
    }
    if (i == 0) {
      pairs = causal_block_sparse_pairs(map);
      r.visited_area = double(plan.work.visited_tiles) * double(plan.work.geometry.q_tile);
    }
    const bool long_run = seconds > opt.budget_s / 2;
    if (i >= opt.warmup || long_run) {
      totals.push_back(seconds);
      estimates.push_back(est);
      plans.push_back(planned - est);
      timed_s += seconds;
      ++r.runs;
    }
    if (long_run || timed_s > opt.budget_s) {
      if (!opt.trace) break;
      i = calls - 2;  // the budget ends the timed calls, not the traced one (the loop's last)
    }
  }
  auto pick = [](std::vector<double> x) {
    std::sort(x.begin(), x.end());
    return x.size() < 5 ? x.front() : x[x.size() / 2];
  };
  const double best = pick(totals);
  r.time_ms = 1e3 * best;
  r.estimate_ms = 1e3 * pick(estimates);
  r.plan_ms = 1e3 * pick(plans);
  r.pairs = index_t(pairs / double(opt.batch * opt.q_heads) + 0.5);  // mean per (batch, query head)
  r.tflops = 4.0 * double(opt.head_dim) * pairs / best * 1e-12;
  return r;
}

struct Context {
  std::string device, commit, backend;
  int threads = 0;
};

void write_csv_row(std::ofstream& csv, const Context& ctx, const Options& opt, const Result& r,
                   const Result* causal) {
  char numbers[256];
  std::snprintf(numbers, sizeof numbers, "%.4f,%.4f,%lld,%.5f", r.plan_ms, r.time_ms, (long long)r.pairs,
                r.tflops);
  std::string speedup, ratio;
  if (causal) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4f", causal->time_ms / r.time_ms);
    speedup = buf;
    std::snprintf(buf, sizeof buf, "%.5f", r.time_ms / causal->time_ms);
    ratio = buf;
  }
  csv << csv_field(ctx.device) << ',' << csv_field(ctx.commit) << ',' << csv_field(ctx.backend) << ','
      << ctx.threads << ',' << r.dtype << ',' << r.mask << ',' << opt.batch << ',' << opt.q_heads << ','
      << opt.kv_heads << ',' << opt.head_dim << ',' << r.seq << ',' << numbers << ',' << speedup << ','
      << ratio << ',' << r.estimate_ms << '\n';
  csv.flush();
}

template <class T>
void run_dtype(const Options& opt, const Context& ctx, std::ofstream* csv, std::vector<Result>& results) {
  using Exec = Kokkos::DefaultExecutionSpace;
  using View4 = Kokkos::View<T****, Kokkos::LayoutRight, Exec::memory_space>;  // head_dim contiguous everywhere
  const std::string dtype = trimix::element_name<T>();
  const Exec exec;
  for (index_t seq : opt.seqs) {
    const index_t b = opt.batch, d = opt.head_dim;
    View4 q(Kokkos::view_alloc(Kokkos::WithoutInitializing, "q"), b, opt.q_heads, seq, d);
    View4 k(Kokkos::view_alloc(Kokkos::WithoutInitializing, "k"), b, opt.kv_heads, seq, d);
    View4 v(Kokkos::view_alloc(Kokkos::WithoutInitializing, "v"), b, opt.kv_heads, seq, d);
    View4 o("o", b, opt.q_heads, seq, d);  // zero-filled: its pages are touched before timing
    if (opt.io_dir.empty()) {
      fill_normal(q, opt.seed * 3 + 0);
      fill_normal(k, opt.seed * 3 + 1);
      fill_normal(v, opt.seed * 3 + 2);
      if (opt.structured) fill_structured(q, k, opt.seed);
      if (opt.zero_kv) {
        Kokkos::deep_copy(k, T(0.0f));
        Kokkos::deep_copy(v, T(0.0f));
      }
    } else {
      read_raw(q, opt.io_dir + "/q.bin");
      read_raw(k, opt.io_dir + "/k.bin");
      read_raw(v, opt.io_dir + "/v.bin");
    }
    const Result* causal = nullptr;
    std::size_t causal_index = 0;
    for (const std::string& name : opt.masks) {
      std::fprintf(stderr, "  %-5s %-10s seq %6lld ...", dtype.c_str(), name.c_str(), (long long)seq);
      std::fflush(stderr);
      const auto started = std::chrono::steady_clock::now();
      Result r;
      if (name == "causal") r = time_case(opt, exec, q, k, v, o, dtype, name, trimix::Causal{}, seq);
      else if (name == "triangle")
        r = time_case(opt, exec, q, k, v, o, dtype, name, trimix::Triangle{opt.sink, opt.window, opt.last_rows}, seq);
      else if (name == "triangle_spelled")
        r = time_case(opt, exec, q, k, v, o, dtype, name,
                      trimix::Causal{} & (trimix::Sink{opt.sink} | trimix::Window{opt.window} |
                                          trimix::LastRows{opt.last_rows}),
                      seq);
      else if (name == "streaming")
        r = time_case(opt, exec, q, k, v, o, dtype, name, trimix::Streaming{opt.sink, opt.window}, seq);
      else if (name == "vslash")
        r = time_dynamic_case(opt, exec, q, k, v, o, dtype, name, [](const auto& ex, const auto& q_, const auto& k_) {
          return trimix::estimate_vertical_slash(ex, q_, k_, trimix::VerticalSlashOptions{});
        }, seq);
      else if (name == "pooled90" || name == "pooled95")
        r = time_dynamic_case(opt, exec, q, k, v, o, dtype, name, [&](const auto& ex, const auto& q_, const auto& k_) {
          trimix::PooledBlockOptions pooled;
          pooled.gamma = name == "pooled90" ? 0.9 : 0.95;
          return trimix::estimate_pooled_blocks(ex, q_, k_, pooled);
        }, seq);
      else r = time_case(opt, exec, q, k, v, o, dtype, name, trimix::Full{}, seq);
      results.push_back(r);
      if (!opt.io_dir.empty()) write_raw(o, opt.io_dir + "/o_" + name + ".bin");
      if (name == "causal") causal_index = results.size() - 1;
      causal = opt.masks.front() == "causal" ? &results[causal_index] : nullptr;
      std::fprintf(stderr, " %9.2f ms (%d runs, %.1f s)\n", r.time_ms, r.runs, seconds_since(started));
      if (csv) write_csv_row(*csv, ctx, opt, results.back(), causal);
    }
  }
}

void print_table(const Options& opt, const std::vector<Result>& results) {
  std::printf("\n%-5s %-10s %7s %9s %9s %11s %9s %14s %9s %12s\n", "dtype", "mask", "seq", "plan ms", "est. ms",
              "time ms", "TFLOP/s", "visible pairs", "speed-up", "tile bound");
  const Result* causal = nullptr;
  for (const Result& r : results) {
    if (r.mask == "causal") causal = &r;
    const bool same = causal && causal->seq == r.seq && causal->dtype == r.dtype;
    char speedup[32] = "-", bound[32] = "-";
    if (same) {
      std::snprintf(speedup, sizeof speedup, "%.2fx", causal->time_ms / r.time_ms);
      std::snprintf(bound, sizeof bound, "%.2fx", causal->visited_area / r.visited_area);
    }
    std::printf("%-5s %-10s %7lld %9.2f %9.2f %11.2f %9.3f %14lld %9s %12s\n", r.dtype.c_str(), r.mask.c_str(),
                (long long)r.seq, r.plan_ms, r.estimate_ms, r.time_ms, r.tflops, (long long)r.pairs, speedup, bound);
  }
  (void)opt;
  std::printf("\nTFLOP/s on visible pairs (4 x head_dim FLOPs per pair and query head); tile bound = kv-tiles "
              "causal visits / kv-tiles the mask visits, with the plan's tiles. Dynamic masks: time = "
              "estimation + plan + attention per call.\n");
}

/// argv for Kokkos::initialize: the program name, the --kokkos-* options, and the thread count as
/// Kokkos' own option when one is asked. Nothing else: Kokkos 3 also reads legacy options without
/// the prefix (--threads=N, --numa=N, --device=N) and would reject ours.
std::vector<char*> kokkos_argv(int argc, char* argv[], const Options& opt, std::string& storage) {
  std::vector<char*> args = {argv[0]};
  for (int a = 1; a < argc; ++a)
    if (std::string(argv[a]).rfind("--kokkos", 0) == 0) args.push_back(argv[a]);
  if (opt.threads > 0) {
#if defined(KOKKOS_VERSION) && KOKKOS_VERSION >= 40000
    storage = "--kokkos-num-threads=" + std::to_string(opt.threads);
#else
    storage = "--kokkos-threads=" + std::to_string(opt.threads);
#endif
    args.push_back(storage.data());
  }
  args.push_back(nullptr);
  return args;
}

}  // namespace

int main(int argc, char* argv[]) {
  Options opt;
  try {
    if (!parse_options(argc, argv, opt)) {
      print_usage(argv[0]);
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attention_bench: %s\n", e.what());
    return 2;
  }
  std::string thread_option;
  std::vector<char*> kargs = kokkos_argv(argc, argv, opt, thread_option);
  int kargc = int(kargs.size()) - 1;
  Kokkos::ScopeGuard kokkos(kargc, kargs.data());

  Context ctx;
  ctx.device = device_name();
  ctx.commit = TRIMIX_GIT_COMMIT;
  ctx.backend = Kokkos::DefaultExecutionSpace::name();
#if defined(KOKKOS_ENABLE_CUDA) && defined(__CUDACC__)
  // Which tile math the CUDA engine runs: the wgmma path needs sm_90a code in the binary.
  if constexpr (std::is_same_v<Kokkos::DefaultExecutionSpace, Kokkos::Cuda>)
    ctx.backend += trimix::impl::cuda_engine::uses_wgmma() ? " (wgmma)" : " (mma.sync)";
#endif
#if TRIMIX_HAS_HOST_BF16DP
  // Which tile products bf16 inputs take on host spaces (engine_host_bf16.hpp).
  if constexpr (Kokkos::SpaceAccessibility<Kokkos::HostSpace, Kokkos::DefaultExecutionSpace::memory_space>::accessible)
    ctx.backend += trimix::impl::host_bf16::enabled() ? " (bf16: avx512-bf16)" : " (bf16: portable)";
#endif
#if TRIMIX_HAS_HOST_AMX
  // bf16 head dims that are multiples of 32 take the AMX engine where it runs (engine_host_amx.hpp).
  if constexpr (Kokkos::SpaceAccessibility<Kokkos::HostSpace, Kokkos::DefaultExecutionSpace::memory_space>::accessible)
    if (trimix::impl::host_amx::mode() != trimix::impl::host_amx::Mode::off)
      ctx.backend += std::string(" (bf16 d%32: ") + trimix::impl::host_amx::mode_name() + ")";
#endif
  ctx.threads = int(Kokkos::DefaultExecutionSpace().concurrency());
  std::printf("attention_bench: %s, commit %s, Kokkos %s with %d threads\n", ctx.device.c_str(),
              ctx.commit.c_str(), ctx.backend.c_str(), ctx.threads);
  std::printf("batch %lld, q heads %lld, kv heads %lld, head dim %lld; triangle(%lld,%lld,%lld), "
              "streaming(%lld,%lld); warmup %d (%.0f ms), best of %d (%.0f ms; budget %.0f s per case), %d call(s) per fence\n",
              (long long)opt.batch, (long long)opt.q_heads, (long long)opt.kv_heads, (long long)opt.head_dim,
              (long long)opt.sink, (long long)opt.window, (long long)opt.last_rows, (long long)opt.sink,
              (long long)opt.window, opt.warmup, opt.warmup_ms, opt.repeat, opt.rep_ms, opt.budget_s, opt.queued);
  std::fflush(stdout);

  std::ofstream csv;
  if (!opt.csv.empty()) {
    const bool fresh = file_is_empty(opt.csv);
    csv.open(opt.csv, std::ios::app);
    if (!csv) {
      std::fprintf(stderr, "attention_bench: cannot write %s\n", opt.csv.c_str());
      return 1;
    }
    if (fresh)
      csv << "device,commit,kokkos_backend,threads,dtype,mask,batch,q_heads,kv_heads,head_dim,seq,plan_ms,"
             "time_ms,visible_pairs,tflops_visible,speedup_vs_causal,time_vs_causal_ratio,estimate_ms"
          << std::endl;
  }
  std::vector<Result> results;
  try {
    for (const std::string& dtype : opt.dtypes) {
      if (dtype == "f32") run_dtype<float>(opt, ctx, csv.is_open() ? &csv : nullptr, results);
      else if (dtype == "bf16") run_dtype<trimix::bf16>(opt, ctx, csv.is_open() ? &csv : nullptr, results);
      else run_dtype<trimix::fp16>(opt, ctx, csv.is_open() ? &csv : nullptr, results);
    }
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "attention_bench: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attention_bench: %s\n", e.what());
    return 1;
  }
  print_table(opt, results);
  return 0;
}
