// normlab optim: learning-rate schedules. See schedule.hpp for the formulas.
#include "optim/schedule.hpp"

#include <algorithm>
#include <cmath>

#include "core/tensor.hpp"

namespace nl {

std::vector<std::string> schedule_names() { return {"constant", "step", "cosine"}; }

void validate_schedule(const ScheduleOptions& o) {
  const auto names = schedule_names();
  NL_CHECK(std::find(names.begin(), names.end(), o.name) != names.end(), "unknown schedule '", o.name,
           "' (choose one of: constant, step, cosine)");
  NL_CHECK(std::isfinite(o.base_lr) && o.base_lr >= 0.0f, "learning rate must be >= 0, got ", o.base_lr);
  NL_CHECK(o.warmup_steps >= 0, "warm-up steps must be >= 0, got ", o.warmup_steps);
  if (o.name == "step") {
    NL_CHECK(o.step_size > 0, "the step schedule needs a step size > 0, got ", o.step_size);
    NL_CHECK(o.gamma > 0.0f && std::isfinite(o.gamma), "the step schedule needs gamma > 0, got ", o.gamma);
  }
  if (o.name == "cosine") {
    NL_CHECK(o.total_steps > 0, "the cosine schedule needs the total number of steps, got ", o.total_steps);
    NL_CHECK(o.min_lr >= 0.0f && o.min_lr <= o.base_lr, "cosine min_lr must be in [0, lr], got ", o.min_lr);
  }
}

float schedule_lr(const ScheduleOptions& o, int64_t step) {
  if (step < o.warmup_steps)
    return o.base_lr * static_cast<float>(step + 1) / static_cast<float>(o.warmup_steps);
  const int64_t t = step - o.warmup_steps;
  if (o.name == "step") return o.base_lr * std::pow(o.gamma, static_cast<float>(t / o.step_size));
  if (o.name == "cosine") {
    const int64_t span = std::max<int64_t>(1, o.total_steps - o.warmup_steps);
    const double progress = std::min(1.0, static_cast<double>(t) / static_cast<double>(span));
    const double c = 0.5 * (1.0 + std::cos(M_PI * progress));
    return static_cast<float>(o.min_lr + (o.base_lr - o.min_lr) * c);
  }
  return o.base_lr;  // constant
}

}  // namespace nl
