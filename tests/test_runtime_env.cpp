// The OpenBLAS core choice (core/runtime_env.hpp): a generic fallback is recognised, and the
// tests' own main (tests/support/catch_main.cpp) leaves OpenBLAS on a core that uses this CPU's
// vector units. On a CPU OpenBLAS does not know (Debian 12's 0.3.21 on Sapphire Rapids reports
// Prescott) the last check fails without the re-exec.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <limits>
#include <vector>

#include "core/parallel.hpp"
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

TEST_CASE("runtime_env: subnormals flushed on every thread, also on threads the pool starts later") {
  const float tiny = std::numeric_limits<float>::min();  // the smallest normal float
  // volatile: computed at run time, under the thread's control bits
  auto half_of_tiny = [&] {
    volatile float t = tiny, h = 0.5f;
    return t * h;  // subnormal, or 0 when flushed
  };
  nl::set_num_threads(1);
  nl::set_flush_denormals(false);
  CHECK(!nl::denormals_flushed());
  CHECK(half_of_tiny() > 0.0f);
  nl::set_flush_denormals(true);
  CHECK(nl::denormals_flushed());
  CHECK(half_of_tiny() == 0.0f);
  nl::set_num_threads(2);  // the second thread starts now, after the setting
  std::vector<int> flushed(2, -1), product_zero(2, -1);
  nl::parallel_for(2, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      flushed[i] = nl::denormals_flushed();
      product_zero[i] = half_of_tiny() == 0.0f;
    }
  });
  CHECK(flushed == std::vector<int>{1, 1});
  CHECK(product_zero == std::vector<int>{1, 1});
  nl::set_flush_denormals(false);
  nl::parallel_for(2, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) flushed[i] = nl::denormals_flushed();
  });
  CHECK(flushed == std::vector<int>{0, 0});
  CHECK(half_of_tiny() > 0.0f);
  nl::set_num_threads(1);
}
