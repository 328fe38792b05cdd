// normlab core: SIMD kernels with runtime dispatch.
//
// Every kernel is written once, as plain loops, in kernels_impl.inl. That file is compiled
// three times with different target flags (kernels_scalar.cpp: no vectorization at all;
// kernels_avx2.cpp: -mavx2 -mfma; kernels_avx512.cpp: -mavx512f ...), each into its own
// namespace, producing three KernelTables. At start-up the best table the CPU supports is
// chosen (NORMLAB_SIMD=scalar|avx2|avx512 overrides), so one binary runs on any x86-64.
// Tests run every kernel at every level the CPU has and compare them.
#pragma once

#include <cstdint>

namespace nl {

enum class SimdLevel { scalar = 0, avx2 = 1, avx512 = 2 };
const char* simd_level_name(SimdLevel level);
SimdLevel best_simd_level();          // what this CPU supports
SimdLevel simd_level();               // what is in use
void set_simd_level(SimdLevel level); // throws nl::Error if the CPU lacks it

// Kernels operate on contiguous float arrays of length n; they do not allocate.
struct KernelTable {
  // elementwise
  void (*add)(const float* a, const float* b, float* out, int64_t n);
  void (*sub)(const float* a, const float* b, float* out, int64_t n);
  void (*mul)(const float* a, const float* b, float* out, int64_t n);
  void (*div)(const float* a, const float* b, float* out, int64_t n);
  void (*add_scalar)(const float* a, float s, float* out, int64_t n);
  void (*mul_scalar)(const float* a, float s, float* out, int64_t n);
  void (*axpy)(float alpha, const float* x, float* y, int64_t n);  // y += alpha * x
  void (*exp)(const float* x, float* out, int64_t n);
  void (*log)(const float* x, float* out, int64_t n);
  void (*tanh)(const float* x, float* out, int64_t n);
  void (*sigmoid)(const float* x, float* out, int64_t n);
  void (*relu)(const float* x, float* out, int64_t n);
  // reductions (accumulate in double for stability of long sums)
  double (*sum)(const float* x, int64_t n);
  double (*dot)(const float* a, const float* b, int64_t n);
};

const KernelTable& kernels();                    // current level
const KernelTable& kernels_for(SimdLevel level); // a specific level (tests)

}  // namespace nl
