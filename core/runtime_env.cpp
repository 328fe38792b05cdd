// normlab core: the process environment the libraries read once (see runtime_env.hpp).
#include "core/runtime_env.hpp"

#include <omp.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <pmmintrin.h>
#include <xmmintrin.h>
#endif

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include <cblas.h>

namespace nl {

// Set by tune_runtime_and_reexec for the re-executed process: the core OpenBLAS had chosen.
static constexpr const char* kDetectedCoreVar = "NORMLAB_BLAS_CORE_DETECTED";
// Set with OMP_WAIT_POLICY, so the re-executed process (and the runs a sweep starts) can tell
// normlab's choice from the user's.
static constexpr const char* kWaitPolicySetVar = "NORMLAB_OMP_WAIT_POLICY_SET";

static std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string blas_core_name() {
  const char* name = openblas_get_corename();
  return name ? name : "unknown";
}

std::string best_blas_core_for_cpu() {
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return "";
}

bool blas_core_matches_cpu(const std::string& core) {
  const std::string best = best_blas_core_for_cpu();
  if (best.empty()) return true;  // nothing better to offer
  const std::string c = lower(core);
  // Cores with AVX-512 kernels, and the AVX2 ones (Zen's are OpenBLAS's choice on AMD CPUs
  // with AVX-512 too, and are not a fallback).
  const bool avx512 = c == "skylakex" || c == "cooperlake" || c == "sapphirerapids";
  const bool avx2 = avx512 || c == "haswell" || c == "zen" || c == "skylake";
  return best == "SkylakeX" ? (avx512 || c == "zen") : avx2;
}

std::string blas_core_description() {
  const std::string core = blas_core_name();
  if (const char* detected = std::getenv(kDetectedCoreVar))
    return core + " (chosen by normlab: OpenBLAS detected " + detected + ")";
  if (std::getenv("OPENBLAS_CORETYPE")) return core + " (OPENBLAS_CORETYPE set by the user)";
  return core + " (detected by OpenBLAS)";
}

std::string omp_wait_policy_description() {
  if (const char* spin = std::getenv("GOMP_SPINCOUNT")) return std::string("GOMP_SPINCOUNT=") + spin + " (set by the user)";
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  if (!policy) return "libgomp default (spin, then sleep)";
  if (std::getenv(kWaitPolicySetVar)) return std::string(policy) + " (set by normlab)";
  return std::string(policy) + " (OMP_WAIT_POLICY set by the user)";
}

static void set_flush_denormals_this_thread(bool on) {
#if defined(__x86_64__) || defined(__i386__)
  _MM_SET_FLUSH_ZERO_MODE(on ? _MM_FLUSH_ZERO_ON : _MM_FLUSH_ZERO_OFF);
  _MM_SET_DENORMALS_ZERO_MODE(on ? _MM_DENORMALS_ZERO_ON : _MM_DENORMALS_ZERO_OFF);
#else
  (void)on;  // elsewhere subnormals keep their (hardware's) default handling
#endif
}

void set_flush_denormals(bool on) {
  set_flush_denormals_this_thread(on);
#pragma omp parallel
  set_flush_denormals_this_thread(on);
}

bool denormals_flushed() {
#if defined(__x86_64__) || defined(__i386__)
  return _MM_GET_FLUSH_ZERO_MODE() == _MM_FLUSH_ZERO_ON && _MM_GET_DENORMALS_ZERO_MODE() == _MM_DENORMALS_ZERO_ON;
#else
  return false;
#endif
}

static bool keep_denormals_requested() {
  const char* v = std::getenv("NORMLAB_DENORMALS");
  return v && std::strcmp(v, "keep") == 0;
}

void configure_denormals() { set_flush_denormals(!keep_denormals_requested()); }

std::string denormals_description() {
  if (denormals_flushed()) return "flushed to zero (set by normlab)";
  return keep_denormals_requested() ? "kept (NORMLAB_DENORMALS=keep)" : "kept";
}

void tune_runtime_and_reexec(char** argv, RuntimeTuning tuning) {
  bool changed = false;
  if (tuning.passive_omp_wait && !std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT")) {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    setenv(kWaitPolicySetVar, "1", 1);
    changed = true;
  }
  if (tuning.blas_core && !std::getenv("OPENBLAS_CORETYPE")) {
    const std::string core = blas_core_name();
    const std::string best = best_blas_core_for_cpu();
    if (!best.empty() && !blas_core_matches_cpu(core)) {
      setenv("OPENBLAS_CORETYPE", best.c_str(), 1);
      setenv(kDetectedCoreVar, core.c_str(), 1);
      changed = true;
    }
  }
  if (changed) execv("/proc/self/exe", argv);  // only returns on failure: run as we are
}

}  // namespace nl
