// The tests' main: Catch2's, after choosing the OpenBLAS core as `normlab` does, so the tests
// run the BLAS kernels users run (core/runtime_env.hpp). The wait policy is left alone.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "core/runtime_env.hpp"

int main(int argc, char** argv) {
  nl::tune_runtime_and_reexec(argv, {.wait_policy = nl::WaitPolicyTuning::keep, .blas_core = true});
  return Catch::Session().run(argc, argv);
}
