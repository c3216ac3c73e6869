#pragma once
/// \file schedule.hpp
/// Which attention each layer of a model uses (DESIGN.md sections 2 and 4).
///
/// TriangleMix keeps dense attention in shallow layers and switches deep layers to the static
/// Triangle pattern; its best time-to-first-token comes from also making the shallow layers
/// dynamically sparse (MInference's vertical-slash, or FlexPrefill-style pooled block selection).
/// A Schedule says, per layer index, one of those four; `layer_attention` runs a layer under it
/// (for the dynamic kinds: estimate the block-sparse mask from Q and K, then attend under
/// `Causal & mask`).
///
///   auto schedule = trimix::Schedule::trianglemix(32, 16);                // Llama-3.1-8B split
///   auto ranked = trimix::Schedule::from_ranking(32, ranking, 16, trimix::LayerKind::vertical_slash);
///   trimix::layer_attention(exec, schedule, layer, q, k, v, o);

#include <trimix/attention.hpp>
#include <trimix/block_sparse.hpp>
#include <trimix/estimate.hpp>
#include <trimix/mask.hpp>

#include <string>
#include <utility>
#include <vector>

namespace trimix {

/// The attention of one layer.
enum class LayerKind {
  dense,           ///< Causal
  triangle,        ///< the schedule's Triangle (static sparsity)
  vertical_slash,  ///< Causal & estimate_vertical_slash(q, k) (MInference)
  pooled_blocks,   ///< Causal & estimate_pooled_blocks(q, k) (FlexPrefill / XAttention style)
};

inline const char* to_string(LayerKind kind) {
  switch (kind) {
    case LayerKind::dense: return "dense";
    case LayerKind::triangle: return "triangle";
    case LayerKind::vertical_slash: return "vertical_slash";
    case LayerKind::pooled_blocks: return "pooled_blocks";
  }
  return "?";
}

/// Layer index -> LayerKind, with the parameters of the static and dynamic patterns.
class Schedule {
 public:
  Triangle triangle{};                  ///< pattern of LayerKind::triangle layers
  VerticalSlashOptions vertical_slash{};  ///< estimator of LayerKind::vertical_slash layers
  PooledBlockOptions pooled_blocks{};     ///< estimator of LayerKind::pooled_blocks layers

  Schedule() = default;
  /// One kind per layer, in layer order.
  explicit Schedule(std::vector<LayerKind> kinds) : m_kinds(std::move(kinds)) {}

  /// TriangleMix's split: layers [0, shallow_layers) use `shallow` (dense, or a dynamic
  /// estimator), layers [shallow_layers, layers) Triangle.
  static Schedule trianglemix(index_t layers, index_t shallow_layers, LayerKind shallow = LayerKind::dense) {
    TRIMIX_REQUIRE("Schedule::trianglemix", layers >= 0 && shallow_layers >= 0 && shallow_layers <= layers,
                   "shallow_layers must be in [0, layers = ", layers, "], got ", shallow_layers);
    TRIMIX_REQUIRE("Schedule::trianglemix", shallow != LayerKind::triangle,
                   "shallow must be dense or a dynamic kind, not triangle");
    std::vector<LayerKind> kinds(std::size_t(layers), LayerKind::triangle);
    for (index_t l = 0; l < shallow_layers; ++l) kinds[std::size_t(l)] = shallow;
    return Schedule(std::move(kinds));
  }

  /// Per-layer lists from a ranking (e.g. TriangleMix's gradient ranking, most prunable first):
  /// the first `triangle_layers` layers of `most_prunable_first` use Triangle, every other layer
  /// `others`. The ranking must name each layer of [0, layers) once.
  static Schedule from_ranking(index_t layers, const std::vector<index_t>& most_prunable_first,
                               index_t triangle_layers, LayerKind others = LayerKind::dense) {
    TRIMIX_REQUIRE("Schedule::from_ranking", index_t(most_prunable_first.size()) == layers,
                   "the ranking names ", most_prunable_first.size(), " layers, expected ", layers);
    TRIMIX_REQUIRE("Schedule::from_ranking", triangle_layers >= 0 && triangle_layers <= layers,
                   "triangle_layers must be in [0, ", layers, "], got ", triangle_layers);
    std::vector<LayerKind> kinds(std::size_t(layers), others);
    std::vector<bool> named(std::size_t(layers), false);
    for (std::size_t r = 0; r < most_prunable_first.size(); ++r) {
      const index_t layer = most_prunable_first[r];
      TRIMIX_REQUIRE("Schedule::from_ranking", layer >= 0 && layer < layers && !named[std::size_t(layer)],
                     "ranking entry ", r, " (layer ", layer, ") is out of range or repeated");
      named[std::size_t(layer)] = true;
      if (index_t(r) < triangle_layers) kinds[std::size_t(layer)] = LayerKind::triangle;
    }
    return Schedule(std::move(kinds));
  }

  index_t layers() const { return index_t(m_kinds.size()); }
  LayerKind kind(index_t layer) const {
    TRIMIX_REQUIRE("Schedule::kind", layer >= 0 && layer < layers(), "layer ", layer,
                   " is out of range [0, ", layers(), ")");
    return m_kinds[std::size_t(layer)];
  }
  /// One letter per layer: D dense, T triangle, V vertical-slash, P pooled blocks.
  std::string describe() const {
    std::string text;
    for (LayerKind k : m_kinds)
      text += k == LayerKind::dense ? 'D' : k == LayerKind::triangle ? 'T' : k == LayerKind::vertical_slash ? 'V' : 'P';
    return text;
  }

 private:
  std::vector<LayerKind> m_kinds;
};

/// Attention of layer `layer` under `schedule`, arguments as trimix::attention. Dynamic layers
/// estimate their mask from these q and k first, with the call's layout and scale (its memory
/// lives until the call returns; the call fences `exec` before releasing it); a prompt shorter
/// than the vertical-slash estimator's `last_q` uses all its queries. Returns the layer's kind.
template <class ExecSpace, class Q, class K, class V, class O>
LayerKind layer_attention(const ExecSpace& exec, const Schedule& schedule, index_t layer, const Q& q, const K& k,
                          const V& v, const O& o, const AttentionOptions& options = {}) {
  const LayerKind kind = schedule.kind(layer);
  switch (kind) {
    case LayerKind::dense: attention(exec, q, k, v, o, Causal{}, options); break;
    case LayerKind::triangle: attention(exec, q, k, v, o, schedule.triangle, options); break;
    case LayerKind::vertical_slash: {
      VerticalSlashOptions estimate = schedule.vertical_slash;
      estimate.layout = options.layout;
      estimate.scale = options.scale;
      const index_t seq_q = index_t(q.extent(options.layout == Layout::bhsd ? 2 : 1));
      if (seq_q > 0 && estimate.last_q > seq_q) estimate.last_q = seq_q;
      const auto map = estimate_vertical_slash(exec, q, k, estimate);
      attention(exec, q, k, v, o, Causal{} & map.policy(), options);
      exec.fence();  // the map dies with this scope
      break;
    }
    case LayerKind::pooled_blocks: {
      PooledBlockOptions estimate = schedule.pooled_blocks;
      estimate.layout = options.layout;
      estimate.scale = options.scale;
      const auto map = estimate_pooled_blocks(exec, q, k, estimate);
      attention(exec, q, k, v, o, Causal{} & map.policy(), options);
      exec.fence();
      break;
    }
  }
  return kind;
}

}  // namespace trimix
