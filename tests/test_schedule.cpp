// Tests for optim/schedule: learning rates at known steps, with and without warm-up.
#include <catch2/catch.hpp>

#include "optim/schedule.hpp"
#include "core/tensor.hpp"

using namespace nl;

TEST_CASE("constant schedule is flat", "[schedule]") {
  ScheduleOptions o{.name = "constant", .base_lr = 0.05f};
  for (int64_t s : {0, 1, 100, 100000}) CHECK(schedule_lr(o, s) == 0.05f);
}

TEST_CASE("linear warm-up reaches the base rate at step W-1", "[schedule]") {
  ScheduleOptions o{.name = "constant", .base_lr = 1.0f, .warmup_steps = 4};
  CHECK(schedule_lr(o, 0) == Approx(0.25f));
  CHECK(schedule_lr(o, 1) == Approx(0.5f));
  CHECK(schedule_lr(o, 3) == Approx(1.0f));
  CHECK(schedule_lr(o, 4) == Approx(1.0f));
}

TEST_CASE("step schedule multiplies by gamma every step_size steps", "[schedule]") {
  ScheduleOptions o{.name = "step", .base_lr = 1.0f, .step_size = 10, .gamma = 0.5f};
  CHECK(schedule_lr(o, 0) == Approx(1.0f));
  CHECK(schedule_lr(o, 9) == Approx(1.0f));
  CHECK(schedule_lr(o, 10) == Approx(0.5f));
  CHECK(schedule_lr(o, 25) == Approx(0.25f));
  // With warm-up the decay counts from the end of warm-up.
  o.warmup_steps = 5;
  CHECK(schedule_lr(o, 14) == Approx(1.0f));
  CHECK(schedule_lr(o, 15) == Approx(0.5f));
}

TEST_CASE("cosine schedule: base at start, half-way value, min at the end", "[schedule]") {
  ScheduleOptions o{.name = "cosine", .base_lr = 1.0f, .total_steps = 100, .min_lr = 0.0f};
  CHECK(schedule_lr(o, 0) == Approx(1.0f));
  CHECK(schedule_lr(o, 50) == Approx(0.5f));
  CHECK(schedule_lr(o, 100) == Approx(0.0f).margin(1e-7));
  CHECK(schedule_lr(o, 1000) == Approx(0.0f).margin(1e-7));  // stays at the floor
  o.warmup_steps = 20;  // cosine over the 80 steps after warm-up
  CHECK(schedule_lr(o, 9) == Approx(0.5f));
  CHECK(schedule_lr(o, 20) == Approx(1.0f));
  CHECK(schedule_lr(o, 60) == Approx(0.5f));
}

TEST_CASE("bad schedule options are rejected with a message", "[schedule]") {
  CHECK_THROWS_WITH(validate_schedule({.name = "linear"}), Catch::Contains("unknown schedule 'linear'"));
  CHECK_THROWS_WITH(validate_schedule({.name = "step", .step_size = 0}), Catch::Contains("step size"));
  CHECK_THROWS_WITH(validate_schedule({.name = "cosine", .total_steps = 0}), Catch::Contains("total number"));
  CHECK_THROWS_WITH(validate_schedule({.name = "constant", .base_lr = -1.0f}), Catch::Contains(">= 0"));
  CHECK_NOTHROW(validate_schedule({.name = "cosine", .total_steps = 10, .warmup_steps = 2}));
}
