// normlab core: choose the kernel table at run time. See kernels.hpp.
#include <cstdlib>
#include <cstring>

#include "core/kernels/kernels.hpp"
#include "core/tensor.hpp"

namespace nl {
NL_SIMD_TABLES(KernelTable, table)

const char* simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::scalar: return "scalar";
    case SimdLevel::avx2: return "avx2";
    case SimdLevel::avx512: return "avx512";
  }
  return "?";
}

SimdLevel best_simd_level() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw"))
    return SimdLevel::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::avx2;
  return SimdLevel::scalar;
}

static SimdLevel initial_level() {
  SimdLevel best = best_simd_level();
  const char* env = std::getenv("NORMLAB_SIMD");
  if (!env || !*env) return best;
  for (SimdLevel l : {SimdLevel::scalar, SimdLevel::avx2, SimdLevel::avx512}) {
    if (std::strcmp(env, simd_level_name(l)) == 0) {
      NL_CHECK(l <= best, "NORMLAB_SIMD=", env, " but this CPU supports at most ", simd_level_name(best));
      return l;
    }
  }
  throw Error(detail::concat("NORMLAB_SIMD=", env, " is not one of scalar, avx2, avx512"));
}

static SimdLevel g_level = initial_level();

SimdLevel simd_level() { return g_level; }

void set_simd_level(SimdLevel level) {
  NL_CHECK(level <= best_simd_level(), "set_simd_level: this CPU does not support ", simd_level_name(level));
  g_level = level;
}

const KernelTable& kernels_for(SimdLevel level) {
  return for_simd_level(level, simd_scalar::table, simd_avx2::table, simd_avx512::table);
}

const KernelTable& kernels() { return kernels_for(g_level); }

}  // namespace nl
