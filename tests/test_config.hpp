#pragma once
/// \file test_config.hpp
/// The execution space a test executable exercises. tests/CMakeLists.txt compiles every
/// tests/test_*.cpp once per backend (trimix_tests_openmp, trimix_tests_serial, ...) with
/// TRIMIX_TEST_EXEC_SPACE set to that backend's space.

#include <Kokkos_Core.hpp>

#ifndef TRIMIX_TEST_EXEC_SPACE
// Only for tools that read a test file without the build's flags (IDEs, clangd).
#define TRIMIX_TEST_EXEC_SPACE Kokkos::DefaultHostExecutionSpace
#endif

namespace trimix_test {

/// Execution space of the kernels under test.
using ExecSpace = TRIMIX_TEST_EXEC_SPACE;
/// Host space paired with it (reference results, mirrors).
using HostSpace = Kokkos::DefaultHostExecutionSpace;

}  // namespace trimix_test
