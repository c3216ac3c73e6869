// C entry points over trimix::attention for Python's ctypes, so that bench/compare_gpu.py can time
// trimix in the peers' own process: on the same torch tensors, on a stream it passes, and by
// the same triton.testing.do_bench (CUDA events, the L2 cleared before every call) as SDPA and
// FlexAttention. attention_bench, which compare_gpu.py also runs, times each call by the host's
// clock around the launch and a fence instead. Built as a shared library (TRIMIX_BUILD_CTYPES),
// which needs a Kokkos built as shared libraries (or with position-independent code).
//
//   lib = ctypes.CDLL("libtrimix_ctypes.so"); lib.trimix_ctypes_init()
//   lib.trimix_ctypes_attention_bf16(b"triangle", q.data_ptr(), k.data_ptr(), v.data_ptr(),
//       o.data_ptr(), B, Hq, Hkv, N, D, sink, window, last_rows, torch.cuda.current_stream().cuda_stream)
//
// Tensors are contiguous bf16 (B, H, N, D) in the memory of Kokkos' default execution space. Every
// entry point returns 0, or -1 with the reason in trimix_ctypes_error(); nothing throws across the C
// boundary. A plan is made once per (mask, shape) and kept; an execution-space instance once per
// stream. Calls must not overlap on two streams: they would share the plan's work counter.

#include <trimix/trimix.hpp>

#include <Kokkos_Core.hpp>

#include <array>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace {

using Exec = Kokkos::DefaultExecutionSpace;
using Element = trimix::bf16;
using Unmanaged = Kokkos::MemoryTraits<Kokkos::Unmanaged>;
using ConstView4 = Kokkos::View<const Element****, Kokkos::LayoutRight, Exec::memory_space, Unmanaged>;
using View4 = Kokkos::View<Element****, Kokkos::LayoutRight, Exec::memory_space, Unmanaged>;

std::string last_error;
bool initialised_here = false;
bool finalised = false;  // Kokkos cannot be initialised again in this process

/// The shape a plan was made for: (batch, q_heads, kv_heads, seq, head_dim, sink, window, last_rows).
using ShapeKey = std::array<std::int64_t, 8>;

template <class Mask>
struct PlanCache {
  std::optional<ShapeKey> key;
  std::optional<trimix::AttentionPlan<Exec, Mask>> plan;
};

struct State {
  std::map<std::uintptr_t, Exec> instances;  // by stream; 0: Kokkos' default instance
  PlanCache<trimix::Causal> causal;
  PlanCache<trimix::Triangle> triangle;
};
std::unique_ptr<State> state;

const Exec& instance_for(void* stream) {
  const auto id = reinterpret_cast<std::uintptr_t>(stream);
  auto found = state->instances.find(id);
  if (found != state->instances.end()) return found->second;
#if defined(KOKKOS_ENABLE_CUDA)
  if constexpr (std::is_same_v<Exec, Kokkos::Cuda>)
    if (stream) return state->instances.emplace(id, Exec(static_cast<cudaStream_t>(stream))).first->second;
#endif
  if (stream) throw std::invalid_argument("a stream was given, but Kokkos' default execution space is not CUDA");
  return state->instances.emplace(id, Exec()).first->second;
}

template <class Mask>
void run(PlanCache<Mask>& cache, const Mask& mask, const ShapeKey& key, const ConstView4& q, const ConstView4& k,
         const ConstView4& v, const View4& o, void* stream) {
  const Exec& exec = instance_for(stream);
  if (!cache.key || *cache.key != key) {
    cache.plan.reset();
    cache.plan.emplace(trimix::plan_attention(exec, q, k, v, o, mask));
    cache.key = key;
  }
  trimix::attention(exec, *cache.plan, q, k, v, o);
}

template <class F>
int guarded(F&& f) {
  last_error.clear();
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown exception";
  }
  return -1;
}

}  // namespace

extern "C" {

/// Initialises Kokkos unless it already runs (arguments: none; threads and device from the
/// environment, as Kokkos reads them).
int trimix_ctypes_init() {
  return guarded([] {
    if (finalised) throw std::logic_error("trimix_ctypes_finalize() ran: Kokkos cannot start again in this process");
    if (!Kokkos::is_initialized()) {
      Kokkos::initialize();
      initialised_here = true;
    }
    if (!state) state = std::make_unique<State>();
  });
}

/// O = attention(Q, K, V) under `mask` ("causal" or "triangle": Triangle{sink, window, last_rows}),
/// queued on `stream` (a cudaStream_t; null: Kokkos' default instance, which has a stream of its
/// own, not the legacy one). Returns once launched.
int trimix_ctypes_attention_bf16(const char* mask, const void* q, const void* k, const void* v, void* o,
                                 std::int64_t batch, std::int64_t q_heads, std::int64_t kv_heads, std::int64_t seq,
                                 std::int64_t head_dim, std::int64_t sink, std::int64_t window,
                                 std::int64_t last_rows, void* stream) {
  return guarded([&] {
    if (!state) throw std::logic_error("trimix_ctypes_init() was not called");
    const std::string name = mask ? mask : "";
    if (batch < 0 || q_heads < 0 || kv_heads < 0 || seq < 0 || head_dim < 0)
      throw std::invalid_argument("sizes must not be negative");
    if (batch > 0 && seq > 0 && head_dim > 0 && (!q || !k || !v || !o))
      throw std::invalid_argument("q, k, v and o must not be null");
    const ConstView4 qv(static_cast<const Element*>(q), batch, q_heads, seq, head_dim);
    const ConstView4 kv(static_cast<const Element*>(k), batch, kv_heads, seq, head_dim);
    const ConstView4 vv(static_cast<const Element*>(v), batch, kv_heads, seq, head_dim);
    const View4 ov(static_cast<Element*>(o), batch, q_heads, seq, head_dim);
    const ShapeKey key{batch, q_heads, kv_heads, seq, head_dim, sink, window, last_rows};
    if (name == "causal")
      run(state->causal, trimix::Causal{}, key, qv, kv, vv, ov, stream);
    else if (name == "triangle")
      run(state->triangle, trimix::Triangle{sink, window, last_rows}, key, qv, kv, vv, ov, stream);
    else
      throw std::invalid_argument("mask must be \"causal\" or \"triangle\", not \"" + name + "\"");
  });
}

/// Waits for everything queued on `stream` (null: Kokkos' default instance).
int trimix_ctypes_fence(void* stream) {
  return guarded([&] {
    if (!state) throw std::logic_error("trimix_ctypes_init() was not called");
    instance_for(stream).fence();
  });
}

/// The reason of the last -1.
const char* trimix_ctypes_error() { return last_error.c_str(); }

/// Frees the plans and instances, and finalises Kokkos if trimix_ctypes_init() initialised it.
int trimix_ctypes_finalize() {
  return guarded([] {
    state.reset();
    if (initialised_here && Kokkos::is_initialized()) {
      Kokkos::finalize();
      finalised = true;
    }
    initialised_here = false;
  });
}

}  // extern "C"
