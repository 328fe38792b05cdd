// normlab core: the kernels, written once as plain loops. This file is #included by
// kernels_scalar.cpp, kernels_avx2.cpp and kernels_avx512.cpp, each compiled with its own
// target flags and with NL_KERNEL_NS set to its own namespace. Keep loops simple and
// branch-free so the compiler vectorizes them (check with -fopt-info-vec).
//
// Expects: NL_KERNEL_NS defined by the including file.
#include <cmath>
#include <cstdint>

#include "core/kernels/kernels.hpp"

namespace nl::NL_KERNEL_NS {

static void add(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}
static void sub(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] - b[i];
}
static void mul(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}
static void div(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] / b[i];
}
static void add_scalar(const float* a, float s, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + s;
}
static void mul_scalar(const float* a, float s, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * s;
}
static void axpy(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}
static void exp_(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = std::exp(x[i]);
}
static void log_(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = std::log(x[i]);
}
static void tanh_(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = std::tanh(x[i]);
}
static void sigmoid(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = 1.0f / (1.0f + std::exp(-x[i]));
}
static void relu(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
static double sum(const float* x, int64_t n) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}
static double dot(const float* a, const float* b, int64_t n) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

extern const KernelTable table;  // defined here, read by dispatch.cpp
const KernelTable table = {
    add, sub, mul, div, add_scalar, mul_scalar, axpy, exp_, log_, tanh_, sigmoid, relu, sum, dot,
};

}  // namespace nl::NL_KERNEL_NS
