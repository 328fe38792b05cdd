// normlab apps: optimizer and schedule of a run. See train_setup.hpp.
#include "apps/train_setup.hpp"

#include <algorithm>
#include <vector>

namespace nl::app {

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& c, const Module& model) {
  // Two groups so biases and norm gains/shifts (the 1-D parameters) can skip weight decay:
  // decaying a BN gain towards 0 fights the normalization rather than regularizing.
  ParamGroup decay{{}, c.weight_decay}, no_decay{{}, 0.0f};
  for (auto& [name, p] : model.named_parameters())
    (c.no_decay_norm_bias && p.dim() <= 1 ? no_decay : decay).params.push_back(p);
  std::vector<ParamGroup> groups{decay};
  if (!no_decay.params.empty()) groups.push_back(no_decay);
  if (c.optimizer == "sgd") return std::make_unique<SGD>(groups, SGDOptions{c.lr, c.momentum_sgd, c.nesterov});
  AdamOptions o;
  o.lr = c.lr;
  o.decoupled_weight_decay = c.optimizer == "adamw";
  return std::make_unique<Adam>(groups, o);
}

ScheduleOptions make_schedule(const TrainConfig& cfg, int64_t total_steps) {
  ScheduleOptions s = cfg.schedule;
  s.base_lr = cfg.lr;
  s.total_steps = total_steps;
  if (s.name == "step" && s.step_size == 0) s.step_size = std::max<int64_t>(1, total_steps / 3);
  try {
    validate_schedule(s);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  return s;
}

}  // namespace nl::app
