// normlab apps: the options of one training run (TrainConfig), their defaults, their
// config.json form and their validation. `normlab train` fills one from its flags
// (train_cli.cpp), `normlab sweep` builds its runs' flags from the same defaults (sweep.cpp),
// `eval`, `sample` and `--resume` read one back from a run's config.json.
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

// Defaults that `normlab sweep` shares: its --base-lr is train's --lr at train's --batch-size
// (its --base-batch), so a sweep run at the base batch trains exactly like a plain `train`.
inline constexpr double kDefaultLr = 0.05;
inline constexpr int64_t kDefaultBatchSize = 32;
inline constexpr const char* kDefaultDataset = "fashion-mnist";
inline constexpr const char* kDefaultModel = "cnn";

struct TrainConfig {
  // Data.
  std::string dataset = kDefaultDataset;  // mnist | fashion-mnist | cifar10 | text:PATH | folder:PATH
  std::string data_dir;                   // "" = $NORMLAB_DATA_DIR, else ./data
  int64_t subset = 0;                     // > 0: only the first K training examples (characters for text)
  std::string input_norm = "standardize"; // images: standardize | unit | minmax
  bool augment = false;                   // images: pad-4 random crop + horizontal flip
  int64_t classes_per_batch = 0;          // images: > 0 = every batch from exactly K classes (non-i.i.d.)

  // Model (ModelOptions::name, width, depth, ... ; input shape and classes come from the data).
  ModelOptions model = default_model_options();
  NormOptions norm = default_norm_options();

  // Optimization.
  int64_t batch_size = kDefaultBatchSize;
  int64_t epochs = 1;
  int64_t steps = 0;                      // > 0 overrides epochs
  std::string optimizer = "sgd";          // sgd | adam | adamw
  float lr = static_cast<float>(kDefaultLr);
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
  bool diagnostics = false;               // norm-layer diagnostics.csv (train_diagnostics.hpp)
  int64_t diagnostics_every = 0;          // steps between diagnostics rows (0 = log_every)
  std::string diagnostics_layers;         // comma list of norm layer paths or indices ("" = all)

  // Testing only: after this many steps, exit the process at once (like `kill -9`).
  int64_t simulate_kill_at_step = 0;
  int simulate_kill_rank = -1;            // data parallel: only this rank exits (-1 = every rank)

  static ModelOptions default_model_options();
  static NormOptions default_norm_options();
};

nlohmann::json config_to_json(const TrainConfig& cfg);
TrainConfig config_from_json(const nlohmann::json& j);  // throws nl::Error naming a bad field

// The directory a run writes to when --out is not given.
std::string default_out_dir(const TrainConfig& cfg);

// Throws UsageError naming the first option that is out of range or does not fit the others
// (a text dataset with an image model, ...).
void validate_config(const TrainConfig& cfg);

}  // namespace nl::app
