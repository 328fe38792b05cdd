// normlab apps: the training batches and the held-out evaluation of a run. See train_data.hpp.
#include "apps/train_data.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "data/class_batches.hpp"
#include "data/registry.hpp"

namespace nl::app {

TrainingData::TrainingData(TrainConfig& cfg, const nlohmann::json& resolved, int part, int parts)
    : text_(data::is_text_dataset(cfg.dataset)),
      batch_size_(cfg.batch_size),
      context_(cfg.model.context),
      val_batches_(cfg.val_batches),
      part_(part),
      parts_(parts) {
  const int64_t global_batch = parts * cfg.batch_size;
  if (text_) {
    text_data_ = load_text_data(cfg);
    const int64_t T = cfg.model.context;
    NL_CHECK(static_cast<int64_t>(text_data_.train_ids.size()) > T, "the training text of ", cfg.dataset, " has ",
             text_data_.train_ids.size(), " characters, fewer than one window of --context ", T, " + 1");
    cfg.model.vocab_size = text_data_.corpus.vocab_size();
    steps_per_epoch_ = std::max<int64_t>(1, static_cast<int64_t>(text_data_.train_ids.size()) / (global_batch * T));
    text_gen_.manual_seed(data::mix_seed(cfg.seed, 0x74657874));  // "text": its own stream
    unigram_ = unigram_entropy(text_data_.train_ids, text_data_.corpus.vocab_size());
    return;
  }
  images_ = load_image_data(cfg, resolved);
  const auto& train = images_.split.train;
  cfg.model.input_shape = train.image_shape();
  cfg.model.num_classes = train.num_classes;
  if (train.n < global_batch)
    throw UsageError(fmt::format("--batch-size {}{} is larger than the training set ({} images{})", global_batch,
                                 parts > 1 ? fmt::format(" ({} ranks x {})", parts, cfg.batch_size) : "", train.n,
                                 cfg.subset ? " after --subset" : ""));
  if (cfg.classes_per_batch > 0) {
    try {
      data::check_classes_per_batch(cfg.classes_per_batch, train.num_classes, global_batch);
    } catch (const Error& e) {
      throw UsageError(fmt::format("--classes-per-batch: {}", e.what()));
    }
  }
  // drop_last: every step sees a full batch, so batch statistics are equally noisy at
  // every step (a batch of 1 at the end of an epoch would make BN meaningless).
  loader_ = std::make_unique<data::DataLoader>(
      train, data::LoaderOptions{.batch_size = global_batch, .shuffle = true, .drop_last = true,
                                 .classes_per_batch = cfg.classes_per_batch, .seed = cfg.seed,
                                 .augment = training_augmentation(cfg),
                                 .normalization = images_.normalization,
                                 .part_index = part,
                                 .part_count = parts});
  steps_per_epoch_ = loader_->batches_per_epoch();
}

TrainBatch TrainingData::next() {
  TrainBatch batch;
  if (!text_) {
    data::Batch b;
    if (!loader_->next(b)) {
      loader_->next_epoch();
      NL_CHECK(loader_->next(b), "internal: the data loader has no batch at the start of an epoch");
    }
    batch.images = b.x;
    batch.targets = std::move(b.y);
    return batch;
  }
  // Every rank draws the global batch's parts * B window starts and keeps its own B.
  const int64_t B = batch_size_, T = context_;
  const auto& ids = text_data_.train_ids;
  const auto starts = static_cast<uint64_t>(ids.size() - T);
  std::vector<int64_t> window_starts(parts_ * B);
  for (auto& s : window_starts) s = static_cast<int64_t>(text_gen_.below(starts));
  batch.ids.resize(B * T);
  batch.ids_shape = {B, T};
  batch.targets.resize(B * T);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t s = window_starts[part_ * B + b];
    for (int64_t t = 0; t < T; ++t) {
      batch.ids[b * T + t] = ids[s + t];
      batch.targets[b * T + t] = ids[s + t + 1];
    }
  }
  return batch;
}

EvalResult TrainingData::evaluate(Model& model) const {
  if (text_)
    return evaluate_text(model, text_data_.corpus.val_ids(), batch_size_, context_, val_batches_);
  return evaluate_images(model, images_.split.test, images_.normalization, std::max<int64_t>(batch_size_, 256));
}

void TrainingData::save_position(TrainingPosition& pos) const {
  if (text_) {
    pos.epoch = pos.batch = 0;
    pos.generators["text"] = text_gen_.state();
    return;
  }
  pos.epoch = loader_->epoch();
  pos.batch = loader_->batch_index();
  if (pos.batch >= loader_->batches_per_epoch()) {  // the epoch is used up
    ++pos.epoch;
    pos.batch = 0;
  }
}

void TrainingData::restore(const TrainingPosition& pos) {
  if (text_) text_gen_.set_state(pos.generators.at("text"));
  else loader_->start_epoch(pos.epoch, pos.batch);
}

nlohmann::json TrainingData::describe() const {
  if (text_)
    return {{"vocab", data::encode_utf8(text_data_.corpus.vocab().chars())},
            {"train_chars", text_data_.train_ids.size()},
            {"val_chars", text_data_.corpus.val_ids().size()},
            {"unigram_entropy_nats", unigram_}};
  return {{"input_normalization", images_.normalization.describe()},
          {"input_mean", images_.normalization.mean},
          {"input_std", images_.normalization.std},
          {"train_images", images_.split.train.n},
          // Examples no batch takes in an epoch (the drop_last remainder, or the K-class leftovers).
          {"examples_skipped_per_epoch", images_.split.train.n - steps_per_epoch_ * batch_size_ * parts_},
          {"test_images", images_.split.test.n},
          {"class_names", images_.split.train.class_names}};
}

nlohmann::json TrainingData::summary_fields() const {
  if (!text_) return nlohmann::json::object();
  return {{"unigram_entropy_nats", unigram_}, {"test_split", "validation (last 10% of the text)"}};
}

std::string TrainingData::describe_line() const {
  if (!text_) return fmt::format("input normalization: {}", images_.normalization.describe());
  const int64_t vocab = text_data_.corpus.vocab_size();
  return fmt::format("unigram-entropy baseline: {:.4f} nats/char (a model that ignores context; "
                     "uniform over {} chars would be {:.4f})",
                     unigram_, vocab, std::log(static_cast<double>(vocab)));
}

}  // namespace nl::app
