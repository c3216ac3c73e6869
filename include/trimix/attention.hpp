#pragma once
/// \file attention.hpp
/// The public entry points: trimix::attention (plan + kernel + combine in one call) and
/// trimix::plan_attention for callers that run the same shapes and mask many times.

#include <trimix/combine.hpp>
#include <trimix/engine.hpp>
#include <trimix/kernel.hpp>
#include <trimix/mask.hpp>
#include <trimix/plan.hpp>
#include <trimix/problem.hpp>

#include <string>

namespace trimix {

/// Work list, split workspace and launch shape of one (problem shape, mask) pair on an execution
/// space. Reusable for any tensors of the same shapes and layout.
template <class ExecSpace, class Mask>
struct AttentionPlan {
  using memory_space = typename ExecSpace::memory_space;
  Mask mask;
  impl::Problem problem;                     ///< shapes the plan was made for
  Plan<memory_space> work;                   ///< work items and split groups
  Kokkos::View<float*, memory_space> partial_o, partial_lse;  ///< split-KV workspace
  /// Two words, zero between calls: backend engines that hand out work items at run time count
  /// with them (engine.hpp). Like the workspace above, a plan serves one call at a time.
  Kokkos::View<std::uint32_t*, memory_space> item_counter;
  /// Whether the plan was made for a backend tile engine (engine.hpp) rather than the portable one.
  bool backend_engine = false;
  /// Launch shape of the portable engine (defaults from portable_engine_traits<ExecSpace>).
  int team_size = portable_engine_traits<ExecSpace>::team_size;
  int vector_length = portable_engine_traits<ExecSpace>::vector_length;
};

namespace impl {

/// Head dims the engines handle: multiples of the micro-tile width, up to 256.
inline bool supported_head_dim(index_t dim) {
  return dim > 0 && dim <= 256 && dim % portable_min_lane_block == 0;
}

template <class ExecSpace, class Q, class K, class V, class O, class Lse>
constexpr bool check_attention_views() {
  static_assert(check_view_types<Q, K, V, O>());
  using Exec = ExecSpace;
  static_assert(Kokkos::SpaceAccessibility<Exec, typename Q::memory_space>::accessible,
                "trimix::attention: q is not accessible from the execution space");
  static_assert(Kokkos::SpaceAccessibility<Exec, typename K::memory_space>::accessible,
                "trimix::attention: k is not accessible from the execution space");
  static_assert(Kokkos::SpaceAccessibility<Exec, typename V::memory_space>::accessible,
                "trimix::attention: v is not accessible from the execution space");
  static_assert(Kokkos::SpaceAccessibility<Exec, typename O::memory_space>::accessible,
                "trimix::attention: o is not accessible from the execution space");
  if constexpr (Kokkos::is_view<Lse>::value) {
    static_assert(Lse::rank == 3, "trimix::attention: lse must be rank 3 (batch, q_heads, seq_q)");
    static_assert(std::is_same_v<typename Lse::value_type, float>,
                  "trimix::attention: lse must hold float");
    static_assert(Kokkos::SpaceAccessibility<Exec, typename Lse::memory_space>::accessible,
                  "trimix::attention: lse is not accessible from the execution space");
  }
  return true;
}

/// Kokkos Tools region for the duration of a call.
struct ProfilingRegion {
  explicit ProfilingRegion(const std::string& name) { Kokkos::Profiling::pushRegion(name); }
  ~ProfilingRegion() { Kokkos::Profiling::popRegion(); }
  ProfilingRegion(const ProfilingRegion&) = delete;
  ProfilingRegion& operator=(const ProfilingRegion&) = delete;
};

struct NoLse {};

template <class ExecSpace, class Q, class K, class V, class O>
using engine_for = tile_engine<ExecSpace, typename Q::non_const_value_type, typename K::non_const_value_type,
                               typename V::non_const_value_type, typename O::non_const_value_type>;

/// Whether the engine chooses its tiles by mask type too (`shape(problem, mask)`).
template <class Engine, class Mask, class = void>
struct engine_shapes_by_mask : std::false_type {};
template <class Engine, class Mask>
struct engine_shapes_by_mask<
    Engine, Mask, std::void_t<decltype(Engine::shape(std::declval<const Problem&>(), std::declval<const Mask&>()))>>
    : std::true_type {};

template <class Engine, class ExecSpace, class Mask>
AttentionPlan<ExecSpace, Mask> plan_for_problem(const ExecSpace& exec, const Problem& problem,
                                                const Mask& mask, const AttentionOptions& options) {
  TRIMIX_REQUIRE("attention", supported_head_dim(problem.head_dim), "head_dim ", problem.head_dim,
                 " is not supported (multiples of ", portable_min_lane_block, " up to 256)");
  using Traits = portable_engine_traits<ExecSpace>;
  AttentionPlan<ExecSpace, Mask> plan;
  plan.mask = mask;
  plan.problem = problem;
  TileShape shape{Traits::q_rows, Traits::kv_tile, Traits::max_heads_per_item};
  // The canonical policy plans (the same tiles, and what the kernels of run_attention expect).
  const auto run_mask = canonical(mask);
  if constexpr (Engine::available) {
    if (Engine::handles_shape(problem)) {
      // One head per item when the heads of a group have different masks (plan.hpp).
      Problem packing = problem;
      if (!uniform_within_group(mask, problem.q_heads, problem.kv_heads)) packing.kv_heads = problem.q_heads;
      if constexpr (engine_shapes_by_mask<Engine, std::remove_const_t<decltype(run_mask)>>::value)
        shape = Engine::shape(packing, run_mask);
      else shape = Engine::shape(packing);
      plan.backend_engine = true;
    }
  }
  plan.work = make_plan(exec, problem, run_mask, shape, options);
  const index_t slots = plan.work.split_slots, rows = plan.work.rows_per_item;
  plan.partial_o = Kokkos::View<float*, typename ExecSpace::memory_space>(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "trimix::partial_o"),
      std::size_t(slots * rows * problem.head_dim));
  plan.partial_lse = Kokkos::View<float*, typename ExecSpace::memory_space>(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "trimix::partial_lse"), std::size_t(slots * rows));
  plan.item_counter = Kokkos::View<std::uint32_t*, typename ExecSpace::memory_space>("trimix::item_counter", 2);
  return plan;
}

template <class ExecSpace, class Mask, class Q, class K, class V, class O, class Lse>
void run_attention(const ExecSpace& exec, const AttentionPlan<ExecSpace, Mask>& plan, const Problem& problem,
                   const Q& q, const K& k, const V& v, const O& o, const Lse* lse) {
  const Problem& made_for = plan.problem;
  TRIMIX_REQUIRE("attention",
                 made_for.batch == problem.batch && made_for.q_heads == problem.q_heads &&
                     made_for.kv_heads == problem.kv_heads && made_for.seq_q == problem.seq_q &&
                     made_for.seq_k == problem.seq_k && made_for.head_dim == problem.head_dim,
                 "plan was made for (batch ", made_for.batch, ", q_heads ", made_for.q_heads,
                 ", kv_heads ", made_for.kv_heads, ", seq_q ", made_for.seq_q, ", seq_k ",
                 made_for.seq_k, ", head_dim ", made_for.head_dim, "), not for q ", describe_view(q),
                 " and k ", describe_view(k));
  TRIMIX_REQUIRE("attention", plan.team_size > 0 && plan.vector_length > 0,
                 "plan.team_size and plan.vector_length must be positive");
  using TQ = typename Q::non_const_value_type;
  using TK = typename K::non_const_value_type;
  using TV = typename V::non_const_value_type;
  using TO = typename O::non_const_value_type;
  const std::string name = mask_name(plan.mask);
  // A composition that spells out a built-in policy runs as that policy (mask.hpp, canonical).
  const auto run_mask = canonical(plan.mask);
  using RunMask = std::remove_const_t<decltype(run_mask)>;
  ProfilingRegion region("trimix::attention[" + name + "]");
  if (plan.work.item_count() == 0) return;

  AttentionArgs<TQ, TK, TV, TO> args;
  args.q = q.data();
  args.k = k.data();
  args.v = v.data();
  args.o = o.data();
  if constexpr (Kokkos::is_view<Lse>::value) args.lse = lse ? lse->data() : nullptr;
  args.problem = problem;
  const index_t rows = plan.work.rows_per_item, dim = problem.head_dim;

  using Engine = tile_engine<ExecSpace, TQ, TK, TV, TO>;
  bool launched = false;
  if constexpr (Engine::available) {
    if (plan.backend_engine && Engine::handles_views(problem, args.q, args.k, args.v, args.o)) {
      Engine::run(exec, plan.work, run_mask, args, plan.partial_o.data(), plan.partial_lse.data(),
                  plan.item_counter.data());
      launched = true;
    }
  }
  if (!launched) {
    using Kernel = AttentionKernel<ExecSpace, RunMask, TQ, TK, TV, TO>;
    Kernel kernel{args, run_mask, plan.work.geometry, plan.work.heads_per_item, rows, dim,
                  plan.work.items, plan.work.runs, plan.partial_o.data(), plan.partial_lse.data(), 0};
    using Policy = Kokkos::TeamPolicy<ExecSpace, Kokkos::Schedule<Kokkos::Dynamic>>;
    const index_t bytes = Kernel::scratch_bytes(rows, dim, plan.work.geometry.kv_tile);
    kernel.scratch_level = bytes <= index_t(Policy::scratch_size_max(0)) ? 0 : 1;
    Kokkos::parallel_for("trimix::attention[" + name + "]",
                         Policy(exec, int(plan.work.item_count()), plan.team_size, plan.vector_length)
                             .set_scratch_size(kernel.scratch_level, Kokkos::PerTeam(std::size_t(bytes))),
                         kernel);
  }
  if (plan.work.group_count() > 0) {
    CombineKernel<ExecSpace, TQ, TK, TV, TO> combine{args, plan.work.geometry, plan.work.heads_per_item,
                                                     rows, dim, plan.work.groups,
                                                     plan.partial_o.data(), plan.partial_lse.data()};
    Kokkos::parallel_for("trimix::combine[" + name + "]", combine.policy(exec, plan.work.group_count()), combine);
  }
}

}  // namespace impl

/// Builds the reusable plan of trimix::attention for these shapes, mask and options.
/// Views as in trimix::attention; only their shapes are read.
template <class ExecSpace, class Q, class K, class V, class O, class Mask>
AttentionPlan<ExecSpace, Mask> plan_attention(const ExecSpace& exec, const Q& q, const K& k, const V& v,
                                              const O& o, const Mask& mask,
                                              const AttentionOptions& options = {}) {
  static_assert(impl::check_attention_views<ExecSpace, Q, K, V, O, impl::NoLse>());
  static_assert(check_mask_policy<Mask>());
  const impl::Problem problem = impl::describe_problem(
      "plan_attention", q, k, v, o, static_cast<const impl::NoLse*>(nullptr), options);
  return impl::plan_for_problem<impl::engine_for<ExecSpace, Q, K, V, O>>(exec, problem, mask, options);
}

/// Attention with a plan from plan_attention: O = softmax(scale * Q K^T + mask) V.
///
/// \param exec execution space instance the kernels run on (asynchronously; fence to wait)
/// \param plan from plan_attention for the same shapes
/// \param q    (batch, q_heads, seq_q, head_dim), or (batch, seq_q, q_heads, head_dim) with Layout::bshd
/// \param k    (batch, kv_heads, seq_k, head_dim), likewise; q_heads % kv_heads == 0 (GQA/MQA)
/// \param v    like k
/// \param o    like q; written
/// \param lse  (batch, q_heads, seq_q) float, natural-log sum of exp of the scaled scores; written
/// Queries are the last seq_q of seq_k positions (bottom-right aligned). A row that sees no key
/// gets o = 0 and lse = -inf. Throws std::invalid_argument before launching anything when an
/// argument is wrong; the outputs are then untouched.
template <class ExecSpace, class Mask, class Q, class K, class V, class O, class Lse>
void attention(const ExecSpace& exec, const AttentionPlan<ExecSpace, Mask>& plan, const Q& q,
               const K& k, const V& v, const O& o, const Lse& lse) {
  static_assert(impl::check_attention_views<ExecSpace, Q, K, V, O, Lse>());
  AttentionOptions options;
  options.layout = plan.problem.layout;
  options.scale = plan.problem.scale;
  const impl::Problem problem = impl::describe_problem("attention", q, k, v, o, &lse, options);
  impl::run_attention(exec, plan, problem, q, k, v, o, &lse);
}

/// As above, without LSE.
template <class ExecSpace, class Mask, class Q, class K, class V, class O>
void attention(const ExecSpace& exec, const AttentionPlan<ExecSpace, Mask>& plan, const Q& q,
               const K& k, const V& v, const O& o) {
  static_assert(impl::check_attention_views<ExecSpace, Q, K, V, O, impl::NoLse>());
  AttentionOptions options;
  options.layout = plan.problem.layout;
  options.scale = plan.problem.scale;
  const impl::Problem problem = impl::describe_problem(
      "attention", q, k, v, o, static_cast<const impl::NoLse*>(nullptr), options);
  impl::run_attention(exec, plan, problem, q, k, v, o, static_cast<const impl::NoLse*>(nullptr));
}

/// One-shot attention: plans, runs and (for split rows) combines. See the overload with a plan
/// for the arguments; `mask` is any mask policy (trimix::Triangle{}, Causal{} & Window{512}, ...).
template <class ExecSpace, class Q, class K, class V, class O, class Lse, class Mask,
          class = std::enable_if_t<Kokkos::is_execution_space<ExecSpace>::value &&
                                   Kokkos::is_view<Q>::value && Kokkos::is_view<Lse>::value>>
void attention(const ExecSpace& exec, const Q& q, const K& k, const V& v, const O& o, const Lse& lse,
               const Mask& mask, const AttentionOptions& options = {}) {
  static_assert(impl::check_attention_views<ExecSpace, Q, K, V, O, Lse>());
  static_assert(check_mask_policy<Mask>());
  const impl::Problem problem = impl::describe_problem("attention", q, k, v, o, &lse, options);
  const auto plan = impl::plan_for_problem<impl::engine_for<ExecSpace, Q, K, V, O>>(exec, problem, mask, options);
  impl::run_attention(exec, plan, problem, q, k, v, o, &lse);
}

/// One-shot attention without LSE.
template <class ExecSpace, class Q, class K, class V, class O, class Mask,
          class = std::enable_if_t<Kokkos::is_execution_space<ExecSpace>::value &&
                                   Kokkos::is_view<Q>::value && !Kokkos::is_view<Mask>::value>>
void attention(const ExecSpace& exec, const Q& q, const K& k, const V& v, const O& o, const Mask& mask,
               const AttentionOptions& options = {}) {
  static_assert(impl::check_attention_views<ExecSpace, Q, K, V, O, impl::NoLse>());
  static_assert(check_mask_policy<Mask>());
  const impl::Problem problem = impl::describe_problem(
      "attention", q, k, v, o, static_cast<const impl::NoLse*>(nullptr), options);
  const auto plan = impl::plan_for_problem<impl::engine_for<ExecSpace, Q, K, V, O>>(exec, problem, mask, options);
  impl::run_attention(exec, plan, problem, q, k, v, o, static_cast<const impl::NoLse*>(nullptr));
}

}  // namespace trimix
