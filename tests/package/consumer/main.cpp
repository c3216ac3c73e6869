// Uses trimix through its CMake package: classifies Triangle tiles on the host and counts the
// visible (query, key) pairs of one tile in a Kokkos kernel. Exit code 0 on success.
#include <trimix/mask.hpp>

#include <Kokkos_Core.hpp>

#include <cstdio>

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard guard(argc, argv);

  const trimix::Triangle mask{/*sink=*/8, /*window=*/64, /*last_rows=*/16};
  const trimix::TileGeometry geometry{/*seq_q=*/1024, /*seq_k=*/1024, /*q_tile=*/64, /*kv_tile=*/64};
  const trimix::index_t qt = 8;  // queries 512..575

  // Keys 0..63 hold the sinks only (partial), 128..191 are neither sink nor window (empty), the
  // diagonal tile is causal (partial) and every tile of the last q-tile is visible to its last rows.
  bool ok = trimix::classify(mask, geometry, qt, 0) == trimix::TileClass::partial &&
            trimix::classify(mask, geometry, qt, 2) == trimix::TileClass::empty &&
            trimix::classify(mask, geometry, qt, qt) == trimix::TileClass::partial;

  // Visible pairs of the diagonal tile: each query p sees keys 512..p, all inside the window.
  trimix::index_t visible_pairs = 0;
  Kokkos::parallel_reduce(
      "trimix_consumer::count", Kokkos::RangePolicy<>(0, 64 * 64),
      KOKKOS_LAMBDA(trimix::index_t k, trimix::index_t & count) {
        const trimix::index_t p = geometry.first_position(qt) + k / 64;
        const trimix::index_t j = geometry.first_key(qt) + k % 64;
        count += trimix::visible(mask, p, j, geometry.seq_k) ? 1 : 0;
      },
      visible_pairs);
  ok = ok && visible_pairs == 64 * 65 / 2;

  std::printf("trimix consumer (%s, %s): %s\n", trimix::mask_name(mask).c_str(),
              TRIMIX_VERSION_STRING, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
