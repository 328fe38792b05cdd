// The OpenBLAS core choice (core/runtime_env.hpp): a generic fallback is recognised, and the
// tests' own main (tests/support/catch_main.cpp) leaves OpenBLAS on a core that uses this CPU's
// vector units. On a CPU OpenBLAS does not know (Debian 12's 0.3.21 on Sapphire Rapids reports
// Prescott) the last check fails without the re-exec.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "core/runtime_env.hpp"

TEST_CASE("runtime_env: generic OpenBLAS cores are not taken for this CPU's best") {
  const std::string best = nl::best_blas_core_for_cpu();
  if (best.empty()) {
    CHECK(nl::blas_core_matches_cpu("Prescott"));  // nothing better exists on such a CPU
  } else {
    CHECK_FALSE(nl::blas_core_matches_cpu("Prescott"));
    CHECK_FALSE(nl::blas_core_matches_cpu("Nehalem"));
    CHECK(nl::blas_core_matches_cpu(best));
    if (best == "SkylakeX") CHECK(nl::blas_core_matches_cpu("skylakex"));  // OpenBLAS's case varies
  }
}

TEST_CASE("runtime_env: the running OpenBLAS core uses this CPU's vector units") {
  INFO("OpenBLAS core: " << nl::blas_core_description());
  if (std::getenv("OPENBLAS_CORETYPE") && !std::getenv("NORMLAB_BLAS_CORE_DETECTED")) {
    SUCCEED("OPENBLAS_CORETYPE was set by the user; the user's choice wins");
    return;
  }
  CHECK(nl::blas_core_matches_cpu(nl::blas_core_name()));
}
