// TriangleMix demo: dense causal attention next to TriangleMix's static triangle pattern (and the
// A-shape / StreamingLLM pattern it extends) on one prefill problem, by default one attention layer
// of Llama-3.1-8B (32 query heads, 8 key/value heads, head dim 128) at 8K tokens.
//
// For each mask it prints what the mask saves on paper (visible pairs, kv-tiles, FLOPs), then runs
// trimix::attention on Kokkos' default execution space and prints the time, the throughput on the
// pairs actually visible, the speed-up over causal, and the error of sampled rows against an exact
// double-precision computation. It exits with status 1 if an error exceeds the tolerance of the
// element type, so it doubles as a test (CTest runs a small shape).
//
//   trianglemix_demo [--seq 8192] [--dtype bf16] [--check-rows 64] ...   (--help lists everything)
//
// Run it with OMP_PROC_BIND=spread OMP_PLACES=threads on the OpenMP backend.

#include <trimix/trimix.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using trimix::index_t;

// ---- command line -------------------------------------------------------------------------------

struct Options {
  index_t seq = 8192;
  index_t batch = 1;
  index_t q_heads = 32;
  index_t kv_heads = 8;
  index_t head_dim = 128;
  std::string dtype = "bf16";
  index_t sink = 8;
  index_t window = 512;
  index_t last_rows = 128;
  index_t check_rows = 64;
  int repeat = 3;
  std::uint64_t seed = 2025;
};

void print_usage(const char* program) {
  std::printf(
      "Usage: %s [options]\n"
      "Dense causal vs TriangleMix (and streaming) prefill attention on random inputs.\n"
      "Defaults are one attention layer of Llama-3.1-8B at 8K tokens.\n\n"
      "  --seq N          prompt length (queries = keys = N)          [8192]\n"
      "  --batch B        batch size                                    [1]\n"
      "  --q-heads H      query heads                                   [32]\n"
      "  --kv-heads H     key/value heads (GQA: divides --q-heads)      [8]\n"
      "  --head-dim D     head dimension (multiple of 16, <= 256)       [128]\n"
      "  --dtype T        f32 | bf16 | f16 (storage type; math is fp32) [bf16]\n"
      "  --sink S         Triangle/Streaming sink tokens                [8]\n"
      "  --window W       Triangle/Streaming window (incl. the token)   [512]\n"
      "  --last-rows R    Triangle rows that see every earlier key      [128]\n"
      "  --check-rows N   query rows checked against exact double math  [64]  (0: no check)\n"
      "  --repeat N       timed runs per mask, best reported (fewer once\n"
      "                   they add up to 10 s)                          [3]\n"
      "  --seed S         seed of the random inputs                     [2025]\n"
      "  --help           this text\n\n"
      "Kokkos options (--kokkos-...) are passed to Kokkos. Exit status: 0 all checks passed,\n"
      "1 an error exceeded the tolerance, 2 bad arguments.\n"
      "Small self-check (used by CTest):\n"
      "  %s --seq 600 --q-heads 4 --kv-heads 2 --head-dim 64 --dtype f32\n",
      program, program);
}

index_t parse_int(const std::string& name, const std::string& text, index_t min_value) {
  std::size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty())
    throw std::invalid_argument(name + " expects an integer, got '" + text + "'");
  if (value < min_value)
    throw std::invalid_argument(name + " must be at least " + std::to_string(min_value) + ", got " +
                                text);
  return index_t(value);
}

/// Parses `--name value` and `--name=value`; arguments starting with --kokkos are Kokkos'.
/// Returns false when --help was asked.
bool parse_options(int argc, char* argv[], Options& opt) {
  for (int a = 1; a < argc; ++a) {
    std::string arg = argv[a];
    if (arg.rfind("--kokkos", 0) == 0) continue;
    if (arg == "--help" || arg == "-h") return false;
    std::string value;
    const std::size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (a + 1 < argc) {
      value = argv[++a];
    } else {
      throw std::invalid_argument(arg + " expects a value (see --help)");
    }
    if (arg == "--seq") opt.seq = parse_int(arg, value, 1);
    else if (arg == "--batch") opt.batch = parse_int(arg, value, 1);
    else if (arg == "--q-heads") opt.q_heads = parse_int(arg, value, 1);
    else if (arg == "--kv-heads") opt.kv_heads = parse_int(arg, value, 1);
    else if (arg == "--head-dim") opt.head_dim = parse_int(arg, value, 1);
    else if (arg == "--dtype") opt.dtype = value;
    else if (arg == "--sink") opt.sink = parse_int(arg, value, 0);
    else if (arg == "--window") opt.window = parse_int(arg, value, 0);
    else if (arg == "--last-rows") opt.last_rows = parse_int(arg, value, 0);
    else if (arg == "--check-rows") opt.check_rows = parse_int(arg, value, 0);
    else if (arg == "--repeat") opt.repeat = int(parse_int(arg, value, 1));
    else if (arg == "--seed") opt.seed = std::uint64_t(parse_int(arg, value, 0));
    else throw std::invalid_argument("unknown option " + arg + " (see --help)");
  }
  if (opt.dtype != "f32" && opt.dtype != "bf16" && opt.dtype != "f16")
    throw std::invalid_argument("--dtype must be f32, bf16 or f16, got '" + opt.dtype + "'");
  if (opt.q_heads % opt.kv_heads != 0)
    throw std::invalid_argument("--q-heads (" + std::to_string(opt.q_heads) +
                                ") must be a multiple of --kv-heads (" +
                                std::to_string(opt.kv_heads) + ")");
  return true;
}

// ---- inputs -------------------------------------------------------------------------------------

/// Counter-based standard normal: element `index` of stream `seed`, the same whatever the thread
/// count (splitmix64 gives two uniforms, Box-Muller turns them into a normal).
inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline double unit_normal(std::uint64_t seed, std::uint64_t index) {
  constexpr double two_pi = 6.283185307179586;
  constexpr double to_unit = 0x1p-53;  // 53 random bits -> [0, 1)
  const std::uint64_t a = splitmix64(seed ^ splitmix64(2 * index));
  const std::uint64_t b = splitmix64(seed ^ splitmix64(2 * index + 1));
  const double u1 = (double(a >> 11) + 0.5) * to_unit;  // (0, 1): log is finite
  const double u2 = double(b >> 11) * to_unit;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2);
}

/// Fills a rank-4 view with unit normals (rounded to its element type) on the host, in parallel.
template <class View>
void fill_normal(const View& view, std::uint64_t seed) {
  using T = typename View::non_const_value_type;
  auto host = Kokkos::create_mirror_view(view);
  T* data = host.data();
  const index_t size = index_t(host.span());
  Kokkos::parallel_for(
      "trianglemix_demo::fill_normal", Kokkos::RangePolicy<Kokkos::DefaultHostExecutionSpace>(0, size),
      [=](index_t e) { data[e] = trimix::element_traits<T>::from_double(unit_normal(seed, std::uint64_t(e))); });
  Kokkos::fence();
  Kokkos::deep_copy(view, host);
}


// ---- exact check of sampled rows ----------------------------------------------------------------

struct Row {
  index_t batch, head, row;
};

/// The rows to check: the edges where masks change shape (first and last rows, the window edge,
/// the first of the last rows) and random ones, without duplicates.
std::vector<Row> sample_rows(const Options& opt, index_t count) {
  std::vector<Row> rows;
  if (count <= 0) return rows;
  std::mt19937_64 rng(opt.seed ^ 0x5eed5eedull);
  auto pick = [&](index_t n) { return index_t(rng() % std::uint64_t(n)); };
  std::vector<index_t> wanted = {0, opt.seq - 1, opt.window - 1, opt.window, opt.seq - opt.last_rows,
                                 opt.seq - opt.last_rows - 1};
  while (index_t(wanted.size()) < count) wanted.push_back(pick(opt.seq));
  for (index_t i : wanted) {
    if (index_t(rows.size()) == count) break;
    if (i < 0 || i >= opt.seq) continue;
    const Row r{pick(opt.batch), pick(opt.q_heads), i};
    const bool seen = std::any_of(rows.begin(), rows.end(), [&](const Row& s) {
      return s.batch == r.batch && s.head == r.head && s.row == r.row;
    });
    if (!seen) rows.push_back(r);
  }
  return rows;
}

struct CheckResult {
  double max_abs_error = 0;  ///< max |o - exact| over the checked rows (inf if o is not finite)
  double max_abs_exact = 0;  ///< max |exact| over the checked rows
};

/// Exact attention of each sampled row in double precision, from the stored (rounded) inputs,
/// compared with the kernel's output. O(seq * head_dim) per row.
template <class HostView, class Mask>
CheckResult check_rows(const HostView& q, const HostView& k, const HostView& v, const HostView& o,
                       const Mask& mask, const std::vector<Row>& rows) {
  using Traits = trimix::element_traits<typename HostView::non_const_value_type>;
  const index_t seq_q = index_t(q.extent(2)), seq_k = index_t(k.extent(2)), dim = index_t(q.extent(3));
  const index_t group = index_t(q.extent(1) / k.extent(1));
  const double scale = 1.0 / std::sqrt(double(dim));
  CheckResult result;
  std::vector<double> score(static_cast<std::size_t>(seq_k), 0.0);
  std::vector<double> exact(static_cast<std::size_t>(dim), 0.0);
  for (const Row& r : rows) {
    const index_t g = r.head / group, p = seq_k - seq_q + r.row;
    double row_max = -std::numeric_limits<double>::infinity();
    for (index_t j = 0; j < seq_k; ++j) {
      if (!trimix::visible(mask, p, j, seq_k)) continue;
      double s = 0;
      for (index_t d = 0; d < dim; ++d)
        s += Traits::to_double(q(r.batch, r.head, r.row, d)) * Traits::to_double(k(r.batch, g, j, d));
      score[std::size_t(j)] = s * scale;
      row_max = std::max(row_max, s * scale);
    }
    std::fill(exact.begin(), exact.end(), 0.0);
    double sum = 0;
    for (index_t j = 0; j < seq_k; ++j) {
      if (!trimix::visible(mask, p, j, seq_k)) continue;
      const double w = std::exp(score[std::size_t(j)] - row_max);
      sum += w;
      for (index_t d = 0; d < dim; ++d) exact[std::size_t(d)] += w * Traits::to_double(v(r.batch, g, j, d));
    }
    for (index_t d = 0; d < dim; ++d) {
      const double want = sum > 0 ? exact[std::size_t(d)] / sum : 0.0;
      const double got = Traits::to_double(o(r.batch, r.head, r.row, d));
      const double error = std::isfinite(got) ? std::abs(got - want) : std::numeric_limits<double>::infinity();
      result.max_abs_error = std::max(result.max_abs_error, error);
      result.max_abs_exact = std::max(result.max_abs_exact, std::abs(want));
    }
  }
  return result;
}

/// Absolute tolerance on O for unit-normal inputs, where |O| stays below about 4 (a row that sees
/// one key copies a V row). It covers the fp32 accumulation and, for 16-bit types, rounding O to
/// the storage type (half a unit in the last place: 2^-9 |O| for bf16, 2^-12 |O| for f16).
double tolerance(const std::string& dtype) {
  if (dtype == "f32") return 1e-4;
  if (dtype == "f16") return 4e-3;
  return 2e-2;  // bf16
}

// ---- running ------------------------------------------------------------------------------------

/// Timed runs of one mask stop once they add up to this (at least one run), so that slow machines
/// still finish the default problem in reasonable time.
constexpr double repeat_budget_s = 10.0;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct MaskReport {
  std::string label;
  index_t pairs = 0;          ///< visible pairs per (batch, head)
  index_t visited_tiles = 0;  ///< kv-tiles visited per (batch, head), from the plan
  index_t q_tile = 0, kv_tile = 0, all_tiles = 0;
  double flops = 0;  ///< 4 * head_dim per visible pair, per query head and batch
  double plan_ms = 0, best_ms = 0;
  int runs = 0;
  CheckResult check;
  bool checked = false;
};

template <class T>
struct Demo {
  using Exec = Kokkos::DefaultExecutionSpace;
  // (batch, heads, seq, head_dim) with head_dim contiguous on every backend (GPU spaces default to
  // LayoutLeft).
  using View4 = Kokkos::View<T****, Kokkos::LayoutRight, Exec::memory_space>;

  const Options& opt;
  Exec exec;
  View4 q, k, v, o;
  using HostView4 = Kokkos::View<T****, Kokkos::LayoutRight, Kokkos::HostSpace>;
  HostView4 q_host, k_host, v_host, o_host;  // for the exact check
  std::vector<Row> rows;

  explicit Demo(const Options& options) : opt(options) {
    const index_t b = opt.batch, s = opt.seq, d = opt.head_dim;
    q = View4(Kokkos::view_alloc(Kokkos::WithoutInitializing, "q"), b, opt.q_heads, s, d);
    k = View4(Kokkos::view_alloc(Kokkos::WithoutInitializing, "k"), b, opt.kv_heads, s, d);
    v = View4(Kokkos::view_alloc(Kokkos::WithoutInitializing, "v"), b, opt.kv_heads, s, d);
    o = View4(Kokkos::view_alloc(Kokkos::WithoutInitializing, "o"), b, opt.q_heads, s, d);
    fill_normal(q, opt.seed * 3 + 0);
    fill_normal(k, opt.seed * 3 + 1);
    fill_normal(v, opt.seed * 3 + 2);
    rows = sample_rows(opt, opt.check_rows);
    if (!rows.empty()) {
      q_host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), q);
      k_host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), k);
      v_host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
    }
  }

  template <class Mask>
  MaskReport run(const std::string& label, const Mask& mask) {
    MaskReport r;
    r.label = label;
    std::fprintf(stderr, "running %-20s ...", label.c_str());
    std::fflush(stderr);
    const auto started = std::chrono::steady_clock::now();

    // Planning (once per shape and mask) is timed apart from the kernel.
    auto t0 = std::chrono::steady_clock::now();
    const auto plan = trimix::plan_attention(exec, q, k, v, o, mask);
    exec.fence();
    r.plan_ms = 1e3 * seconds_since(t0);
    r.q_tile = plan.work.geometry.q_tile;
    r.kv_tile = plan.work.geometry.kv_tile;
    r.visited_tiles = plan.work.visited_tiles;
    r.all_tiles = plan.work.geometry.q_tiles() * plan.work.geometry.kv_tiles();
    r.pairs = trimix::count_visible_pairs(mask, opt.seq, opt.seq);
    r.flops = 4.0 * double(opt.head_dim) * double(r.pairs) * double(opt.batch * opt.q_heads);

    // Poison o so that a row the kernel forgot shows up as an error.
    Kokkos::deep_copy(o, trimix::element_traits<T>::from_float(std::numeric_limits<float>::quiet_NaN()));
    r.best_ms = std::numeric_limits<double>::infinity();
    double spent_s = 0;
    for (int i = 0; i < opt.repeat && spent_s < repeat_budget_s; ++i) {
      t0 = std::chrono::steady_clock::now();
      trimix::attention(exec, plan, q, k, v, o);
      exec.fence();  // kernels are asynchronous
      const double seconds = seconds_since(t0);
      r.best_ms = std::min(r.best_ms, 1e3 * seconds);
      spent_s += seconds;
      ++r.runs;
    }
    if (!rows.empty()) {
      o_host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), o);
      r.check = check_rows(q_host, k_host, v_host, o_host, mask, rows);
      r.checked = true;
    }
    std::fprintf(stderr, " %.1f s\n", seconds_since(started));
    return r;
  }
};

std::string fixed(double x, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, x);
  return buffer;
}

/// A few significant digits at any magnitude: 0.0295, 1.23, 550.
std::string significant(double x) {
  return fixed(x, x >= 100 ? 0 : x >= 1 ? 2 : 4);
}

std::string scientific(double x) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.2e", x);
  return buffer;
}

template <class T>
int run_demo(const Options& opt) {
  using Exec = Kokkos::DefaultExecutionSpace;
  const double tol = tolerance(opt.dtype);
  std::printf("trimix %s TriangleMix demo\n", TRIMIX_VERSION_STRING);
  std::printf("problem : batch %lld, q heads %lld, kv heads %lld, seq %lld, head dim %lld, %s\n",
              (long long)opt.batch, (long long)opt.q_heads, (long long)opt.kv_heads, (long long)opt.seq,
              (long long)opt.head_dim, trimix::element_name<T>());
  std::printf("backend : Kokkos %s, concurrency %d\n", Exec::name(), int(Exec().concurrency()));
  std::printf("timing  : best of up to %d runs per mask (fewer once they take %.0f s), planning timed "
              "apart\n",
              opt.repeat, repeat_budget_s);
  std::printf("check   : %lld sampled rows per mask against exact double-precision attention\n\n",
              (long long)std::min(opt.check_rows, opt.seq * opt.batch * opt.q_heads));
  std::fflush(stdout);

  std::fprintf(stderr, "generating inputs ...");
  std::fflush(stderr);
  const auto started = std::chrono::steady_clock::now();
  Demo<T> demo(opt);
  std::fprintf(stderr, " %.1f s\n", seconds_since(started));

  const std::string tri = "triangle(" + std::to_string(opt.sink) + "," + std::to_string(opt.window) +
                          "," + std::to_string(opt.last_rows) + ")";
  const std::string stream = "streaming(" + std::to_string(opt.sink) + "," + std::to_string(opt.window) + ")";
  std::vector<MaskReport> reports;
  reports.push_back(demo.run("causal", trimix::Causal{}));
  reports.push_back(demo.run(tri, trimix::Triangle{opt.sink, opt.window, opt.last_rows}));
  reports.push_back(demo.run(stream, trimix::Streaming{opt.sink, opt.window}));
  std::fprintf(stderr, "\n");
  const MaskReport& causal = reports.front();

  std::printf("Work per mask (pairs and tiles per batch and head; FLOPs = 4 * head_dim per visible pair)\n");
  std::printf("%-20s %15s %10s %19s %10s %10s\n", "mask", "visible pairs", "of causal",
              ("kv-tiles " + std::to_string(causal.q_tile) + "x" + std::to_string(causal.kv_tile)).c_str(),
              "GFLOP", "FLOP ratio");
  for (const MaskReport& r : reports) {
    std::printf("%-20s %15lld %9.2f%% %10lld (%5.1f%%) %10s %9.1fx\n", r.label.c_str(), (long long)r.pairs,
                100.0 * double(r.pairs) / double(causal.pairs), (long long)r.visited_tiles,
                100.0 * double(r.visited_tiles) / double(r.all_tiles), significant(r.flops * 1e-9).c_str(),
                causal.flops / r.flops);
  }

  std::printf("\nTimes (ms) and errors of O on the checked rows (tolerance %.0e absolute)\n", tol);
  std::printf("%-20s %9s %11s %5s %9s %9s %11s %10s  %s\n", "mask", "plan ms", "attn ms", "runs",
              "TFLOP/s", "speed-up", "max |err|", "rel err", "check");
  bool ok = true;
  for (const MaskReport& r : reports) {
    std::string error = "-", relative = "-", verdict = "skipped";
    if (r.checked) {
      const bool pass = r.check.max_abs_error <= tol;  // false for NaN/inf
      ok = ok && pass;
      error = scientific(r.check.max_abs_error);
      relative = scientific(r.check.max_abs_error / std::max(r.check.max_abs_exact, 1e-30));
      verdict = pass ? "ok" : "FAILED";
    }
    std::printf("%-20s %9s %11s %5d %9s %8sx %11s %10s  %s\n", r.label.c_str(), fixed(r.plan_ms, 2).c_str(),
                fixed(r.best_ms, 2).c_str(), r.runs, fixed(r.flops / (r.best_ms * 1e-3) * 1e-12, 3).c_str(),
                fixed(causal.best_ms / r.best_ms, 2).c_str(), error.c_str(), relative.c_str(),
                verdict.c_str());
  }
  std::printf("\nrel err = max |err| / max |exact O| over the checked rows.\n");
  if (!ok) std::printf("FAILED: an error exceeds the %s tolerance %.0e\n", opt.dtype.c_str(), tol);
  return ok ? 0 : 1;
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
    std::fprintf(stderr, "trianglemix_demo: %s\n", e.what());
    return 2;
  }
  // Only the --kokkos-* options go to Kokkos (Kokkos 3 also reads some options without the prefix).
  std::vector<char*> kokkos_args = {argv[0]};
  for (int a = 1; a < argc; ++a)
    if (std::string(argv[a]).rfind("--kokkos", 0) == 0) kokkos_args.push_back(argv[a]);
  int kokkos_argc = int(kokkos_args.size());
  kokkos_args.push_back(nullptr);
  Kokkos::ScopeGuard kokkos(kokkos_argc, kokkos_args.data());
  try {
    if (opt.dtype == "f32") return run_demo<float>(opt);
    if (opt.dtype == "f16") return run_demo<trimix::fp16>(opt);
    return run_demo<trimix::bf16>(opt);
  } catch (const std::invalid_argument& e) {  // trimix rejects the shapes (e.g. head dim)
    std::fprintf(stderr, "trianglemix_demo: %s\n", e.what());
    return 2;
  }
}
