// normlab core: numerical gradient check. See gradcheck.hpp.
#include "core/gradcheck.hpp"

#include <cmath>

#include <fmt/format.h>

#include "core/autograd.hpp"
#include "core/random.hpp"

namespace nl {

static double weighted_sum(const Tensor& y, const std::vector<float>& dy) {
  std::vector<float> v = y.to_vector();
  double f = 0.0;
  for (size_t i = 0; i < v.size(); ++i) f += static_cast<double>(dy[i]) * v[i];
  return f;
}

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  GradcheckResult result;
  for (const auto& t : inputs) {
    if (t.defined() && t.requires_grad()) Tensor(t).zero_grad();
  }
  Tensor y = fn(inputs);
  Generator gen(options.seed);
  Tensor dy = randn(y.shape(), gen);
  std::vector<float> dy_values = dy.to_vector();
  NL_CHECK(y.requires_grad(), "gradcheck: output does not require grad (no input has requires_grad set?)");
  y.backward(dy);

  int failures = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    NL_CHECK(x.is_contiguous(), "gradcheck: input ", k, " must be contiguous (perturbation writes its storage)");
    Tensor analytic = x.grad();
    std::vector<float> a = analytic.defined() ? analytic.to_vector() : std::vector<float>(x.numel(), 0.0f);
    const int64_t n = x.numel();
    const int64_t stride = std::max<int64_t>(1, n / options.max_checks);
    float* p = x.data();
    for (int64_t i = 0; i < n; i += stride) {
      const float saved = p[i];
      double f_plus, f_minus;
      {
        NoGradGuard no_grad;
        p[i] = static_cast<float>(saved + options.eps);
        f_plus = weighted_sum(fn(inputs), dy_values);
        p[i] = static_cast<float>(saved - options.eps);
        f_minus = weighted_sum(fn(inputs), dy_values);
        p[i] = saved;
      }
      const double numeric = (f_plus - f_minus) / (2.0 * options.eps);
      const double err = std::abs(numeric - a[i]);
      result.max_abs_error = std::max(result.max_abs_error, err);
      if (err > options.atol + options.rtol * std::abs(numeric)) {
        result.ok = false;
        if (failures++ < 8)
          result.report += fmt::format("input {} element {}: analytic {:.6g} numeric {:.6g}\n", k, i, a[i], numeric);
      }
    }
  }
  if (!result.ok) result.report = fmt::format("{} mismatches; max abs error {:.3g}\n", failures, result.max_abs_error) + result.report;
  return result;
}

}  // namespace nl
