// normlab apps: one training run, as a function (the `train` command calls it; `sweep` runs
// `normlab train` child processes).
//
//   TrainConfig cfg;  cfg.dataset = "mnist"; cfg.model.name = "cnn"; cfg.norm.name = "bn";
//   cfg.out = "runs/cnn-bn";
//   RunResult r = train_run(cfg);          // r.status: "ok", "diverged at step 17", "interrupted"
//
// What a run writes to cfg.out is described in run_dir.hpp. Setup problems the user can fix
// (unknown norm, groups that do not divide the channels, an existing run directory) throw
// UsageError; problems with files (missing dataset, corrupt checkpoint) throw nl::Error;
// the outcome of the training itself (including divergence) is returned, not thrown, so a
// sweep records it and goes on.
//
// The run's code, by job (the loop in train.cpp reads top to bottom as the list below):
//   train_config.*   the options, their defaults, config.json, validation
//   train_data.*     the training batches (images or text windows) and the held-out evaluation
//   train_setup.*    model, optimizer and learning-rate schedule from the options
//   train_step.*     one optimizer step: forward, loss, backward, gradient checks, update
//   run_record.*     everything written to the run directory: config, logs, checkpoints, summary
//
// Determinism: the image batches are a pure function of (seed, epoch, batch index) (see
// data/loader.hpp); the text windows come from a Generator whose state is checkpointed; so
// are the model's dropout Generator, the optimizer state and the running statistics. With
// the same thread count, a run resumed from any checkpoint ends with the same bits as one
// that never stopped.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "apps/train_config.hpp"

namespace nl::app {

struct RunResult {
  std::string status;  // "ok" | "diverged at step N" | "interrupted"
  int exit_code = 0;   // 0 ok, 3 diverged, 130 interrupted
  std::string out;     // the run directory
  nlohmann::json summary;
};

// A fresh run into cfg.out.
RunResult train_run(const TrainConfig& cfg);

// Continue the run in `dir` from its last checkpoint (from scratch if it has none yet).
// threads / data_dir: overrides (0 / "" = as saved). Bit-identical only with the same threads.
RunResult resume_run(const std::string& dir, int threads = 0, const std::string& data_dir = "");

}  // namespace nl::app
