// Smoke test of the test harness: one Catch2 case that touches trimix and the backend under test.
#include "test_config.hpp"

#include <trimix/mask.hpp>

#include <catch2/catch_test_macros.hpp>

TEST_CASE("smoke: Triangle visibility on the backend under test", "[smoke]") {
  const trimix::Triangle mask{/*sink=*/2, /*window=*/4, /*last_rows=*/1};
  const trimix::index_t seq = 16;
  // Host: sink, window, last row, and the causal cut.
  CHECK(trimix::visible(mask, 10, 0, seq));   // sink
  CHECK(trimix::visible(mask, 10, 8, seq));   // window (10 - 8 < 4)
  CHECK_FALSE(trimix::visible(mask, 10, 5, seq));
  CHECK(trimix::visible(mask, 15, 5, seq));   // last row sees every earlier key
  CHECK_FALSE(trimix::visible(mask, 10, 11, seq));  // never the future

  // Device: the same count through the execution space under test.
  trimix::index_t visible_pairs = 0;
  Kokkos::parallel_reduce(
      "trimix_test::smoke", Kokkos::RangePolicy<trimix_test::ExecSpace>(0, seq * seq),
      KOKKOS_LAMBDA(trimix::index_t k, trimix::index_t & count) {
        count += trimix::visible(mask, k / seq, k % seq, seq) ? 1 : 0;
      },
      visible_pairs);
  trimix::index_t expected = 0;
  for (trimix::index_t p = 0; p < seq; ++p)
    for (trimix::index_t j = 0; j < seq; ++j) expected += trimix::visible(mask, p, j, seq) ? 1 : 0;
  CHECK(visible_pairs == expected);
  CHECK(expected == 1 + 2 + 3 + 4 + 5 + 6 * 10 + 16);  // rows 0-4 causal, 5-14 sink+window, 15 all
}
