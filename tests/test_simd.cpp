// Tests of the SIMD kernel tables (core/kernels): every kernel at every level this CPU
// supports against the scalar table, and the transcendentals against std:: in double.
//
// Tolerances: add/sub/mul/div/min/max/relu/copy/fill and the double sums must be
// bit-identical across levels (the sum order is fixed in the code). Transcendentals may
// differ by FMA contraction: <= 4 ulp between levels (2 for exp_shift_sum); against the exact (double) value:
// <= 3 ulp for exp/log, <= 4 ulp for tanh/sigmoid, <= 8 for gelu (float evaluation of the
// erfc polynomial); measured maxima are printed. gelu' cancels near its zero and is compared
// absolutely.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "core/kernels/kernels.hpp"
#include "core/ops.hpp"
#include "core/random.hpp"

using namespace nl;

namespace {

const std::vector<int64_t> kLengths = {0, 1, 7, 15, 16, 17, 1000};

std::vector<SimdLevel> levels() {
  std::vector<SimdLevel> out;
  for (SimdLevel l : {SimdLevel::scalar, SimdLevel::avx2, SimdLevel::avx512})
    if (l <= best_simd_level()) out.push_back(l);
  return out;
}

// Random values in [lo, hi), with a few extreme values sprinkled in when `extremes`.
std::vector<float> data(int64_t n, float lo, float hi, uint64_t seed, bool extremes = false) {
  Generator gen(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = gen.uniform(lo, hi);
  if (extremes) {
    const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-40f, 88.0f, -88.0f, 89.0f, -104.0f, -110.0f, 1e30f,
                             -1e30f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                             std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::max(),
                             std::numeric_limits<float>::min(), std::numeric_limits<float>::denorm_min()};
    for (int64_t i = 0; i < n; i += 5) v[i] = special[(i / 5) % std::size(special)];
  }
  return v;
}

// Distance in units in the last place between two floats (0 when both NaN or equal).
int64_t ulp_diff(float a, float b) {
  if (std::isnan(a) && std::isnan(b)) return 0;
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<int32_t>::max();
  if (a == b) return 0;
  auto key = [](float f) {  // monotonic integer order of floats
    const int32_t i = std::bit_cast<int32_t>(f);
    return i < 0 ? int64_t{std::numeric_limits<int32_t>::min()} - i : int64_t{i};
  };
  return std::abs(key(a) - key(b));
}

int64_t max_ulp(const std::vector<float>& a, const std::vector<float>& b) {
  int64_t m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, ulp_diff(a[i], b[i]));
  return m;
}

using Unary = void (*)(const float*, float*, int64_t);
using Binary = void (*)(const float*, const float*, float*, int64_t);

// y = f(x) by a table's unary kernel, or by gelu without the Phi(x) it can keep.
template <Unary KernelTable::*kernel>
void unary_of(const KernelTable& k, const float* x, float* y, int64_t n) {
  (k.*kernel)(x, y, n);
}
void gelu_only(const KernelTable& k, const float* x, float* y, int64_t n) { k.gelu(x, y, nullptr, n); }

}  // namespace

TEST_CASE("every SIMD level agrees with the scalar table", "[simd]") {
  const KernelTable& ref = kernels_for(SimdLevel::scalar);
  for (SimdLevel level : levels()) {
    const KernelTable& k = kernels_for(level);
    for (int64_t n : kLengths) {
      INFO("level " << simd_level_name(level) << " n " << n);
      const auto a = data(n, -5, 5, 1 + n, true), b = data(n, 0.5f, 3, 2 + n), pos = data(n, 1e-3f, 50, 3 + n);
      std::vector<float> want(n), got(n);

      // Exact kernels: bit-identical.
      for (auto [name, f, g] : std::vector<std::tuple<const char*, Binary, Binary>>{
               {"add", ref.add, k.add}, {"sub", ref.sub, k.sub}, {"mul", ref.mul, k.mul},
               {"div", ref.div, k.div}, {"maximum", ref.maximum, k.maximum}, {"relu_backward", ref.relu_backward, k.relu_backward}}) {
        INFO(name);
        f(a.data(), b.data(), want.data(), n);
        g(a.data(), b.data(), got.data(), n);
        REQUIRE(max_ulp(want, got) == 0);
      }
      using ScalarK = void (*)(const float*, float, float*, int64_t);
      for (auto [name, f, g] : std::vector<std::tuple<const char*, ScalarK, ScalarK>>{
               {"add_scalar", ref.add_scalar, k.add_scalar}, {"sub_scalar", ref.sub_scalar, k.sub_scalar},
               {"mul_scalar", ref.mul_scalar, k.mul_scalar}, {"div_scalar", ref.div_scalar, k.div_scalar},
               {"rsub_scalar", ref.rsub_scalar, k.rsub_scalar}, {"rdiv_scalar", ref.rdiv_scalar, k.rdiv_scalar}}) {
        INFO(name);
        f(a.data(), 1.7f, want.data(), n);
        g(a.data(), 1.7f, got.data(), n);
        REQUIRE(max_ulp(want, got) == 0);
      }
      ref.relu(a.data(), want.data(), n);
      k.relu(a.data(), got.data(), n);
      REQUIRE(max_ulp(want, got) == 0);
      k.copy(a.data(), got.data(), n);
      REQUIRE(max_ulp(a, got) == 0);
      k.fill(got.data(), 2.5f, n);
      REQUIRE(std::all_of(got.begin(), got.end(), [](float v) { return v == 2.5f; }));
      const double sa_ref = ref.sum(a.data(), n), sa = k.sum(a.data(), n);  // a holds inf and NaN
      REQUIRE((sa == sa_ref || (std::isnan(sa) && std::isnan(sa_ref))));
      REQUIRE(k.sum(b.data(), n) == ref.sum(b.data(), n));
      REQUIRE(k.dot(b.data(), pos.data(), n) == ref.dot(b.data(), pos.data(), n));
      REQUIRE(k.sum_sq_dev(b.data(), 1.5f, n) == ref.sum_sq_dev(b.data(), 1.5f, n));
      REQUIRE(k.max(b.data(), n) == ref.max(b.data(), n));
      std::vector<double> acc_want(n, 1.0), acc_got(n, 1.0);
      ref.accumulate(b.data(), acc_want.data(), n);
      k.accumulate(b.data(), acc_got.data(), n);
      REQUIRE(acc_want == acc_got);

      // axpy may be contracted into an FMA: within an ulp of the scalar result.
      std::vector<float> y1 = pos, y2 = pos;
      ref.axpy(0.3f, b.data(), y1.data(), n);
      k.axpy(0.3f, b.data(), y2.data(), n);
      REQUIRE(max_ulp(y1, y2) <= 1);

      // Transcendentals: within 4 ulp of the scalar table, also on extreme inputs.
      for (auto [name, f, g] : std::vector<std::tuple<const char*, Unary, Unary>>{
               {"exp", ref.exp, k.exp}, {"log", ref.log, k.log}, {"tanh", ref.tanh, k.tanh},
               {"sigmoid", ref.sigmoid, k.sigmoid}}) {
        INFO(name);
        f(a.data(), want.data(), n);
        g(a.data(), got.data(), n);
        REQUIRE(max_ulp(want, got) <= 4);
      }
      // gelu and the Phi(x) it keeps; the same values when it does not keep them.
      std::vector<float> cdf_want(n), cdf_got(n), no_cdf(n);
      ref.gelu(a.data(), want.data(), cdf_want.data(), n);
      k.gelu(a.data(), got.data(), cdf_got.data(), n);
      REQUIRE(max_ulp(want, got) <= 4);
      REQUIRE(max_ulp(cdf_want, cdf_got) <= 4);
      k.gelu(a.data(), no_cdf.data(), nullptr, n);
      REQUIRE(max_ulp(got, no_cdf) == 0);
      // gelu' = Phi(x) + x phi(x) cancels near its zero at x ~ -0.75: compare absolutely.
      ref.gelu_backward(a.data(), cdf_want.data(), b.data(), want.data(), n);
      k.gelu_backward(a.data(), cdf_got.data(), b.data(), got.data(), n);
      for (int64_t i = 0; i < n; ++i)
        if (!std::isnan(want[i]) || !std::isnan(got[i])) REQUIRE(std::abs(want[i] - got[i]) <= 1e-6f * std::abs(b[i]));
      const double s1 = ref.exp_shift_sum(b.data(), 1.0f, want.data(), n);
      const double s2 = k.exp_shift_sum(b.data(), 1.0f, got.data(), n);
      REQUIRE(max_ulp(want, got) <= 2);
      REQUIRE(s1 == Approx(s2).epsilon(1e-6));
    }
  }
}

TEST_CASE("transcendental kernels are within a few ulp of std:: in double", "[simd]") {
  // Dense sweeps over each function's interesting range, plus special values.
  struct Case {
    const char* name;
    void (*run)(const KernelTable&, const float* x, float* y, int64_t n);
    double (*exact)(double);
    float lo, hi;
    int64_t max_ulp;
  };
  const std::vector<Case> cases = {
      {"exp", unary_of<&KernelTable::exp>, [](double x) { return std::exp(x); }, -103.0f, 88.7f, 3},
      {"log", unary_of<&KernelTable::log>, [](double x) { return std::log(x); }, 1e-37f, 1e37f, 3},
      {"log near 1", unary_of<&KernelTable::log>, [](double x) { return std::log(x); }, 0.5f, 2.0f, 3},
      {"tanh", unary_of<&KernelTable::tanh>, [](double x) { return std::tanh(x); }, -10.0f, 10.0f, 4},
      {"tanh small", unary_of<&KernelTable::tanh>, [](double x) { return std::tanh(x); }, -1.0f, 1.0f, 4},
      {"sigmoid", unary_of<&KernelTable::sigmoid>, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, -80.0f, 30.0f, 4},
      {"gelu", gelu_only, [](double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }, -12.0f, 12.0f, 8},
  };
  const int64_t n = 200000;
  for (SimdLevel level : levels()) {
    for (const Case& c : cases) {
      std::vector<float> x(n), got(n);
      for (int64_t i = 0; i < n; ++i) {
        // log-spaced for log's wide range, linear otherwise
        const double t = static_cast<double>(i) / (n - 1);
        x[i] = std::string(c.name) == "log" ? static_cast<float>(std::exp(std::log(c.lo) + t * (std::log(c.hi) - std::log(c.lo))))
                                            : static_cast<float>(c.lo + t * (c.hi - c.lo));
      }
      c.run(kernels_for(level), x.data(), got.data(), n);
      int64_t worst = 0;
      float worst_x = 0;
      for (int64_t i = 0; i < n; ++i) {
        const float want = static_cast<float>(c.exact(x[i]));
        // Results below FLT_MIN are denormal: count error in units of the smallest denormal.
        const int64_t u = std::abs(want) < 1.17549435e-38f ? static_cast<int64_t>(std::abs(want - got[i]) / 1.4e-45f)
                                                            : ulp_diff(want, got[i]);
        if (u > worst) worst = u, worst_x = x[i];
      }
      std::printf("%-7s %-11s max error %lld ulp (at x = %g)\n", simd_level_name(level), c.name,
                  static_cast<long long>(worst), worst_x);
      INFO(c.name << " at " << simd_level_name(level) << ": worst x = " << worst_x);
      REQUIRE(worst <= c.max_ulp);
    }
  }
}

TEST_CASE("transcendental kernels handle inf, NaN, overflow and underflow like std::", "[simd]") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {inf, -inf, nan, 0.0f, -0.0f, 89.0f, 1000.0f, -104.0f, -1000.0f, 1e-40f, -1.0f};
  const int64_t n = static_cast<int64_t>(x.size());
  for (SimdLevel level : levels()) {
    INFO(simd_level_name(level));
    const KernelTable& k = kernels_for(level);
    std::vector<float> y(n);
    k.exp(x.data(), y.data(), n);
    CHECK(y[0] == inf);
    CHECK(y[1] == 0.0f);
    CHECK(std::isnan(y[2]));
    CHECK(y[3] == 1.0f);
    CHECK(y[5] == inf);
    CHECK(y[6] == inf);
    CHECK(y[7] == Approx(std::exp(-104.0)).margin(2e-45));  // denormal, not flushed
    CHECK(y[8] == 0.0f);
    k.log(x.data(), y.data(), n);
    CHECK(y[0] == inf);
    CHECK(std::isnan(y[1]));
    CHECK(std::isnan(y[2]));
    CHECK(y[3] == -inf);
    CHECK(y[4] == -inf);
    CHECK(ulp_diff(y[9], static_cast<float>(std::log(1e-40))) <= 2);  // denormal input
    CHECK(std::isnan(y[10]));
    k.tanh(x.data(), y.data(), n);
    CHECK(y[0] == 1.0f);
    CHECK(y[1] == -1.0f);
    CHECK(std::isnan(y[2]));
    CHECK(y[3] == 0.0f);
    CHECK(y[6] == 1.0f);
    CHECK(y[8] == -1.0f);
    k.sigmoid(x.data(), y.data(), n);
    CHECK(y[0] == 1.0f);
    CHECK(y[1] == 0.0f);
    CHECK(std::isnan(y[2]));
    CHECK(y[3] == 0.5f);
    CHECK(y[8] == 0.0f);
    k.gelu(x.data(), y.data(), nullptr, n);
    CHECK(y[0] == inf);
    CHECK(std::isnan(y[2]));
    CHECK(y[3] == 0.0f);
    CHECK(y[6] == 1000.0f);
    CHECK(y[8] == 0.0f);  // -1000 * Phi(-1000): -0 or 0
  }
}

TEST_CASE("whole ops give the same results at the scalar and the best SIMD level", "[simd]") {
  Generator gen(3);
  Tensor x = mul(randn({37, 129}, gen), 4.0f);
  Tensor b = randn({129}, gen);
  const SimdLevel saved = simd_level();
  auto run = [&] {
    std::vector<std::vector<float>> r;
    r.push_back(softmax(x, 1).to_vector());
    r.push_back(log_softmax(x, 0).to_vector());
    r.push_back(gelu(x).to_vector());
    r.push_back(add(x, b).to_vector());
    r.push_back(sum(x, {0}).to_vector());
    r.push_back(var(x, {1}).to_vector());
    return r;
  };
  set_simd_level(SimdLevel::scalar);
  const auto scalar = run();
  set_simd_level(best_simd_level());
  const auto best = run();
  set_simd_level(saved);
  for (size_t i = 0; i < scalar.size(); ++i) {
    INFO("result " << i);
    REQUIRE(max_ulp(scalar[i], best[i]) <= 4);
  }
  REQUIRE(scalar[3] == best[3]);  // add: exact
  REQUIRE(scalar[4] == best[4]);  // sum: fixed order, exact
}
