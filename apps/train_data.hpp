// normlab apps: the data side of a training run. Images come from a shuffling DataLoader
// (drop_last, so every step sees a full batch); text as B random windows of T+1 characters
// (inputs the first T, targets the next T). Evaluation uses the held-out split: the test
// images, or the last 10% of the text.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/checkpoint.hpp"
#include "apps/run_common.hpp"
#include "apps/train_config.hpp"
#include "core/random.hpp"
#include "data/loader.hpp"

namespace nl::app {

// One step's batch: images, or token windows, with one target per prediction.
struct TrainBatch {
  Tensor images;                 // images: [B, C, H, W]; undefined for text
  std::vector<int32_t> ids;      // text: B*T input characters
  Shape ids_shape;               // text: {B, T}
  std::vector<int32_t> targets;  // images: B classes; text: B*T next characters
};

class TrainingData {
 public:
  // Loads cfg.dataset and completes cfg.model with what the data decides: the input shape
  // and classes (images) or the vocabulary size (text). `resolved`: a resumed run's saved
  // "resolved" block (its input statistics are reused exactly).
  // Data parallelism: rank `part` of `parts` trains on part `part` of every global batch of
  // parts * cfg.batch_size examples, so the parts together are the batches one process with
  // --batch-size parts * b draws (images: a DataLoader part; text: the same windows, sliced).
  TrainingData(TrainConfig& cfg, const nlohmann::json& resolved, int part = 0, int parts = 1);

  bool is_text() const { return text_; }
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  const char* unit() const { return text_ ? "tok" : "img"; }                    // for the progress line
  const char* items_name() const { return text_ ? "tokens" : "images"; }        // "<items>_per_second"

  TrainBatch next();

  // Mean loss and accuracy on the held-out split (test images / validation text).
  EvalResult evaluate(Model& model) const;

  // Where the batches are, for a checkpoint: epoch and batch (images) or the window
  // generator's state (text); restore() continues with exactly the batches that would have come.
  void save_position(TrainingPosition& pos) const;
  void restore(const TrainingPosition& pos);

  // Facts about the data for config.json's "resolved" block, summary.json and the log.
  nlohmann::json describe() const;
  nlohmann::json summary_fields() const;
  std::string describe_line() const;

 private:
  bool text_ = false;
  int64_t batch_size_, context_, val_batches_;
  int part_, parts_;
  int64_t steps_per_epoch_ = 1;

  ImageData images_;
  std::unique_ptr<data::DataLoader> loader_;
  TextData text_data_;
  Generator text_gen_;  // draws the text windows
  double unigram_ = 0.0;
};

}  // namespace nl::app
