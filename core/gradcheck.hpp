// normlab core: numerical gradient check.
//
// For an op y = fn(inputs) and a fixed random dY, the scalar f = sum(dY * y) has
//   df/dx = the analytic gradient autograd computes from backward(dY),
// and, numerically, by central differences:  (f(x + eps) - f(x - eps)) / (2 eps),
// one element at a time, with f accumulated in double. Every input that requires grad is
// checked (parameters are just more inputs). float32 forward passes limit accuracy: with
// eps = 1e-3 the numerical estimate is good to ~1e-3 relative, hence the default tolerances.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace nl {

struct GradcheckOptions {
  double eps = 1e-3;
  double atol = 2e-3;
  double rtol = 2e-2;
  uint64_t seed = 1234;     // for dY
  int64_t max_checks = 256; // elements checked per input (evenly spread); the rest are skipped
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0.0;
  std::string report;  // first mismatches: input index, element, analytic, numeric
};

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace nl
