// Host tool (bench/NOTES.md, fortieth session): how many item pairs (2j, 2j + 1) of a pair-kernel plan
// read the same K / V tiles, i.e. what a two-CTA multicast (bench/experiments/kv_multicast_s40.patch)
// could share, and of those how many also fold their sink keys into the same tile (the test of the
// pair kernels up to s42-mcp; forty-third session: the triangle's band pairs fold apart). Build against the OpenMP Kokkos of scripts/install-deps.sh:
//   K=~/.cache/trimix/kokkos-3.4.01-openmp; g++ -O2 -std=c++17 -fopenmp -Iinclude -I$K/include \
//     bench/experiments/plan_pairs.cpp -L$K/lib -L$K/lib64 -lkokkoscore -ldl -o plan_pairs && ./plan_pairs
#include <trimix/kernel.hpp>
#include <trimix/mask.hpp>
#include <trimix/plan.hpp>
#include <cstdio>
using trimix::index_t;
template <class Mask>
void count(const char* name, const Mask& mask, index_t seq) {
  trimix::impl::Problem pr; pr.batch = 1; pr.q_heads = 32; pr.kv_heads = 8; pr.seq_q = pr.seq_k = seq; pr.head_dim = 128;
  trimix::TileShape shape{32, 64, 4, 2048, 132};
  const auto plan = trimix::make_plan(Kokkos::DefaultHostExecutionSpace(), pr, mask, shape, trimix::AttentionOptions{});
  auto items = plan.items; auto runs = plan.runs;
  index_t n = items.extent(0), same = 0, same_with_fold = 0, folds_differ = 0, tiles_same = 0, tiles_all = 0;
  for (index_t j = 0; 2 * j + 1 < n; ++j) {
    const auto &a = items(2*j), &b = items(2*j+1); const auto &ra = runs(2*j), &rb = runs(2*j+1);
    bool s = a.batch == b.batch && a.kv_head == b.kv_head && ra.count == rb.count && ra.count >= 0;
    for (int i = 0; s && i < ra.count; ++i) s = ra.begin[i] == rb.begin[i] && ra.end[i] == rb.end[i];
    // The pair kernel's own test (s42-mcp's take) also asks for the same sink-fold tile: 64-key
    // tiles, fold_rows = the sink rounded up to 8 (engine_cuda.hpp), as ws_take_item computes it.
    if constexpr (trimix::impl::has_sink_window<Mask>::value) {
      auto fold_of = [&](const trimix::WorkItem& it, const trimix::ItemRuns& r) {
        const auto f = trimix::sink_fold(mask.sink_window(), plan.geometry.first_position(it.q_tile),
                                         plan.geometry.last_position(it.q_tile), 64, seq, (mask.sink_window().sink + 7) / 8 * 8);
        return f.tile >= 0 && trimix::runs_hold_sink_fold(r, f.tile) ? f.tile : index_t(-1);
      };
      const bool fold_same = fold_of(a, ra) == fold_of(b, rb);
      folds_differ += s && !fold_same;
      if (s && fold_same) ++same_with_fold;
    } else if (s) {
      ++same_with_fold;
    }
    same += s; tiles_all += (a.tile_end - a.tile_begin) + (b.tile_end - b.tile_begin);
    if (s) tiles_same += 2 * (a.tile_end - a.tile_begin);
  }
  std::printf("%s N=%ld items=%ld pairs=%ld same tiles=%ld (tiles in them %.3f), also the same sink fold=%ld, folds differ=%ld\n",
              name, long(seq), long(n), long(n / 2), long(same), double(tiles_same) / tiles_all, long(same_with_fold), long(folds_differ));
}
int main(int argc, char** argv) {
  Kokkos::ScopeGuard guard(argc, argv);
  for (index_t seq : {16384, 65536, 131072}) {
    count("causal", trimix::Causal{}, seq);
    count("triangle", trimix::Triangle{8, 512, 128}, seq);
    count("streaming", trimix::Streaming{8, 512}, seq);
  }
}
