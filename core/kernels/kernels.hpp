// normlab core: SIMD kernels with runtime dispatch.
//
// Every kernel is written once, as plain loops, in kernels_impl.inl. That file is compiled
// three times with different target flags (scalar: no vectorization at all; avx2: -mavx2
// -mfma; avx512: -mavx512f ...), each into its own namespace (nl::simd_scalar, simd_avx2,
// simd_avx512), producing three KernelTables. The same mechanism serves every kernel family
// (conv3x3, the norm kernels): CMake's normlab_simd_kernel(target impl.inl) generates the
// three translation units, and NL_SIMD_TABLES + for_simd_level below pick one at run time. At start-up the best table the CPU supports is
// chosen (NORMLAB_SIMD=scalar|avx2|avx512 overrides), so one binary runs on any x86-64.
// Tests run every kernel at every level the CPU has and compare them (tests/test_simd.cpp).
//
// Accuracy: add/sub/mul/div/min/max/relu and the sums are bit-identical across levels (the
// summation order is written into the code, not left to the vectorizer). exp, log, tanh,
// sigmoid and gelu are our own polynomial approximations (std:: calls do not vectorize),
// within a few ulp of the exact value; they may differ by an ulp between levels because
// the AVX builds contract a*b+c into one FMA.
#pragma once

#include <cstdint>

namespace nl {

enum class SimdLevel { scalar = 0, avx2 = 1, avx512 = 2 };
const char* simd_level_name(SimdLevel level);
SimdLevel best_simd_level();          // what this CPU supports
SimdLevel simd_level();               // what is in use
void set_simd_level(SimdLevel level); // throws nl::Error if the CPU lacks it

// Declares a kernel family's table `name` of type `Type` in each level's namespace (defined by
// the family's impl.inl, compiled per level by normlab_simd_kernel in CMakeLists.txt).
#define NL_SIMD_TABLES(Type, name)                   \
  namespace simd_scalar { extern const Type name; } \
  namespace simd_avx2 { extern const Type name; }   \
  namespace simd_avx512 { extern const Type name; }

// The one dispatch: the table of `level` among a family's three.
template <typename Table>
const Table& for_simd_level(SimdLevel level, const Table& scalar, const Table& avx2, const Table& avx512) {
  switch (level) {
    case SimdLevel::avx512: return avx512;
    case SimdLevel::avx2: return avx2;
    default: return scalar;
  }
}

// Kernels operate on contiguous float arrays of length n; they do not allocate.
// `out` may alias an input (in-place use is fine).
struct KernelTable {
  // elementwise, two arrays
  void (*add)(const float* a, const float* b, float* out, int64_t n);
  void (*sub)(const float* a, const float* b, float* out, int64_t n);
  void (*mul)(const float* a, const float* b, float* out, int64_t n);
  void (*div)(const float* a, const float* b, float* out, int64_t n);
  // elementwise, array and scalar (the r* forms put the scalar on the left: s - a, s / a)
  void (*add_scalar)(const float* a, float s, float* out, int64_t n);
  void (*mul_scalar)(const float* a, float s, float* out, int64_t n);
  void (*axpy)(float alpha, const float* x, float* y, int64_t n);  // y += alpha * x
  // unary
  void (*exp)(const float* x, float* out, int64_t n);
  void (*log)(const float* x, float* out, int64_t n);
  void (*tanh)(const float* x, float* out, int64_t n);
  void (*sigmoid)(const float* x, float* out, int64_t n);
  void (*relu)(const float* x, float* out, int64_t n);
  // reductions (accumulate in double for stability of long sums)
  double (*sum)(const float* x, int64_t n);
  double (*dot)(const float* a, const float* b, int64_t n);

  // --- added for the full op set ---
  void (*sub_scalar)(const float* a, float s, float* out, int64_t n);   // a - s
  void (*div_scalar)(const float* a, float s, float* out, int64_t n);   // a / s
  void (*rsub_scalar)(const float* a, float s, float* out, int64_t n);  // s - a
  void (*rdiv_scalar)(const float* a, float s, float* out, int64_t n);  // s / a
  void (*maximum)(const float* a, const float* b, float* out, int64_t n);
  void (*fill)(float* out, float value, int64_t n);
  void (*copy)(const float* x, float* out, int64_t n);
  // out = x * Phi(x), exact erf form; cdf = Phi(x) too unless cdf is null (the costly part of
  // gelu', kept from the forward for gelu_backward)
  void (*gelu)(const float* x, float* out, float* cdf, int64_t n);
  // backward helpers: out = g * f'(x)
  void (*relu_backward)(const float* x, const float* g, float* out, int64_t n);
  void (*gelu_backward)(const float* x, const float* cdf, const float* g, float* out, int64_t n);  // cdf = Phi(x)
  float (*max)(const float* x, int64_t n);  // NaNs are skipped; -inf when n == 0 or all NaN
  double (*exp_shift_sum)(const float* x, float shift, float* out, int64_t n);  // out = exp(x - shift); returns the sum
  double (*sum_sq_dev)(const float* x, float mean, int64_t n);  // sum (x - mean)^2
  void (*accumulate)(const float* x, double* acc, int64_t n);   // acc += x, column sums in double
};

const KernelTable& kernels();                    // current level
const KernelTable& kernels_for(SimdLevel level); // a specific level (tests)

}  // namespace nl
