// normlab apps: what a training run writes to its directory (layout in run_dir.hpp), and
// the running totals it keeps for them. All of a run's writing goes through RunRecord, so
// a data-parallel run can let one worker (rank 0) write and the others skip it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "apps/checkpoint.hpp"
#include "apps/run_common.hpp"
#include "apps/run_dir.hpp"
#include "apps/train_config.hpp"
#include "apps/train_data.hpp"
#include "layers/models/model.hpp"
#include "optim/optimizer.hpp"

namespace nl::app {

// What a run has counted so far. It all goes into the checkpoint, so a resumed run
// continues the same totals (and the same half-filled logging window).
struct RunTotals {
  struct Window {  // the steps since the last metrics.csv row
    double loss_sum = 0.0;
    int64_t correct = 0, predictions = 0, steps = 0;
    double mean_loss() const { return loss_sum / steps; }
    double accuracy() const { return static_cast<double>(correct) / std::max<int64_t>(1, predictions); }
  };
  int64_t step = 0;              // completed optimizer updates
  int64_t items = 0;             // images/tokens trained on
  double seconds_before = 0.0;   // run time before this process started (a resumed run)
  double train_seconds = 0.0;    // time in training steps only (for throughput)
  double last_window_loss = NAN; // the last metrics.csv row's loss
  Window window;
  int64_t last_eval_step = -1;
  EvalResult last_eval;
};

class RunRecord {
 public:
  // writer = false (ranks 1.. of a data-parallel run): every write is skipped, the
  // returned JSON is still built, and reading (load_checkpoint) works as usual.
  explicit RunRecord(std::string dir, bool writer = true) : dir_(std::move(dir)), writer_(writer) {}
  bool writer() const { return writer_; }
  const std::string& dir() const { return dir_; }
  std::string checkpoint_path() const { return dir_ + "/train_state.safetensors"; }

  // config.json: every option, plus a "resolved" block of what the run decided (data
  // statistics, sizes, SIMD level, threads). Returns what it wrote.
  nlohmann::json write_config(const TrainConfig& cfg, const TrainingData& data, const Model& model,
                              int64_t total_steps, const nlohmann::json& distributed);

  // metrics.csv and eval.csv: fresh, or those of a resumed run cut back to its checkpoint's step.
  void open_logs(bool resume, int64_t step);
  void log_window(const RunTotals& totals, double epoch, double lr, double seconds);
  void log_eval(const RunTotals& totals, double epoch);

  // train_state.safetensors (model, optimizer, data position, totals) and model.safetensors.
  void save_checkpoint(Model& model, Optimizer& optimizer, const TrainingData& data, const RunTotals& totals,
                       double seconds, const nlohmann::json& config) const;
  // Restores model, optimizer and data position; returns the totals.
  RunTotals load_checkpoint(Model& model, Optimizer& optimizer, TrainingData& data) const;

  // summary.json: the outcome, with the last evaluation (for a run that stopped early, the
  // one before it stopped, with its step). Returns what it wrote.
  nlohmann::json write_summary(const std::string& status, const TrainConfig& cfg, const TrainingData& data,
                               const RunTotals& totals, double seconds,
                               const nlohmann::json& extra = nlohmann::json::object()) const;

 private:
  std::string dir_;
  bool writer_;
  CsvLog metrics_, evals_;
};

}  // namespace nl::app
