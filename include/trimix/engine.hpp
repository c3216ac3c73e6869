#pragma once
/// \file engine.hpp
/// Tile-engine selection. The algorithm (plan, tile walk, online softmax, combine) is shared; a
/// backend may provide a faster engine for some element types and head dims by specialising
/// tile_engine. The primary template means: only the portable engine (engine_portable.hpp).
///
/// A specialisation provides
///   static constexpr bool available = true;
///   static bool handles_shape(const Problem&);                 // head dims, group sizes
///   static bool handles_views(const Problem&, const void* q, const void* k, const void* v,
///                             const void* o);                  // strides, alignment
///   static TileShape shape(const Problem&);                    // the tiles its plan uses, or
///   template <class Mask> static TileShape shape(const Problem&, const Mask&);  // by mask type too
///   template <class Mask> static void run(const ExecSpace&, const Plan<...>&, const Mask&,
///                                         const AttentionArgs<...>&, float* partial_o,
///                                         float* partial_lse,
///                                         std::uint32_t* item_counter);  // launch, asynchronously
/// item_counter: two words of the plan, zero between calls, for engines that hand out work items
/// at run time (an engine that uses them leaves them zero when its launch ends).
/// Backend-specific code lives only in the engine headers included below.

#include <trimix/kernel.hpp>
#include <trimix/plan.hpp>

namespace trimix::impl {

template <class ExecSpace, class TQ, class TK, class TV, class TO, class = void>
struct tile_engine {
  static constexpr bool available = false;
};

}  // namespace trimix::impl

#include <trimix/engine_cuda.hpp>
#include <trimix/engine_host_amx.hpp>
