// The OpenBLAS core choice (core/runtime_env.hpp): a generic fallback is recognised, and the
// tests' own main (tests/support/catch_main.cpp) leaves OpenBLAS on a core that uses this CPU's
// vector units. On a CPU OpenBLAS does not know (Debian 12's 0.3.21 on Sapphire Rapids reports
// Prescott) the last check fails without the re-exec.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <limits>
#include <string>
#include <thread>
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

TEST_CASE("runtime_env: the wait-policy rule spins only on free cores, never under mpirun") {
  const nl::WaitPolicyChoice quiet = nl::wait_policy_for(0.04, 2, false);
  CHECK(quiet.variable == "GOMP_SPINCOUNT");
  CHECK(quiet.value == std::to_string(nl::kQuietSpinCount));
  CHECK(quiet.reason == "0.0 other cores busy at start");
  const nl::WaitPolicyChoice busy = nl::wait_policy_for(1.26, 2, false);
  CHECK(busy.variable == "OMP_WAIT_POLICY");
  CHECK(busy.value == "passive");
  CHECK(busy.reason == "1.3 other cores busy at start");
  CHECK(nl::wait_policy_for(nl::kQuietOtherCores + 0.01, 8, false).value == "passive");  // the threshold
  CHECK(nl::wait_policy_for(nl::kQuietOtherCores, 8, false).value == std::to_string(nl::kQuietSpinCount));
  CHECK(nl::wait_policy_for(0.0, 2, true).reason == "under mpirun");
  CHECK(nl::wait_policy_for(0.0, 2, true).value == "passive");
  CHECK(nl::wait_policy_for(0.0, 1, false).value == "passive");
  CHECK(nl::wait_policy_for(-1.0, 2, false).value == "passive");  // /proc/stat unreadable
}

TEST_CASE("runtime_env: the wait-policy variables read as libgomp reads them") {
  // {GOMP_SPINCOUNT, OMP_WAIT_POLICY, normlab's reason}: a spin count decides when it is set,
  // else the policy; what sgemm's split threshold (threads_spin_between_regions) and the logs
  // both read.
  auto env = [](const char* spin_count, const char* policy, const char* reason) {
    return nl::WaitPolicyEnv{spin_count, policy, reason};
  };
  CHECK(env("", "", "").spins());
  CHECK(env("", "active", "").spins());
  CHECK_FALSE(env("", "passive", "").spins());
  CHECK_FALSE(env("", "PASSIVE", "").spins());
  CHECK(env("10000", "passive", "").spins());
  CHECK_FALSE(env("0", "active", "").spins());
  CHECK_FALSE(env("", "", "").set_by_user());
  CHECK(env("", "passive", "").set_by_user());
  CHECK(env("300", "", "").set_by_user());
  CHECK_FALSE(env("10000", "", "0.0 other cores busy at start").set_by_user());
  CHECK(env("10000", "", "0.0 other cores busy at start").description() ==
        "GOMP_SPINCOUNT=10000 (set by normlab: 0.0 other cores busy at start)");
  CHECK(env("", "passive", "under mpirun").description() == "passive (set by normlab: under mpirun)");
  CHECK(env("", "active", "").description() == "active (OMP_WAIT_POLICY set by the user)");
  CHECK(env("1000", "", "").description() == "GOMP_SPINCOUNT=1000 (set by the user)");
  CHECK(env("", "", "").description() == "libgomp default (spin, then sleep)");
}

TEST_CASE("runtime_env: other_cores_busy sees a thread that computes") {
  // A thread of this process spinning through the whole sample counts as about one busy core.
  std::atomic<bool> stop{false};
  std::thread spinner([&] {
    volatile double x = 1.0;
    while (!stop.load(std::memory_order_relaxed)) x = x * 1.0000001 + 1e-9;
  });
  const double busy = nl::other_cores_busy(0.3);
  stop = true;
  spinner.join();
  INFO("cores busy during the sample: " << busy);
  CHECK(busy >= 0.5);
  CHECK(busy <= static_cast<double>(std::thread::hardware_concurrency()) + 0.2);
}
