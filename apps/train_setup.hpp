// normlab apps: how a run trains, made from its options: the optimizer (with or without
// weight decay on the 1-D parameters) and the learning-rate schedule. (The model comes from
// build_model in run_common.hpp, shared with eval and sample.)
#pragma once

#include <cstdint>
#include <memory>

#include "apps/train_config.hpp"
#include "layers/module.hpp"
#include "optim/optimizer.hpp"
#include "optim/schedule.hpp"

namespace nl::app {

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& cfg, const Module& model);

// cfg.schedule over total_steps, peaking at cfg.lr; a step schedule without --step-size
// decays every third of the run. Throws UsageError for a schedule that cannot work.
ScheduleOptions make_schedule(const TrainConfig& cfg, int64_t total_steps);

}  // namespace nl::app
