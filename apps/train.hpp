// normlab apps: one training run, as a function (the `train` command calls it once; a
// future `sweep` command calls it per configuration).
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
// Determinism: the image batches are a pure function of (seed, epoch, batch index) (see
// data/loader.hpp); the text windows come from a Generator whose state is checkpointed; so
// are the model's dropout Generator, the optimizer state and the running statistics. With
// the same thread count, a run resumed from any checkpoint ends with the same bits as one
// that never stopped.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/tensor.hpp"
#include "layers/models/model.hpp"
#include "layers/norm/factory.hpp"
#include "optim/schedule.hpp"

namespace nl::app {

// An error in the configuration (exit code 2), as opposed to a failure while running.
struct UsageError : Error {
  using Error::Error;
};

struct TrainConfig {
  // Data.
  std::string dataset = "fashion-mnist";  // mnist | fashion-mnist | cifar10 | text:PATH | folder:PATH
  std::string data_dir;                   // "" = $NORMLAB_DATA_DIR, else ./data
  int64_t subset = 0;                     // > 0: only the first K training examples (characters for text)
  std::string input_norm = "standardize"; // images: standardize | unit | minmax
  bool augment = false;                   // images: pad-4 random crop + horizontal flip
  int64_t classes_per_batch = 0;          // images: > 0 = every batch from exactly K classes (non-i.i.d.)

  // Model (ModelOptions::name, width, depth, ... ; input shape and classes come from the data).
  ModelOptions model = default_model_options();
  NormOptions norm = default_norm_options();

  // Optimization.
  int64_t batch_size = 32;
  int64_t epochs = 1;
  int64_t steps = 0;                      // > 0 overrides epochs
  std::string optimizer = "sgd";          // sgd | adam | adamw
  float lr = 0.05f;
  float momentum_sgd = 0.9f;
  bool nesterov = false;
  float weight_decay = 0.0f;
  bool no_decay_norm_bias = false;        // no weight decay on 1-D parameters (biases, norm gains)
  ScheduleOptions schedule;               // name, warmup_steps, step_size, gamma, min_lr
  float clip_grad_norm = 0.0f;            // 0 = off
  bool check_grads = false;               // stop when a gradient is NaN/Inf

  // Run.
  uint64_t seed = 0;
  int threads = 0;                        // 0 = hardware concurrency
  std::string out;                        // "" = runs/<dataset>-<model>-<norm>-s<seed>
  bool overwrite = false;                 // allow a fresh run into a directory holding a run
  bool eval_every_epoch = false;          // images: test accuracy after every epoch
  int64_t eval_every = 0;                 // text: validation every N steps (0 = every epoch)
  int64_t val_batches = 20;               // text: validation batches per evaluation
  int64_t checkpoint_every = 0;           // steps between checkpoints (0 = each epoch); always at the end
  int64_t log_every = 0;                  // steps per metrics.csv row / log line (0 = auto: ~250 rows, <= 50 apart)

  // Testing only: after this many steps, exit the process at once (like `kill -9`).
  int64_t simulate_kill_at_step = 0;

  static ModelOptions default_model_options();
  static NormOptions default_norm_options();
};

nlohmann::json config_to_json(const TrainConfig& cfg);
TrainConfig config_from_json(const nlohmann::json& j);  // throws nl::Error naming a bad field

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

// The directory a run writes to when --out is not given.
std::string default_out_dir(const TrainConfig& cfg);

}  // namespace nl::app
