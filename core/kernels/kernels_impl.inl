// normlab core: the kernels, written once as plain loops. This file is compiled once per SIMD
// level (normlab_simd_kernel in CMakeLists.txt), each time with that level's target flags and
// with NL_SIMD_NS set to the level's namespace. Keep loops simple and
// branch-free so the compiler vectorizes them (check with -fopt-info-vec-optimized).
//
// Transcendentals. std::exp & co. are library calls, which the vectorizer cannot inline, so
// the loops below use our own branch-free approximations (the classic Cephes recipes):
//
//   exp(x):  n = round(x * log2(e)),  r = x - n*ln2 (ln2 split into a short exact part and a
//            correction, so r is exact),  |r| <= ln2/2;  exp(x) = 2^n * P(r), P a degree-7
//            polynomial; 2^n is built from its bits: (n + 127) << 23.
//   log(x):  x = m * 2^e with m in [sqrt(1/2), sqrt(2));  log(x) = e*ln2 + log1p(m - 1),
//            log1p(f) = f - f^2/2 + f^3 Q(f) for a degree-8 polynomial Q.
//   tanh(x): odd polynomial for |x| < 0.625, else 1 - 2 / (exp(2|x|) + 1) (no cancellation there).
//   sigmoid: 1 / (1 + exp(-x)).
//   gelu:    x * Phi(x) = x * erfc(-x / sqrt 2) / 2, with erfc(z) = t exp(-z^2 + R(t)),
//            t = 1 / (1 + z/2) (Numerical Recipes' erfcc, relative error < 1.2e-7 for z >= 0;
//            erfc(-z) = 2 - erfc(z)). The erfc form keeps full relative precision in the
//            left tail, where 1 + erf(x) would cancel; -z^2 is formed in extra precision.
// Each is within a few ulp of the exact value (measured in tests/test_simd.cpp) and maps
// inf/NaN/overflow/underflow to what std:: gives.
//
// Sums: the order of additions is spelled out (kLanes independent accumulators, then a
// fixed tree), so every SIMD level gives bit-identical results and long sums lose less.
//
// Expects: NL_SIMD_NS, this level's namespace (simd_scalar | simd_avx2 | simd_avx512), defined by
// the translation unit normlab_simd_kernel (CMakeLists.txt) generates for each level.
#include <bit>
#include <cstdint>

#include "core/kernels/kernels.hpp"

namespace nl::NL_SIMD_NS {

// ---------------------------------------------------------------- scalar math helpers
// Written with select() instead of branches. select blends the bits with a mask rather than
// using `c ? a : b`: with the latter GCC duplicates the code after a clamp for the constant
// case (jump threading), and the AVX2 build then refuses to vectorize the loop.

static inline float select(bool c, float a, float b) {
  const uint32_t mask = 0u - static_cast<uint32_t>(c);  // all ones when c
  return std::bit_cast<float>((std::bit_cast<uint32_t>(a) & mask) | (std::bit_cast<uint32_t>(b) & ~mask));
}

static inline float exp_approx(float x) {
  // exp overflows above ln(FLT_MAX) = 88.72 and is below half the smallest denormal under
  // -103.97; clamping keeps 2^n's exponent representable (NaN passes through both tests).
  x = select(x > 88.8f, 88.8f, x);
  x = select(x < -104.0f, -104.0f, x);
  // n = round(x / ln2) by the 1.5 * 2^23 trick: adding it pushes the fraction bits out.
  constexpr float kRound = 12582912.0f;
  const float nf_shifted = x * 1.44269504088896341f + kRound;
  const float n = nf_shifted - kRound;
  const int32_t ni = static_cast<int32_t>(std::bit_cast<uint32_t>(nf_shifted) - std::bit_cast<uint32_t>(kRound));
  // r = x - n ln2, in two steps: 0.693359375 has few mantissa bits, so n * it is exact.
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  // 2^n as two factors 2^(n/2) * 2^(n - n/2), so n in [-151, 128] needs no denormal or
  // infinite scale factor; the result then rounds into the denormal range or to inf as it should.
  const int32_t n1 = ni / 2, n2 = ni - n1;
  const float s1 = std::bit_cast<float>(static_cast<uint32_t>(n1 + 127) << 23);
  const float s2 = std::bit_cast<float>(static_cast<uint32_t>(n2 + 127) << 23);
  return p * s1 * s2;
}

static inline float log_approx(float x) {
  // Denormals: scale by 2^23 first so the exponent field is meaningful.
  const bool tiny = x < 1.17549435e-38f;
  const float xs = select(tiny, x * 8388608.0f, x);
  const uint32_t bits = std::bit_cast<uint32_t>(xs);
  float e = static_cast<float>(static_cast<int32_t>(bits >> 23) - 126) - select(tiny, 23.0f, 0.0f);
  float m = std::bit_cast<float>((bits & 0x007fffffu) | 0x3f000000u);  // m in [0.5, 1)
  // Move m to [sqrt(1/2), sqrt(2)) so f = m - 1 is small: f in [-0.29, 0.41).
  const bool small = m < 0.707106781186547524f;
  e = e - select(small, 1.0f, 0.0f);
  const float f = select(small, m + m, m) - 1.0f;
  const float f2 = f * f;
  float q = 7.0376836292e-2f;
  q = q * f - 1.1514610310e-1f;
  q = q * f + 1.1676998740e-1f;
  q = q * f - 1.2420140846e-1f;
  q = q * f + 1.4249322787e-1f;
  q = q * f - 1.6668057665e-1f;
  q = q * f + 2.0000714765e-1f;
  q = q * f - 2.4999993993e-1f;
  q = q * f + 3.3333331174e-1f;
  float y = f * f2 * q;
  y = y + e * -2.12194440e-4f;  // e * ln2, split like in exp_approx
  y = y - 0.5f * f2;
  float result = f + y + e * 0.693359375f;
  // Special values: log(+inf) = inf, log(0) = -inf, log(negative or NaN) = NaN.
  constexpr float kInf = __builtin_inff();
  result = select(x == kInf, kInf, result);
  result = select(x == 0.0f, -kInf, result);
  result = select((x < 0.0f) | (x != x), __builtin_nanf(""), result);  // `|`: no branch
  return result;
}

static inline float tanh_approx(float x) {
  const float ax = select(x < 0.0f, -x, x);
  // Large |x|: 1 - 2/(e^{2|x|} + 1); e^{2|x|} = inf gives exactly 1.
  const float big = 1.0f - 2.0f / (exp_approx(2.0f * ax) + 1.0f);
  const float big_signed = select(x < 0.0f, -big, big);
  // Small |x|: x + x^3 P(x^2) (Cephes tanhf), no cancellation near 0.
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = x + x * z * p;
  return select(ax < 0.625f, small, big_signed);
}

static inline float sigmoid_approx(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

// exp(c - x^2/2), accurate even where x^2/2 is large: the rounding of x*x in float would
// be an absolute error of up to ulp(x^2/2) in the exponent, i.e. a relative error of
// ~x^2 * 2^-24 in the result (30 ulp at x = -5). So x = s + d with s = x's top 12 bits:
// s^2/2 is exact in float, the rest (c - d(x + s)/2) is small, and the two are added with
// a 2Sum, which returns the rounded sum hi and its exact error lo:
// exp(hi + lo) = exp(hi) (1 + lo) since |lo| <= ulp(hi)/2.
static inline float exp_minus_half_square(float x, float c) {
  float ax = select(x < 0.0f, -x, x);
  ax = select(ax > 20.0f, 20.0f, ax);  // exp(-200) is 0 anyway; keeps s*s finite (NaN passes)
  const float s = std::bit_cast<float>(std::bit_cast<uint32_t>(ax) & 0xfffff000u);
  const float a = -0.5f * s * s;                     // exact
  const float b = c - 0.5f * ((ax - s) * (ax + s));  // ax - s is exact
  const float hi = a + b, bb = hi - a;                // 2Sum: hi + lo == a + b exactly
  const float lo = (a - (hi - bb)) + (b - bb);
  return exp_approx(hi) * (1.0f + lo);
}

constexpr float kSqrtHalf = 0.707106781186547524f;
constexpr float kInvSqrt2Pi = 0.398942280401432678f;

// Phi(x) = erfc(-x / sqrt 2) / 2, with erfc(z) = t exp(-z^2 + R(t)), t = 1 / (1 + |z|/2),
// erfc(-z) = 2 - erfc(z). z^2 = x^2/2 goes through exp_minus_half_square.
static inline float normal_cdf(float x) {
  const float az = select(x < 0.0f, -x, x) * kSqrtHalf;
  const float t = 1.0f / (1.0f + 0.5f * az);
  float r = 0.17087277f;
  r = r * t - 0.82215223f;
  r = r * t + 1.48851587f;
  r = r * t - 1.13520398f;
  r = r * t + 0.27886807f;
  r = r * t - 0.18628806f;
  r = r * t + 0.09678418f;
  r = r * t + 0.37409196f;
  r = r * t + 1.00002368f;
  r = r * t - 1.26551223f;
  const float e = t * exp_minus_half_square(x, r);  // erfc(|x| / sqrt 2)
  return 0.5f * select(x > 0.0f, 2.0f - e, e);
}

// d/dx x Phi(x) = Phi(x) + x phi(x), phi the standard normal density; cdf = Phi(x).
static inline float gelu_grad_approx(float x, float cdf) {
  return cdf + x * (kInvSqrt2Pi * exp_minus_half_square(x, 0.0f));
}

// ---------------------------------------------------------------- elementwise

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
static void maximum(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] > b[i] ? a[i] : b[i];
}
static void add_scalar(const float* a, float s, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + s;
}
static void mul_scalar(const float* a, float s, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * s;
}
static void sub_scalar(const float* a, float s, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] - s;
}
static void div_scalar(const float* a, float s, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] / s;  // not a * (1/s): that rounds twice
}
static void rsub_scalar(const float* a, float s, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = s - a[i];
}
static void rdiv_scalar(const float* a, float s, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = s / a[i];
}
static void axpy(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}
static void fill(float* out, float value, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = value;
}
static void copy(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i];
}
static void exp_(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = exp_approx(x[i]);
}
static void log_(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = log_approx(x[i]);
}
static void tanh_(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = tanh_approx(x[i]);
}
static void sigmoid(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = sigmoid_approx(x[i]);
}
static void gelu(const float* x, float* out, float* cdf, int64_t n) {
  if (!cdf) {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * normal_cdf(x[i]);
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float phi_x = normal_cdf(x[i]);  // Phi(x)
    out[i] = x[i] * phi_x;
    cdf[i] = phi_x;
  }
}
static void relu(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
static void relu_backward(const float* x, const float* g, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] > 0.0f ? g[i] : 0.0f;
}
static void gelu_backward(const float* x, const float* cdf, const float* g, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = g[i] * gelu_grad_approx(x[i], cdf[i]);
}

// ---------------------------------------------------------------- reductions
// kLanes partial sums, element i going to lane i % kLanes, combined in a fixed tree at the
// end: two AVX-512 double registers' worth, enough independent chains to hide add latency.
constexpr int64_t kLanes = 16;

static double combine(const double* lane) {
  double half[kLanes / 2];
  for (int64_t j = 0; j < kLanes / 2; ++j) half[j] = lane[j] + lane[j + kLanes / 2];
  double s = 0.0;
  for (int64_t j = 0; j < kLanes / 2; ++j) s += half[j];
  return s;
}

static double sum(const float* x, int64_t n) {
  double lane[kLanes] = {};
  const int64_t body = n - n % kLanes;
  for (int64_t i = 0; i < body; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) lane[j] += x[i + j];
  for (int64_t i = body; i < n; ++i) lane[i - body] += x[i];
  return combine(lane);
}
static double dot(const float* a, const float* b, int64_t n) {
  double lane[kLanes] = {};
  const int64_t body = n - n % kLanes;
  for (int64_t i = 0; i < body; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) lane[j] += static_cast<double>(a[i + j]) * b[i + j];
  for (int64_t i = body; i < n; ++i) lane[i - body] += static_cast<double>(a[i]) * b[i];
  return combine(lane);
}
static double sum_sq_dev(const float* x, float mean, int64_t n) {
  double lane[kLanes] = {};
  const int64_t body = n - n % kLanes;
  for (int64_t i = 0; i < body; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) {
      const double d = static_cast<double>(x[i + j]) - mean;
      lane[j] += d * d;
    }
  for (int64_t i = body; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - mean;
    lane[i - body] += d * d;
  }
  return combine(lane);
}
static double exp_shift_sum(const float* x, float shift, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = exp_approx(x[i] - shift);
  return sum(out, n);  // a second pass over `out`, still in cache for softmax-sized rows
}
static float max(const float* x, int64_t n) {
  // max is exact in any order, so plain lanes suffice; `v > m ? v : m` maps to vmaxps.
  float lane[kLanes];
  for (int64_t j = 0; j < kLanes; ++j) lane[j] = -__builtin_inff();
  const int64_t body = n - n % kLanes;
  for (int64_t i = 0; i < body; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
  for (int64_t i = body; i < n; ++i) lane[i - body] = x[i] > lane[i - body] ? x[i] : lane[i - body];
  float m = lane[0];
  for (int64_t j = 1; j < kLanes; ++j) m = lane[j] > m ? lane[j] : m;
  return m;
}
static void accumulate(const float* x, double* acc, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += x[i];
}

extern const KernelTable table;  // defined here, read by dispatch.cpp
const KernelTable table = {
    .add = add,
    .sub = sub,
    .mul = mul,
    .div = div,
    .add_scalar = add_scalar,
    .mul_scalar = mul_scalar,
    .axpy = axpy,
    .exp = exp_,
    .log = log_,
    .tanh = tanh_,
    .sigmoid = sigmoid,
    .relu = relu,
    .sum = sum,
    .dot = dot,
    .sub_scalar = sub_scalar,
    .div_scalar = div_scalar,
    .rsub_scalar = rsub_scalar,
    .rdiv_scalar = rdiv_scalar,
    .maximum = maximum,
    .fill = fill,
    .copy = copy,
    .gelu = gelu,
    .relu_backward = relu_backward,
    .gelu_backward = gelu_backward,
    .max = max,
    .exp_shift_sum = exp_shift_sum,
    .sum_sq_dev = sum_sq_dev,
    .accumulate = accumulate,
};

}  // namespace nl::NL_SIMD_NS
