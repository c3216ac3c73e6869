// The one main of every trimix test executable: Kokkos lives for the whole Catch2 session.
// Kokkos consumes its own --kokkos-* arguments before Catch2 parses the rest. Nothing may be
// printed here: CTest's test discovery reads stdout of `--list-tests` as test names.
#include <Kokkos_Core.hpp>

#include <catch2/catch_session.hpp>

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  return Catch::Session().run(argc, argv);
}
