// normlab optim: learning-rate schedules, as pure functions of the step number.
//
// A schedule maps the index of the update about to happen (step 0 is the first update)
// to a learning rate. Being a pure function of the step is what makes resume exact: a
// resumed run needs no schedule state, only the step it stopped at.
//
//   warm-up  (optional, any schedule)  lr(s) = base * (s + 1) / W          for s < W
//   then, with t = s - W and T = total - W (steps after warm-up):
//   constant  lr = base
//   step      lr = base * gamma ^ floor(t / step_size)    (PyTorch's StepLR, counted in steps)
//   cosine    lr = min + (base - min) * (1 + cos(pi * t / T)) / 2   (SGDR without restarts)
//
// Why warm-up: in the first steps the gradient statistics (and, for BN, the running
// statistics) are far from their later values; a full-size step then can blow a network
// up, especially without normalization or with large batches.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nl {

struct ScheduleOptions {
  std::string name = "constant";  // constant | step | cosine
  float base_lr = 0.1f;
  int64_t total_steps = 0;        // cosine: the step where lr reaches min_lr
  int64_t warmup_steps = 0;       // 0 = no warm-up
  int64_t step_size = 0;          // step: decay every step_size steps (> 0)
  float gamma = 0.1f;             // step: decay factor
  float min_lr = 0.0f;            // cosine: final learning rate
};

std::vector<std::string> schedule_names();

// Throws nl::Error naming the bad option (unknown name, step_size <= 0 for step, ...).
void validate_schedule(const ScheduleOptions& options);

// The learning rate for update number `step` (0-based). Steps past total_steps keep the
// cosine schedule's final value.
float schedule_lr(const ScheduleOptions& options, int64_t step);

}  // namespace nl
