// normlab core: the process environment the libraries read once (see runtime_env.hpp).
#include "core/runtime_env.hpp"

#include <omp.h>
#include <strings.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <pmmintrin.h>
#include <xmmintrin.h>
#endif

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include <cblas.h>

namespace nl {

// Set by tune_runtime_and_reexec for the re-executed process: the core OpenBLAS had chosen.
static constexpr const char* kDetectedCoreVar = "NORMLAB_BLAS_CORE_DETECTED";
// Set beside the wait-policy variable normlab chose, holding the reason: it tells normlab's
// choice from the user's (in the re-executed process, and in the runs a sweep starts).
static constexpr const char* kWaitPolicySetVar = "NORMLAB_OMP_WAIT_POLICY_SET";

static std::string fmt_cores(double cores) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", cores);
  return text;
}

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

WaitPolicyEnv wait_policy_env() {
  auto get = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v ? v : "");
  };
  return {get("GOMP_SPINCOUNT"), get("OMP_WAIT_POLICY"), get(kWaitPolicySetVar)};
}

bool WaitPolicyEnv::spins() const {
  if (!spin_count.empty()) return std::strtoll(spin_count.c_str(), nullptr, 10) > 0;
  return strcasecmp(policy.c_str(), "passive") != 0;
}

bool WaitPolicyEnv::set_by_user() const { return normlab_reason.empty() && !(spin_count.empty() && policy.empty()); }

std::string WaitPolicyEnv::description() const {
  if (!normlab_reason.empty()) {
    const std::string chosen = !spin_count.empty() ? "GOMP_SPINCOUNT=" + spin_count
                               : !policy.empty()   ? policy
                                                   : std::string("libgomp default");
    return chosen + " (set by normlab: " + normlab_reason + ")";
  }
  if (!spin_count.empty()) return "GOMP_SPINCOUNT=" + spin_count + " (set by the user)";
  if (!policy.empty()) return policy + " (OMP_WAIT_POLICY set by the user)";
  return "libgomp default (spin, then sleep)";
}

WaitPolicyChoice wait_policy_for(double other_cores_busy, int cores, bool under_mpi) {
  const WaitPolicyChoice passive{"OMP_WAIT_POLICY", "passive", ""};
  if (under_mpi) return {passive.variable, passive.value, "under mpirun"};
  if (cores < 2) return {passive.variable, passive.value, "one core"};
  if (other_cores_busy < 0) return {passive.variable, passive.value, "/proc/stat unreadable"};
  const std::string busy = fmt_cores(other_cores_busy) + " other cores busy at start";
  if (other_cores_busy > kQuietOtherCores) return {passive.variable, passive.value, busy};
  return {"GOMP_SPINCOUNT", std::to_string(kQuietSpinCount), busy};
}

// Sum of the busy fields (user nice system irq softirq steal) of /proc/stat's "cpu" line, in
// clock ticks; -1 if unreadable.
static long long busy_ticks() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  long long user, nice, system, idle, iowait, irq, softirq, steal;
  if (!(stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) || cpu != "cpu") return -1;
  return user + nice + system + irq + softirq + steal;
}

double other_cores_busy(double seconds) {
  const long long before = busy_ticks();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));  // this process adds ~nothing
  const long long after = busy_ticks();
  const long ticks_per_second = sysconf(_SC_CLK_TCK);
  if (before < 0 || after < before || ticks_per_second <= 0) return -1;
  return static_cast<double>(after - before) / ticks_per_second / seconds;
}

bool is_normlab_wait_policy_entry(const char* entry) {
  if (wait_policy_env().set_by_user()) return false;
  for (const char* name : {"OMP_WAIT_POLICY=", "GOMP_SPINCOUNT=", "NORMLAB_OMP_WAIT_POLICY_SET="})
    if (std::strncmp(entry, name, std::strlen(name)) == 0) return true;
  return false;
}

std::vector<std::string> passive_wait_policy_env(const std::string& reason) {
  return {"OMP_WAIT_POLICY=passive", std::string(kWaitPolicySetVar) + "=" + reason};
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
  if (tuning.wait_policy == WaitPolicyTuning::by_load && !std::getenv("OMP_WAIT_POLICY") &&
      !std::getenv("GOMP_SPINCOUNT")) {
    // 0.1 s is 10 clock ticks per core: enough to tell a busy core from an idle one.
    const WaitPolicyChoice choice = wait_policy_for(tuning.under_mpirun ? 0.0 : other_cores_busy(0.1),
                                                    static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)), tuning.under_mpirun);
    setenv(choice.variable.c_str(), choice.value.c_str(), 1);
    setenv(kWaitPolicySetVar, choice.reason.c_str(), 1);
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
