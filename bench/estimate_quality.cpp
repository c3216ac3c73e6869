// Quality and cost of the dynamic-sparsity estimators (include/trimix/estimate.hpp): for each
// sequence length, input kind and estimator setting, how many causal blocks the map keeps, how much
// of the exact attention it keeps, and how far attention restricted to it is from dense causal.
//
//   estimate_quality [--seq 4096,8192] [--inputs planted,random] [--gammas 0.9,0.95]
//                    [--vs-sizes 1000:6096,256:256,128:128] [--rows 256] [--csv results.csv] ...
//
// Per (input, seq): Q, K, V drawn once; each estimator runs on Kokkos' default execution space
// (one untimed call, then --repeat timed calls, fenced; the median is reported). Quality is measured
// on the host in double over --rows sampled query rows per (batch, query head), against dense
// causal attention of the same (rounded) inputs:
//   density       kept blocks / causally visible blocks (block_sparse_density)
//   recall        the share of a row's exact softmax mass inside its kept blocks (mean and minimum
//                 over the sampled rows)
//   out_max_abs   max |o_kept - o_dense| over sampled rows and dims, where o_kept is attention
//                 renormalised over the kept keys (Causal & map), o_dense dense causal
//   out_rel_l2    ||o_kept - o_dense|| / ||o_dense|| over all sampled rows together
// Input kinds: random (unit normal Q/K/V: diffuse attention, a worst case for any estimator) and
// planted (Q/K with sinks, a local band, vertical columns and slash diagonals over noise; see
// fill_planted).
//
// CSV columns (appended; header written when the file is new):
//   device,commit,kokkos_backend,threads,dtype,input,estimator,setting,batch,q_heads,kv_heads,
//   head_dim,seq,rows_sampled,capacity,density,recall_mean,recall_min,out_max_abs,out_rel_l2,
//   estimate_ms

#include "bench_common.hpp"

#include <trimix/estimate.hpp>

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <random>
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
using trimix_bench::parse_double;

// ---- command line -------------------------------------------------------------------------------

struct VsSize {
  index_t vertical, slash;
};

struct Options {
  std::vector<index_t> seqs = {4096, 8192};
  std::vector<std::string> inputs = {"planted", "random"};
  std::vector<double> gammas = {0.9, 0.95};
  std::vector<VsSize> vs_sizes = {{1000, 6096}, {256, 256}, {128, 128}};
  std::string dtype = "bf16";
  index_t batch = 1, q_heads = 8, kv_heads = 2, head_dim = 128;
  index_t rows = 256;  ///< sampled query rows per (batch, query head)
  int repeat = 3;
  std::string csv;
  std::uint64_t seed = 2025;
};

void print_usage(const char* program) {
  std::printf(
      "Usage: %s [options]\n"
      "Density, attention recall and output error of the dynamic-sparsity estimators.\n\n"
      "  --seq LIST       sequence lengths (queries = keys)            [4096,8192]\n"
      "  --inputs LIST    planted,random                                 [planted,random]\n"
      "  --gammas LIST    mass targets of the pooled-block estimator     [0.9,0.95]\n"
      "  --vs-sizes LIST  vertical:slash sizes of the vertical-slash estimator (sink and local\n"
      "                   included)                        [1000:6096,256:256,128:128]\n"
      "  --dtype T        f32, bf16 or f16                               [bf16]\n"
      "  --batch B        [1]     --q-heads H   [8]    --kv-heads H  [2]    --head-dim D [128]\n"
      "  --rows N         query rows sampled per (batch, head) for the quality metrics [256]\n"
      "  --repeat N       timed estimator calls (median reported)        [3]\n"
      "  --csv PATH       append one row per case to PATH\n"
      "  --seed S         seed of the inputs and of the row sample       [2025]\n\n"
      "Environment: TRIMIX_DEVICE overrides the device name recorded in the CSV.\n",
      program);
}

bool parse_options(int argc, char* argv[], Options& opt) {
  for (int a = 1; a < argc; ++a) {
    std::string arg = argv[a], value;
    if (arg.rfind("--kokkos", 0) == 0) continue;
    if (arg == "--help" || arg == "-h") return false;
    trimix_bench::take_value(argc, argv, a, arg, value);
    if (arg == "--seq") {
      opt.seqs.clear();
      for (const auto& s : split_list(value)) opt.seqs.push_back(parse_int(arg, s, 1));
    } else if (arg == "--inputs") {
      opt.inputs = split_list(value);
      for (const auto& i : opt.inputs)
        if (i != "planted" && i != "random") throw std::invalid_argument("unknown input kind '" + i + "'");
    } else if (arg == "--gammas") {
      opt.gammas.clear();
      for (const auto& g : split_list(value)) opt.gammas.push_back(parse_double(arg, g));
    } else if (arg == "--vs-sizes") {
      opt.vs_sizes.clear();
      for (const auto& pair : split_list(value)) {
        const auto parts = split_list(pair, ':');
        if (parts.size() != 2) throw std::invalid_argument("--vs-sizes takes vertical:slash pairs, got " + pair);
        opt.vs_sizes.push_back({parse_int(arg, parts[0], 0), parse_int(arg, parts[1], 0)});
      }
    } else if (arg == "--dtype") {
      if (value != "f32" && value != "bf16" && value != "f16")
        throw std::invalid_argument("unknown dtype '" + value + "' (f32, bf16, f16)");
      opt.dtype = value;
    } else if (arg == "--batch") opt.batch = parse_int(arg, value, 1);
    else if (arg == "--q-heads") opt.q_heads = parse_int(arg, value, 1);
    else if (arg == "--kv-heads") opt.kv_heads = parse_int(arg, value, 1);
    else if (arg == "--head-dim") opt.head_dim = parse_int(arg, value, 1);
    else if (arg == "--rows") opt.rows = parse_int(arg, value, 1);
    else if (arg == "--repeat") opt.repeat = int(parse_int(arg, value, 1));
    else if (arg == "--csv") opt.csv = value;
    else if (arg == "--seed") opt.seed = std::uint64_t(parse_int(arg, value, 0));
    else throw std::invalid_argument("unknown option " + arg + " (see --help)");
  }
  if (opt.q_heads % opt.kv_heads != 0) throw std::invalid_argument("--q-heads must be a multiple of --kv-heads");
  return true;
}

/// TRIMIX_DEVICE, else the CPU model on host backends, else the backend's name.
std::string device_name() {
  using Memory = Kokkos::DefaultExecutionSpace::memory_space;
  const std::string cpu = trimix_bench::cpu_model_name();
  if (std::getenv("TRIMIX_DEVICE") || Kokkos::SpaceAccessibility<Kokkos::HostSpace, Memory>::accessible)
    if (!cpu.empty()) return cpu;
  return Kokkos::DefaultExecutionSpace::name();
}

// ---- inputs -------------------------------------------------------------------------------------

using HostView = Kokkos::View<double****, Kokkos::HostSpace>;  // exact values of the rounded inputs

struct Inputs {
  HostView q, k, v;  // (batch, heads, seq, dim)
};

/// Unit-normal Q, K, V.
Inputs random_inputs(const Options& opt, index_t seq, std::mt19937_64& rng) {
  Inputs in{HostView("q", opt.batch, opt.q_heads, seq, opt.head_dim), HostView("k", opt.batch, opt.kv_heads, seq, opt.head_dim),
            HostView("v", opt.batch, opt.kv_heads, seq, opt.head_dim)};
  std::normal_distribution<double> normal(0.0, 1.0);
  for (auto* view : {&in.q, &in.k, &in.v})
    for (std::size_t e = 0; e < view->span(); ++e) view->data()[e] = normal(rng);
  return in;
}

/// Q/K with planted attention structure, per kv-head group (head_dim >= 96):
/// - slash diagonals at offsets {0 (the local band)} + 4 random offsets: dims [0, 64) hold 32
///   rotary-like pairs with random frequencies, q_p = a (cos t_f p, sin t_f p) and
///   k_j = a sum_o (cos t_f (j + o), sin t_f (j + o)), so q.k peaks (logit about 9) at p - j = o;
/// - sinks (keys 0..3, logit about 8.5) and 16 random vertical columns (logit about 7): 8 dims of
///   a direction every query has (value 2) and those keys have;
/// - unit noise in the other dims. V unit normal.
Inputs planted_inputs(const Options& opt, index_t seq, std::mt19937_64& rng) {
  Inputs in = random_inputs(opt, seq, rng);
  const index_t freqs = 32, u_begin = 2 * freqs, u_dims = 8;
  if (opt.head_dim < u_begin + u_dims + 24) throw std::invalid_argument("planted inputs need --head-dim >= 96");
  const double scale = 1.0 / std::sqrt(double(opt.head_dim));
  const double a = std::sqrt(9.0 / (double(freqs) * scale));
  const double q_u = 2.0, sink_u = 8.5 / (scale * q_u * double(u_dims)), column_u = 7.0 / (scale * q_u * double(u_dims));
  std::uniform_real_distribution<double> uniform(0.2, 3.0);
  std::uniform_int_distribution<index_t> any_key(64, seq - 1);
  const index_t group = opt.q_heads / opt.kv_heads;
  for (index_t g = 0; g < opt.kv_heads; ++g) {
    std::vector<double> theta(freqs);
    for (auto& t : theta) t = uniform(rng);
    std::vector<index_t> offsets = {0}, columns;
    for (int i = 0; i < 4; ++i) offsets.push_back(any_key(rng));
    for (int i = 0; i < 16; ++i) columns.push_back(any_key(rng));
    for (index_t b = 0; b < opt.batch; ++b) {
      for (index_t h = g * group; h < (g + 1) * group; ++h)
        for (index_t i = 0; i < seq; ++i) {
          for (index_t f = 0; f < freqs; ++f) {
            in.q(b, h, i, 2 * f) = a * std::cos(theta[f] * double(i));
            in.q(b, h, i, 2 * f + 1) = a * std::sin(theta[f] * double(i));
          }
          for (index_t d = u_begin; d < u_begin + u_dims; ++d) in.q(b, h, i, d) = q_u;
        }
      for (index_t j = 0; j < seq; ++j) {
        for (index_t f = 0; f < freqs; ++f) {
          double c = 0, s = 0;
          for (index_t o : offsets) c += std::cos(theta[f] * double(j + o)), s += std::sin(theta[f] * double(j + o));
          in.k(b, g, j, 2 * f) = a * c;
          in.k(b, g, j, 2 * f + 1) = a * s;
        }
        const bool column = std::find(columns.begin(), columns.end(), j) != columns.end();
        for (index_t d = u_begin; d < u_begin + u_dims; ++d) in.k(b, g, j, d) = j < 4 ? sink_u : column ? column_u : 0.0;
      }
    }
  }
  return in;
}

/// Rounds the inputs to T (in place, so the host reference sees what the kernels see) and returns
/// the device copies of q and k.
template <class T>
std::pair<Kokkos::View<T****>, Kokkos::View<T****>> to_device(Inputs& in) {
  auto convert = [](HostView& view) {
    Kokkos::View<T****> device(view.label(), view.extent(0), view.extent(1), view.extent(2), view.extent(3));
    auto host = Kokkos::create_mirror_view(device);
    for (std::size_t e = 0; e < view.span(); ++e) {
      host.data()[e] = trimix::element_traits<T>::from_double(view.data()[e]);
      view.data()[e] = trimix::element_traits<T>::to_double(host.data()[e]);
    }
    Kokkos::deep_copy(device, host);
    return device;
  };
  for (std::size_t e = 0; e < in.v.span(); ++e)
    in.v.data()[e] = trimix::element_traits<T>::to_double(trimix::element_traits<T>::from_double(in.v.data()[e]));
  auto q = convert(in.q);
  auto k = convert(in.k);
  return {q, k};
}

// ---- quality ------------------------------------------------------------------------------------

struct Case {
  std::string estimator, setting;
  trimix::BlockSparseMap<Kokkos::HostSpace> map;
  double estimate_ms = 0;
};

struct Quality {
  double density = 0, recall_mean = 0, recall_min = 1, out_max_abs = 0, out_rel_l2 = 0;
};

/// Recall and output error of every case's map on sampled rows: per row the exact softmax in
/// double, summed per kv-block (mass and probability-weighted V), so each map costs one pass over
/// its blocks.
std::vector<Quality> measure(const Inputs& in, const std::vector<Case>& cases, index_t sampled_rows, std::uint64_t seed) {
  const index_t batch = index_t(in.q.extent(0)), q_heads = index_t(in.q.extent(1)), seq = index_t(in.q.extent(2));
  const index_t dim = index_t(in.q.extent(3)), group = q_heads / index_t(in.k.extent(1));
  const index_t block_k = cases.front().map.block_k();
  const index_t kv_blocks = (seq + block_k - 1) / block_k;
  const double scale = 1.0 / std::sqrt(double(dim));
  std::vector<Quality> quality(cases.size());
  std::vector<double> err2(cases.size(), 0.0), ref2(cases.size(), 0.0), recall_sum(cases.size(), 0.0);
  std::mt19937_64 rng(seed);
  std::vector<index_t> rows(seq);
  for (index_t i = 0; i < seq; ++i) rows[i] = i;
  const index_t n_rows = std::min(sampled_rows, seq);
  index_t measured = 0;
  for (const Case& c : cases)
    if (c.map.block_k() != block_k) throw std::logic_error("measure: every map needs the same block_k");
  std::vector<double> mass(n_rows * kv_blocks), weighted(n_rows * kv_blocks * dim);
  for (index_t b = 0; b < batch; ++b)
    for (index_t h = 0; h < q_heads; ++h) {
      std::shuffle(rows.begin(), rows.end(), rng);
      std::sort(rows.begin(), rows.begin() + n_rows);
      const index_t g = h / group;
      Kokkos::parallel_for(
          "estimate_quality::exact_rows", Kokkos::RangePolicy<Kokkos::DefaultHostExecutionSpace>(0, n_rows),
          [&](index_t r) {
            const index_t i = rows[r];  // seq_q = seq_k: position i
            std::vector<double> s(i + 1);
            double m = -INFINITY;
            for (index_t j = 0; j <= i; ++j) {
              double dot = 0;
              for (index_t d = 0; d < dim; ++d) dot += in.q(b, h, i, d) * in.k(b, g, j, d);
              s[j] = scale * dot;
              m = std::max(m, s[j]);
            }
            double l = 0;
            for (index_t j = 0; j <= i; ++j) l += (s[j] = std::exp(s[j] - m));
            double* row_mass = mass.data() + r * kv_blocks;
            double* row_out = weighted.data() + r * kv_blocks * dim;
            std::fill(row_mass, row_mass + kv_blocks, 0.0);
            std::fill(row_out, row_out + kv_blocks * dim, 0.0);
            for (index_t j = 0; j <= i; ++j) {
              const double p = s[j] / l;
              row_mass[j / block_k] += p;
              for (index_t d = 0; d < dim; ++d) row_out[j / block_k * dim + d] += p * in.v(b, g, j, d);
            }
          });
      Kokkos::fence();
      for (std::size_t c = 0; c < cases.size(); ++c) {
        const auto& map = cases[c].map;
        for (index_t r = 0; r < n_rows; ++r) {
          const index_t qb = rows[r] / map.block_q();
          double kept = 0;
          std::vector<double> o_kept(dim, 0.0), o_dense(dim, 0.0);
          for (index_t kb = 0; kb < kv_blocks; ++kb)
            for (index_t d = 0; d < dim; ++d) o_dense[d] += weighted[(r * kv_blocks + kb) * dim + d];
          for (index_t e = 0; e < map.counts()(b, h, qb); ++e) {
            const index_t kb = map.entries()(b, h, qb, e) >> 1;
            kept += mass[r * kv_blocks + kb];
            for (index_t d = 0; d < dim; ++d) o_kept[d] += weighted[(r * kv_blocks + kb) * dim + d];
          }
          Quality& q = quality[c];
          recall_sum[c] += kept;
          q.recall_min = std::min(q.recall_min, kept);
          for (index_t d = 0; d < dim; ++d) {
            const double o = kept > 0 ? o_kept[d] / kept : 0.0;
            q.out_max_abs = std::max(q.out_max_abs, std::abs(o - o_dense[d]));
            err2[c] += (o - o_dense[d]) * (o - o_dense[d]);
            ref2[c] += o_dense[d] * o_dense[d];
          }
        }
      }
      measured += n_rows;
    }
  for (std::size_t c = 0; c < cases.size(); ++c) {
    quality[c].density = trimix::block_sparse_density(cases[c].map);
    quality[c].recall_mean = recall_sum[c] / double(measured);
    quality[c].out_rel_l2 = ref2[c] > 0 ? std::sqrt(err2[c] / ref2[c]) : 0.0;
  }
  return quality;
}

// ---- runs ---------------------------------------------------------------------------------------

/// Median time of `repeat` fenced calls after one untimed call; the map of the last call.
template <class Estimate>
Case time_estimator(const std::string& estimator, const std::string& setting, int repeat, const Estimate& estimate) {
  using Clock = std::chrono::steady_clock;
  Kokkos::DefaultExecutionSpace exec;
  auto map = estimate(exec);
  exec.fence();
  std::vector<double> ms;
  for (int r = 0; r < repeat; ++r) {
    const auto start = Clock::now();
    map = estimate(exec);
    exec.fence();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  return Case{estimator, setting, trimix::mirror<Kokkos::HostSpace>(map), ms[ms.size() / 2]};
}

struct Context {
  std::string device, commit, backend;
  int threads = 0;
};

template <class T>
void run(const Options& opt, const Context& ctx, std::ofstream* csv) {
  std::printf("\n%-7s %-6s %-14s %-12s %8s %8s %8s %8s %10s %10s %11s\n", "input", "seq", "estimator", "setting",
              "capacity", "density", "recall", "min_rec", "out_maxabs", "out_relL2", "estimate_ms");
  for (const std::string& input : opt.inputs)
    for (index_t seq : opt.seqs) {
      std::mt19937_64 rng(opt.seed + std::uint64_t(seq));
      Inputs in = input == "planted" ? planted_inputs(opt, seq, rng) : random_inputs(opt, seq, rng);
      const auto [q, k] = to_device<T>(in);
      std::vector<Case> cases;
      for (const VsSize& size : opt.vs_sizes) {
        trimix::VerticalSlashOptions o;
        o.vertical_size = size.vertical;
        o.slash_size = size.slash;
        cases.push_back(time_estimator("vertical_slash", std::to_string(size.vertical) + ":" + std::to_string(size.slash),
                                       opt.repeat, [&, q = q, k = k](const auto& exec) {
                                         return trimix::estimate_vertical_slash(exec, q, k, o);
                                       }));
      }
      for (double gamma : opt.gammas) {
        trimix::PooledBlockOptions o;
        o.gamma = gamma;
        std::ostringstream setting;
        setting << "gamma=" << gamma;
        cases.push_back(time_estimator("pooled_blocks", setting.str(), opt.repeat, [&, q = q, k = k](const auto& exec) {
          return trimix::estimate_pooled_blocks(exec, q, k, o);
        }));
      }
      const std::vector<Quality> quality = measure(in, cases, opt.rows, opt.seed ^ 0x5eedu);
      for (std::size_t c = 0; c < cases.size(); ++c) {
        const Quality& qy = quality[c];
        std::printf("%-7s %-6lld %-14s %-12s %8lld %8.4f %8.4f %8.4f %10.2e %10.2e %11.2f\n", input.c_str(), (long long)seq,
                    cases[c].estimator.c_str(), cases[c].setting.c_str(), (long long)cases[c].map.capacity(), qy.density,
                    qy.recall_mean, qy.recall_min, qy.out_max_abs, qy.out_rel_l2, cases[c].estimate_ms);
        if (csv)
          *csv << trimix_bench::csv_field(ctx.device) << ',' << ctx.commit << ',' << ctx.backend << ',' << ctx.threads
               << ',' << opt.dtype << ',' << input << ',' << cases[c].estimator << ',' << cases[c].setting << ','
               << opt.batch << ',' << opt.q_heads << ',' << opt.kv_heads << ',' << opt.head_dim << ',' << seq << ','
               << std::min(opt.rows, seq) << ',' << cases[c].map.capacity() << ',' << qy.density << ','
               << qy.recall_mean << ',' << qy.recall_min << ',' << qy.out_max_abs << ',' << qy.out_rel_l2 << ','
               << cases[c].estimate_ms << std::endl;
      }
      std::fflush(stdout);
    }
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
    std::fprintf(stderr, "estimate_quality: %s\n", e.what());
    return 2;
  }
  Kokkos::ScopeGuard kokkos(argc, argv);
  Context ctx{device_name(), TRIMIX_GIT_COMMIT, Kokkos::DefaultExecutionSpace::name(),
              int(Kokkos::DefaultExecutionSpace().concurrency())};
  std::printf("estimate_quality: %s, commit %s, Kokkos %s with %d threads\n", ctx.device.c_str(), ctx.commit.c_str(),
              ctx.backend.c_str(), ctx.threads);
  std::printf("dtype %s, batch %lld, q heads %lld, kv heads %lld, head dim %lld; %lld sampled rows per head; "
              "estimate_ms: median of %d\n",
              opt.dtype.c_str(), (long long)opt.batch, (long long)opt.q_heads, (long long)opt.kv_heads,
              (long long)opt.head_dim, (long long)opt.rows, opt.repeat);
  std::ofstream csv;
  if (!opt.csv.empty()) {
    const bool fresh = trimix_bench::file_is_empty(opt.csv);
    csv.open(opt.csv, std::ios::app);
    if (!csv) {
      std::fprintf(stderr, "estimate_quality: cannot write %s\n", opt.csv.c_str());
      return 1;
    }
    if (fresh)
      csv << "device,commit,kokkos_backend,threads,dtype,input,estimator,setting,batch,q_heads,kv_heads,head_dim,seq,"
             "rows_sampled,capacity,density,recall_mean,recall_min,out_max_abs,out_rel_l2,estimate_ms"
          << std::endl;
  }
  try {
    if (opt.dtype == "f32") run<float>(opt, ctx, csv.is_open() ? &csv : nullptr);
    else if (opt.dtype == "bf16") run<trimix::bf16>(opt, ctx, csv.is_open() ? &csv : nullptr);
    else run<trimix::fp16>(opt, ctx, csv.is_open() ? &csv : nullptr);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "estimate_quality: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "estimate_quality: %s\n", e.what());
    return 1;
  }
  return 0;
}
