// normlab apps: what train, eval and sample share: building a run's data and model from
// its config, evaluating a model on a dataset, and the unigram baseline of a text.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/train_config.hpp"
#include "data/dataset.hpp"
#include "data/text_corpus.hpp"
#include "data/transforms.hpp"
#include "layers/models/model.hpp"

namespace nl::app {

// Images: train/test split (train cut to cfg.subset) and the input normalization, whose
// statistics come from the training images (or from `saved`, a run's config.json "resolved").
struct ImageData {
  data::DatasetSplit split;
  data::Normalization normalization;
};
ImageData load_image_data(const TrainConfig& cfg, const nlohmann::json& saved = {});
// The augmentation the run trained with (--augment: pad-4 random crop + flip, else none).
// Precise BN re-estimates the statistics on these images too: they are what the running
// statistics averaged and what the weights after each norm were trained on.
data::Augmentation training_augmentation(const TrainConfig& cfg);

// Text: the corpus (vocabulary from the whole text) and the training ids (cut to cfg.subset).
struct TextData {
  data::TextCorpus corpus;
  std::vector<int32_t> train_ids;
};
TextData load_text_data(const TrainConfig& cfg);

// make_model with errors reported as UsageError (they come from the options).
std::shared_ptr<Model> build_model(const ModelOptions& model, const NormOptions& norm);

struct EvalResult {
  double loss = 0.0, accuracy = 0.0;
  int64_t count = 0;  // examples (images) or predicted tokens
};

// Mean cross-entropy and accuracy over the whole dataset, in eval mode (running statistics)
// unless `batch_statistics`: then in training mode with every buffer restored afterwards,
// so evaluation never changes the model.
EvalResult evaluate_images(Model& model, const data::ImageDataset& ds, const data::Normalization& norm,
                           int64_t batch_size, bool batch_statistics = false);

// Next-character loss and accuracy on consecutive windows of `ids` (up to max_batches
// batches of batch x seq_len windows), in eval mode.
EvalResult evaluate_text(Model& model, const std::vector<int32_t>& ids, int64_t batch, int64_t seq_len,
                         int64_t max_batches);

// Entropy (nats) of the character frequencies of `ids`: the loss of a model that ignores
// context. A language model must beat it to have learned anything beyond letter counts.
double unigram_entropy(const std::vector<int32_t>& ids, int32_t vocab_size);

// Index of the largest value in each row of a [rows, cols] tensor's data.
int64_t count_correct(const Tensor& logits, const std::vector<int32_t>& targets);

// Every Dropout in the model switched to eval mode (after model.train(), to get batch
// statistics without dropout noise).
void disable_dropout(Module& model);

}  // namespace nl::app
